// SPDX-License-Identifier: Apache-2.0
// Fuzz target for IP reassembly: the input is a sequence of 6-byte fragment
// descriptors (family/flags/id, offset, length, fill byte, time step) turned
// into IPv4 or IPv6 fragments, decoded and fed to a reassembler with small
// limits. Completed datagrams are decoded again; memory bounds are checked.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "../unit/decoder/frame_builder.hpp"
#include "capture/decoder.hpp"
#include "classifier/ip_reassembly.hpp"

namespace {

void check(bool ok) {
  if (!ok)
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mp_test;
  metaprobe::ip_reassembly_limits lim;
  lim.max_datagrams = 8;
  lim.max_fragments = 16;
  lim.max_buffered_bytes = 16 * 1024;
  lim.timeout_ns = 1000;
  metaprobe::ip_reassembler r(lim);
  std::vector<uint8_t> out;
  uint64_t ts = 0;
  for (size_t i = 0; i + 6 <= size; i += 6) {
    const uint8_t* d = data + i;
    const bool v6 = d[0] & 1;
    const bool more = d[0] & 2;
    const uint32_t id = (d[0] >> 2) & 3;
    const bool hbh = d[0] & 0x10; // IPv6: hop-by-hop before the fragment header
    const uint16_t offset8 = static_cast<uint16_t>((d[1] << 8 | d[2]) & 0x1fff);
    const size_t len = d[3] & 0x80 ? (d[3] & 0x7f) * 8u : d[3];
    ts += d[5];
    const buf payload = filler(len, d[4]);
    buf frame;
    if (v6) {
      const buf hdrs = hbh ? ext_hdr(44) : buf{};
      frame = eth(0x86dd) +
              ipv6(ip6_a, ip6_b, hbh ? 0 : 44,
                   hdrs + frag_hdr(17, static_cast<uint16_t>(offset8 * 8), more, id) + payload);
    } else {
      ipv4_opts o;
      o.proto = d[0] & 0x20 ? 6 : 17;
      o.id = static_cast<uint16_t>(id);
      o.frag = static_cast<uint16_t>(offset8 | (more ? 0x2000 : 0));
      if (d[0] & 0x40)
        o.options = filler(4, 1);
      frame = eth(0x0800) + ipv4(ip_a, ip_b, payload, o);
    }
    metaprobe::decoded_packet p;
    metaprobe::decode_packet(frame.data(), static_cast<uint32_t>(frame.size()),
                             static_cast<uint32_t>(frame.size()), ts, metaprobe::linktype::en10mb,
                             p);
    if (r.add(p, out)) {
      check(out.size() <= lim.max_datagram_size);
      metaprobe::decoded_packet q;
      const auto st = metaprobe::decode_reassembled(out.data(),
                                                    static_cast<uint32_t>(out.size()), p, q);
      check(st != metaprobe::decode_status::unsupported_link);
      if (st == metaprobe::decode_status::ok)
        check(!q.is_fragment);
    }
    if (d[0] & 0x80)
      r.expire(ts);
    check(r.pending() <= lim.max_datagrams);
    check(r.buffered_bytes() <= lim.max_buffered_bytes);
  }
  const auto& c = r.counters();
  check(c.fragments == size / 6);
  return 0;
}
