// SPDX-License-Identifier: Apache-2.0
// Writes an IPFIX file (RFC 5655) with N records of every template kind and
// family, through the file sink, for the interop checks (run_interop.py).
//
// usage: ipfix_write_samples OUT.ipfix [--mtu OCTETS] [--per-template N]

#include <cstdio>
#include <cstdlib>
#include <string>

#include "exporters/ipfix/field_table.hpp"
#include "exporters/ipfix/ipfix_sinks.hpp"
#include "sample_records.hpp"

using namespace metaprobe;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT.ipfix [--mtu OCTETS] [--per-template N]\n", argv[0]);
    return 2;
  }
  ipfix_sink_config c;
  c.group = "all";
  for (size_t k = 0; k < ipfix::template_kind_count; ++k)
    c.kinds.push_back(ipfix::template_kind_name(static_cast<ipfix::template_kind>(k)));
  c.file_path = argv[1];
  c.observation_domain_id = 1;
  uint32_t per_template = 1;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--mtu")
      c.stream_message_size = static_cast<uint32_t>(std::strtoul(argv[i + 1], nullptr, 10));
    else if (a == "--per-template")
      per_template = static_cast<uint32_t>(std::strtoul(argv[i + 1], nullptr, 10));
  }
  try {
    auto sinks = make_ipfix_sinks(c);
    for (uint32_t n = 0; n < per_template; ++n)
      for (const auto& r : ipfix::test::all_sample_records(n + 1)) sinks[0]->add(r);
    sinks[0]->flush();
    for (const auto& ctr : sinks[0]->counters())
      if (ctr.name == "records_sent") std::printf("%llu\n", static_cast<unsigned long long>(ctr.value));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ipfix_write_samples: %s\n", e.what());
    return 1;
  }
  return 0;
}
