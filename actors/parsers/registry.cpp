// SPDX-License-Identifier: Apache-2.0
#include "parsers/registry.hpp"

#include "parsers/dns/dns_parser.hpp"
#include "parsers/http/http_parser.hpp"

namespace metaprobe {

const std::vector<protocol_entry>& protocol_registry() {
  // Probe order: the more specific protocols first.
  static const std::vector<protocol_entry> entries = {
    http_protocol_entry(),
    dns_protocol_entry(),
  };
  return entries;
}

const protocol_entry* find_protocol(app_protocol id) {
  for (const auto& e : protocol_registry())
    if (e.id == id)
      return &e;
  return nullptr;
}

} // namespace metaprobe
