// SPDX-License-Identifier: Apache-2.0
// Fuzz target for the L2-L4 decoder: the first byte picks the link type, the
// rest is the frame. Checks the decoder's invariants on every input; the
// seeds (tests/fuzz/corpus/decoder) include every tunnel kind and nestings.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "capture/decoder.hpp"

namespace {

constexpr int link_types[] = {
    metaprobe::linktype::en10mb,    metaprobe::linktype::raw,
    metaprobe::linktype::raw_12,    metaprobe::linktype::raw_14,
    metaprobe::linktype::linux_sll, metaprobe::linktype::linux_sll2,
    metaprobe::linktype::null_bsd,  metaprobe::linktype::loop,
    metaprobe::linktype::ipv4,      metaprobe::linktype::ipv6,
    metaprobe::linktype::ppp,       metaprobe::linktype::ppp_hdlc,
    metaprobe::linktype::c_hdlc,    147 /* unsupported */};

void check(bool ok) {
  if (!ok)
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1)
    return 0;
  const int lt = link_types[data[0] % (sizeof link_types / sizeof link_types[0])];
  // Copy into an exactly sized buffer so ASan sees any read past the frame.
  std::vector<uint8_t> frame(data + 1, data + size);
  const auto cap = static_cast<uint32_t>(frame.size());
  metaprobe::decoded_packet p;
  const auto st = metaprobe::decode_packet(frame.empty() ? nullptr : frame.data(), cap,
                                           cap + (data[0] & 0x80 ? 100 : 0), 1, lt, p);
  check(st == p.status);
  if (st != metaprobe::decode_status::ok) {
    check(p.flow_hash == 0);
    return 0;
  }
  check(p.ip_version == 4 || p.ip_version == 6);
  check(static_cast<uint32_t>(p.l3_off) + p.l3_len <= cap);
  check(p.l3_wire_len >= p.l3_len);
  check(p.payload_off >= p.l3_off);
  check(static_cast<uint32_t>(p.payload_off) + p.payload_len <=
        static_cast<uint32_t>(p.l3_off) + p.l3_len);
  if (p.l4_off)
    check(p.l4_off >= p.l3_off && p.l4_off <= p.payload_off);
  if (p.is_fragment && p.frag_offset != 0)
    check(p.l4_off == 0 && p.sport == 0 && p.dport == 0);
  check(p.l2.mpls_count <= metaprobe::l2_context::max_mpls);
  // symmetric hash
  if (!p.is_fragment)
    check(p.flow_hash ==
          metaprobe::flow_hash_of(p.dst, p.src, p.dport, p.sport, p.l4_proto, p.tunnel.id));
  // tunnels: bounded depth, identity set exactly when a layer was opened
  check(p.tunnel.depth <= metaprobe::tunnel_context::max_layers);
  if (p.tunnel.depth == 0)
    check(p.tunnel.id == 0 && p.tunnel.outer_hash == 0);
  for (int i = 0; i < p.tunnel.depth; ++i)
    check(p.tunnel.kinds[i] < metaprobe::decap_kind_count);
  // touch the payload so ASan checks the range
  volatile uint8_t sink = 0;
  for (uint32_t i = 0; i < p.payload_len; ++i)
    sink = static_cast<uint8_t>(sink ^ p.payload()[i]);
  (void)sink;
  return 0;
}
