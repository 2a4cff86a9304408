// SPDX-License-Identifier: Apache-2.0
#include "capture/inputs.hpp"

#include <algorithm>

#include "capture/afpacket_source.hpp"
#include "capture/dpdk_source.hpp"
#include "capture/pcap_source.hpp"

namespace metaprobe {

namespace {

bool has_prefix(const std::string& s, const char* p) {
  return s.rfind(p, 0) == 0;
}

} // namespace

namespace {

std::vector<std::unique_ptr<packet_source>> open_sources(const input_options& o,
                                                         std::string& error) {
  std::vector<std::unique_ptr<packet_source>> out;
  std::unique_ptr<packet_source> one;
  if (has_prefix(o.input, "afpacket:")) {
    afpacket_options a;
    a.iface = o.input.substr(9);
    a.snaplen = o.snaplen;
    a.bpf = o.bpf_filter;
    a.ring = o.afpacket;
    return afpacket_source::open_group(a, std::max(1, o.workers), error);
  }
  if (has_prefix(o.input, "pcap:"))
    one = pcap_source::open_file(o.input.substr(5), error);
  else if (has_prefix(o.input, "iface:"))
    one = pcap_source::open_live(o.input.substr(6), o.snaplen, o.bpf_filter, error);
  else if (o.input == "dpdk") {
    dpdk_options d = o.dpdk;
    d.queues = o.workers;
    out = open_dpdk(d, error);
  } else
    error = "unsupported input '" + o.input + "' (expected pcap:PATH, iface:NAME, afpacket:NAME or dpdk)";
  if (one)
    out.push_back(std::move(one));
  return out;
}

} // namespace

std::vector<std::unique_ptr<packet_source>> open_inputs(const input_options& o,
                                                        std::string& error) {
  auto sources = open_sources(o, error);
  for (auto& s : sources)
    s->set_decode_options(o.decode);
  return sources;
}

bool input_is_live(const std::string& input) {
  return !has_prefix(input, "pcap:");
}

} // namespace metaprobe
