// SPDX-License-Identifier: Apache-2.0
#pragma once
// Test helper: builds frames layer by layer, inside out, including broken
// variants (every length field can be overridden). Used by the decoder and IP
// reassembly tests and by the fuzz targets.

#include <array>
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace mp_test {

using buf = std::vector<uint8_t>;
using v4addr = std::array<uint8_t, 4>;
using v6addr = std::array<uint8_t, 16>;
using mac = std::array<uint8_t, 6>;

inline buf operator+(buf a, const buf& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
inline void put16(buf& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
inline void put32(buf& b, uint32_t v) {
  put16(b, v >> 16);
  put16(b, v & 0xffff);
}
inline buf bytes(std::initializer_list<int> l) {
  buf b;
  for (int x : l)
    b.push_back(static_cast<uint8_t>(x));
  return b;
}
inline buf filler(size_t n, uint8_t start = 0) {
  buf b(n);
  for (size_t i = 0; i < n; ++i)
    b[i] = static_cast<uint8_t>(start + i);
  return b;
}

// A frame cut to `n` bytes (as a snap length would).
inline buf cut(const buf& b, size_t n) { return buf(b.begin(), b.begin() + static_cast<long>(n)); }

constexpr mac mac_a{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a};
constexpr mac mac_b{0x02, 0x00, 0x00, 0x00, 0x00, 0x0b};
constexpr v4addr ip_a{10, 0, 0, 1};
constexpr v4addr ip_b{192, 168, 1, 2};
constexpr v6addr ip6_a{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
constexpr v6addr ip6_b{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};

// ---- L2 ----
inline buf eth(uint16_t type, const mac& dst = mac_b, const mac& src = mac_a) {
  buf b(dst.begin(), dst.end());
  b.insert(b.end(), src.begin(), src.end());
  put16(b, type);
  return b;
}
// One VLAN tag: TCI (PCP 0) then the next ethertype.
inline buf vlan(uint16_t vid, uint16_t next_type, uint8_t pcp = 0) {
  buf b;
  put16(b, static_cast<uint32_t>(pcp) << 13 | (vid & 0x0fff));
  put16(b, next_type);
  return b;
}
inline uint32_t mpls_entry(uint32_t label, bool bos, uint8_t ttl = 64, uint8_t tc = 0) {
  return (label << 12) | (static_cast<uint32_t>(tc & 7) << 9) | (bos ? 0x100u : 0u) | ttl;
}
inline buf mpls(uint32_t label, bool bos, uint8_t ttl = 64) {
  buf b;
  put32(b, mpls_entry(label, bos, ttl));
  return b;
}
// PPPoE session header + PPP protocol.
inline buf pppoe(uint16_t ppp_proto, uint16_t payload_len, uint8_t vertype = 0x11,
                 uint16_t session = 0x1234) {
  buf b{vertype, 0x00};
  put16(b, session);
  put16(b, payload_len + 2u);
  put16(b, ppp_proto);
  return b;
}
// Linux cooked v1 header (ARPHRD_ETHER, 6-byte address).
inline buf sll(uint16_t proto, const mac& src = mac_a) {
  buf b;
  put16(b, 0);     // packet type: to us
  put16(b, 1);     // ARPHRD_ETHER
  put16(b, 6);     // address length
  b.insert(b.end(), src.begin(), src.end());
  put16(b, 0);     // address padding
  put16(b, proto);
  return b;
}
inline buf sll2(uint16_t proto, const mac& src = mac_a) {
  buf b;
  put16(b, proto);
  put16(b, 0);     // reserved
  put32(b, 3);     // interface index
  put16(b, 1);     // ARPHRD_ETHER
  b.push_back(0);  // packet type
  b.push_back(6);  // address length
  b.insert(b.end(), src.begin(), src.end());
  put16(b, 0);
  return b;
}

// ---- L3 ----
struct ipv4_opts {
  uint8_t proto = 6;
  uint16_t id = 0x1234;
  uint16_t frag = 0;       // flags (0x4000 DF, 0x2000 MF) | offset in 8-byte units
  uint8_t ttl = 64;
  uint8_t tos = 0;
  buf options;             // padded by the caller to a multiple of 4
  int total = -1;          // override of the total length field
  int ihl = -1;            // override of the IHL (32-bit words)
  int version = 4;
};
inline buf ipv4(const v4addr& src, const v4addr& dst, const buf& payload,
                const ipv4_opts& o = {}) {
  const size_t hl = 20 + o.options.size();
  buf b;
  b.push_back(static_cast<uint8_t>(o.version << 4 | (o.ihl >= 0 ? o.ihl : static_cast<int>(hl / 4))));
  b.push_back(o.tos);
  put16(b, o.total >= 0 ? static_cast<uint32_t>(o.total)
                        : static_cast<uint32_t>(hl + payload.size()));
  put16(b, o.id);
  put16(b, o.frag);
  b.push_back(o.ttl);
  b.push_back(o.proto);
  put16(b, 0); // checksum, filled below
  b.insert(b.end(), src.begin(), src.end());
  b.insert(b.end(), dst.begin(), dst.end());
  b.insert(b.end(), o.options.begin(), o.options.end());
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < b.size(); i += 2)
    sum += static_cast<uint32_t>(b[i] << 8 | b[i + 1]);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  b[10] = static_cast<uint8_t>(~sum >> 8);
  b[11] = static_cast<uint8_t>(~sum);
  return b + payload;
}

struct ipv6_opts {
  uint8_t tclass = 0;
  uint32_t flow = 0;
  uint8_t hop = 64;
  int plen = -1;           // override of the payload length field
  int version = 6;
};
// `nh` is the first next header; `payload` holds extension headers + L4.
inline buf ipv6(const v6addr& src, const v6addr& dst, uint8_t nh, const buf& payload,
                const ipv6_opts& o = {}) {
  buf b;
  put32(b, static_cast<uint32_t>(o.version) << 28 | static_cast<uint32_t>(o.tclass) << 20 |
               (o.flow & 0xfffff));
  put16(b, o.plen >= 0 ? static_cast<uint32_t>(o.plen) : static_cast<uint32_t>(payload.size()));
  b.push_back(nh);
  b.push_back(o.hop);
  b.insert(b.end(), src.begin(), src.end());
  b.insert(b.end(), dst.begin(), dst.end());
  return b + payload;
}
// Hop-by-hop / routing / destination options header of (len8 + 1) * 8 bytes.
inline buf ext_hdr(uint8_t nh, uint8_t len8 = 0) {
  buf b((static_cast<size_t>(len8) + 1) * 8, 0);
  b[0] = nh;
  b[1] = len8;
  if (b.size() >= 4) { // PadN option filling the rest
    b[2] = 1;
    b[3] = static_cast<uint8_t>(b.size() - 4);
  }
  return b;
}
// Authentication header of (len4 + 2) * 4 bytes.
inline buf ah_hdr(uint8_t nh, uint8_t len4 = 4) {
  buf b((static_cast<size_t>(len4) + 2) * 4, 0xab);
  b[0] = nh;
  b[1] = len4;
  b[2] = 0;
  b[3] = 0;
  return b;
}
inline buf frag_hdr(uint8_t nh, uint16_t offset_bytes, bool more, uint32_t id) {
  buf b{nh, 0};
  put16(b, (offset_bytes & 0xfff8u) | (more ? 1u : 0u));
  put32(b, id);
  return b;
}

// ---- L4 ----
inline buf tcp(uint16_t sport, uint16_t dport, const buf& payload = {}, uint32_t seq = 1000,
               uint32_t ack = 2000, uint8_t flags = 0x18, uint16_t win = 512,
               const buf& options = {}, int doff = -1) {
  buf b;
  put16(b, sport);
  put16(b, dport);
  put32(b, seq);
  put32(b, ack);
  const size_t hl = 20 + options.size();
  b.push_back(static_cast<uint8_t>((doff >= 0 ? doff : static_cast<int>(hl / 4)) << 4));
  b.push_back(flags);
  put16(b, win);
  put16(b, 0); // checksum (not checked)
  put16(b, 0); // urgent
  b.insert(b.end(), options.begin(), options.end());
  return b + payload;
}
inline buf udp(uint16_t sport, uint16_t dport, const buf& payload = {}, int len = -1) {
  buf b;
  put16(b, sport);
  put16(b, dport);
  put16(b, len >= 0 ? static_cast<uint32_t>(len) : static_cast<uint32_t>(payload.size() + 8));
  put16(b, 0);
  return b + payload;
}
inline buf icmp_echo(uint16_t id, uint16_t seq, const buf& payload = {}) {
  buf b{8, 0, 0, 0};
  put16(b, id);
  put16(b, seq);
  return b + payload;
}

// ---- tunnels (headers only: the caller appends what they carry) ----
struct gre_opts {
  bool checksum = false;
  bool key = false;
  uint32_t key_value = 0;
  bool seq = false;
  uint8_t version = 0;
};
inline buf gre(uint16_t proto, const gre_opts& o = {}) {
  buf b;
  uint16_t flags = o.version;
  if (o.checksum)
    flags |= 0x8000;
  if (o.key)
    flags |= 0x2000;
  if (o.seq)
    flags |= 0x1000;
  put16(b, flags);
  put16(b, proto);
  if (o.checksum)
    put32(b, 0);
  if (o.key)
    put32(b, o.key_value);
  if (o.seq)
    put32(b, 7);
  return b;
}
// ERSPAN type II header (after GRE with the S bit, proto 0x88be).
inline buf erspan2(uint16_t session, uint16_t vlan = 0) {
  buf b;
  put16(b, 0x1000 | (vlan & 0x0fff));
  put16(b, session & 0x03ff);
  put32(b, 0);
  return b;
}
// ERSPAN type III header (proto 0x22eb); frame type 0 Ethernet or 2 IP.
inline buf erspan3(uint16_t session, bool platform, uint8_t frame_type = 0,
                   uint16_t vlan = 0) {
  buf b;
  put16(b, 0x2000 | (vlan & 0x0fff));
  put16(b, session & 0x03ff);
  put32(b, 0x01020304); // timestamp
  put16(b, 0);          // SGT
  b.push_back(static_cast<uint8_t>((frame_type & 0x1f) << 2));
  b.push_back(platform ? 1 : 0);
  if (platform)
    put32(b, 0x0c000000), put32(b, 0);
  return b;
}
inline buf vxlan_hdr(uint32_t vni, uint8_t flags = 0x08) {
  buf b{flags, 0, 0, 0};
  put32(b, vni << 8);
  return b;
}
inline buf vxlan_gpe_hdr(uint32_t vni, uint8_t next_proto) {
  buf b{0x0c, 0, 0, next_proto};
  put32(b, vni << 8);
  return b;
}
inline buf geneve_hdr(uint32_t vni, uint16_t proto, size_t option_words = 0) {
  buf b{static_cast<uint8_t>(option_words & 0x3f), 0};
  put16(b, proto);
  put32(b, vni << 8);
  for (size_t i = 0; i < option_words; ++i)
    put32(b, 0x01020304);
  return b;
}
// GTP-U v1; with_seq adds the sequence/N-PDU/next-extension word, ext adds a
// PDU session container extension header (4 bytes).
inline buf gtpu_hdr(uint32_t teid, size_t inner_len, uint8_t type = 0xff,
                    bool with_seq = false, bool ext = false) {
  buf b;
  uint8_t f = 0x30;
  if (with_seq || ext)
    f |= ext ? 0x04 : 0x02;
  b.push_back(f);
  b.push_back(type);
  const size_t opt = (with_seq || ext) ? 4 + (ext ? 4 : 0) : 0;
  put16(b, static_cast<uint32_t>(inner_len + opt));
  put32(b, teid);
  if (with_seq || ext) {
    put16(b, 1);
    b.push_back(0);
    b.push_back(ext ? 0x85 : 0);
    if (ext) {
      b.push_back(1); // length in 4-byte units
      b.push_back(0x10);
      b.push_back(0x09);
      b.push_back(0); // no next extension
    }
  }
  return b;
}
// L2TPv2 data header with the length bit and PPP (ff 03 + protocol).
inline buf l2tp_ppp(uint16_t ppp_proto, size_t inner_len, bool control = false) {
  buf b;
  put16(b, (control ? 0xc802 : 0x4002));
  put16(b, static_cast<uint32_t>(inner_len + (control ? 16 : 12)));
  put16(b, 11); // tunnel id
  put16(b, 22); // session id
  if (control)
    put32(b, 0);
  b.push_back(0xff);
  b.push_back(0x03);
  put16(b, ppp_proto);
  return b;
}

} // namespace mp_test
