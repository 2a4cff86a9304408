// SPDX-License-Identifier: Apache-2.0
#include "parsers/registry.hpp"

#include "parsers/dns/dns_parser.hpp"
#include "parsers/ftp/ftp_parser.hpp"
#include "parsers/http/http_parser.hpp"
#include "parsers/imap/imap_parser.hpp"
#include "parsers/pop3/pop3_parser.hpp"
#include "parsers/quic/quic_parser.hpp"
#include "parsers/sip/sip_parser.hpp"
#include "parsers/smtp/smtp_parser.hpp"
#include "parsers/tls/tls_parser.hpp"
#include "parsers/xmpp/xmpp_parser.hpp"

namespace metaprobe {

const std::vector<protocol_entry>& protocol_registry() {
  // Probe order: the more specific protocols first.
  static const std::vector<protocol_entry> entries = {
    http_protocol_entry(),
    dns_protocol_entry(),
    tls_protocol_entry(),
    quic_protocol_entry(),
    sip_protocol_entry(),
    ftp_protocol_entry(),
    smtp_protocol_entry(),
    pop3_protocol_entry(),
    imap_protocol_entry(),
    xmpp_protocol_entry(),
  };
  return entries;
}

const char* to_string(handover_kind k) {
  switch (k) {
  case handover_kind::connect: return "connect";
  case handover_kind::upgrade: return "upgrade";
  case handover_kind::starttls: return "starttls";
  case handover_kind::port: return "port";
  }
  return "unknown";
}

const protocol_entry* find_protocol(app_protocol id) {
  for (const auto& e : protocol_registry())
    if (e.id == id)
      return &e;
  return nullptr;
}

} // namespace metaprobe
