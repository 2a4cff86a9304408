// SPDX-License-Identifier: Apache-2.0
#include "capture/decoder.hpp"

#include <cstring>
#include <type_traits>

namespace metaprobe {

static_assert(std::is_trivially_copyable<decoded_packet>::value,
              "decode_packet clears decoded_packet with memset");

namespace {

// ---- byte access (callers check bounds first) ----
// Network-order loads (one load + byte swap; x86-64 and arm64 are little
// endian, a big-endian host would drop the swaps).
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian host expected");
inline uint16_t rd16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return __builtin_bswap16(v);
}
inline uint32_t rd32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return __builtin_bswap32(v);
}
inline uint32_t rd32_le(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// ---- hashing ----
inline uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}
inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

// See decoder.hpp. Each endpoint folds to a 64-bit key (address words XORed,
// port in the top 16 bits; exact for IPv4); the keys are ordered so both
// directions give the same pair; the pair, proto and family are combined by
// a multiply and finalised with the murmur3 64-bit mix. a0/a1 and b0/b1 are
// the two 64-bit halves (host order loads) of the 16-byte address fields of
// ip_address, zero-padded for IPv4.
inline uint32_t hash_words(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1, uint8_t family,
                           uint16_t port_a, uint16_t port_b, uint8_t proto) {
  const uint64_t ka = a0 ^ rotl64(a1, 32) ^ (static_cast<uint64_t>(port_a) << 48);
  const uint64_t kb = b0 ^ rotl64(b1, 32) ^ (static_cast<uint64_t>(port_b) << 48);
  const uint64_t lo = ka < kb ? ka : kb;
  const uint64_t hi = ka < kb ? kb : ka;
  const uint64_t h = fmix64((lo * 0x9e3779b97f4a7c15ULL) ^ hi ^
                            (static_cast<uint64_t>(proto) << 32) ^
                            (static_cast<uint64_t>(family) << 40));
  return static_cast<uint32_t>(h ^ (h >> 32));
}

inline uint64_t ld64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// ---- protocol numbers ----
constexpr uint16_t et_ipv4 = 0x0800;
constexpr uint16_t et_ipv6 = 0x86dd;
constexpr uint16_t et_vlan = 0x8100;
constexpr uint16_t et_qinq = 0x88a8;
constexpr uint16_t et_qinq_old = 0x9100;
constexpr uint16_t et_qinq_old2 = 0x9200;
constexpr uint16_t et_mpls_uc = 0x8847;
constexpr uint16_t et_mpls_mc = 0x8848;
constexpr uint16_t et_pppoe_session = 0x8864;
constexpr uint16_t et_arista = 0xd28b;
constexpr uint16_t et_none = 0; // not IP: ends the L2 walk as non_ip

constexpr uint8_t ipproto_tcp = 6;
constexpr uint8_t ipproto_udp = 17;

constexpr int max_l2_steps = 16;     // encapsulation headers walked
constexpr int max_mpls_entries = 32; // label stack entries walked (beyond: malformed)

// PPP protocol number -> ethertype used by the L2 walk.
inline uint16_t ppp_to_ethertype(uint16_t proto) {
  switch (proto) {
  case 0x0021: return et_ipv4;
  case 0x0057: return et_ipv6;
  case 0x0281: return et_mpls_uc;
  case 0x0283: return et_mpls_mc;
  default: return et_none;
  }
}

// The IP version nibble picks the ethertype (raw IP link types, MPLS payload).
inline uint16_t guess_ip(const uint8_t* p) {
  switch (p[0] >> 4) {
  case 4: return et_ipv4;
  case 6: return et_ipv6;
  default: return et_none;
  }
}

struct walk {
  const uint8_t* d;
  uint32_t cap;  // usable captured bytes (<= 65535)
  uint32_t wire; // wire length
  decoded_packet& out;
  // Address words for the hash, loaded from the packet (not from out.src,
  // whose freshly stored bytes would stall store-to-load forwarding).
  uint64_t a0 = 0, a1 = 0, b0 = 0, b1 = 0;
};

inline void set_hash_l3(walk& w) {
  w.out.flow_hash = hash_words(w.a0, w.a1, w.b0, w.b1, w.out.ip_version, 0, 0, 0);
}
inline void set_hash_l4(walk& w) {
  const decoded_packet& o = w.out;
  w.out.flow_hash =
      hash_words(w.a0, w.a1, w.b0, w.b1, o.ip_version, o.sport, o.dport, o.l4_proto);
}

// Decodes the L4 header at l4 of a packet whose IP payload ends at `end`
// (captured) and `claimed_end` (IP header's claim). first_frag: the packet is
// the first fragment of a datagram, so the IP payload holds only part of the
// L4 data.
decode_status decode_l4(walk& w, uint32_t l4, uint32_t end, uint32_t claimed_end,
                        bool first_frag) {
  decoded_packet& out = w.out;
  const uint8_t* d = w.d;
  const uint32_t avail = end - l4;
  const bool cut = end < claimed_end; // capture shorter than the IP claim
  switch (out.l4_proto) {
  case ipproto_tcp: {
    if (avail < 20) {
      if (first_frag) // L4 header split over fragments: data only
        break;
      return (l4 + 20 > claimed_end) ? decode_status::malformed : decode_status::truncated;
    }
    const uint8_t* t = d + l4;
    const uint32_t doff = static_cast<uint32_t>(t[12] >> 4) * 4;
    if (doff < 20) {
      if (first_frag) // a bad L4 header does not spoil the fragment
        break;
      return decode_status::malformed;
    }
    out.l4_off = static_cast<uint16_t>(l4);
    out.sport = rd16(t);
    out.dport = rd16(t + 2);
    out.tcp_seq = rd32(t + 4);
    out.tcp_ack = rd32(t + 8);
    out.tcp_flags = t[13];
    out.tcp_window = rd16(t + 14);
    if (doff <= avail) {
      out.payload_off = static_cast<uint16_t>(l4 + doff);
      out.payload_len = static_cast<uint16_t>(avail - doff);
    } else if (cut || first_frag) {
      // options cut by the snap length (or spanning fragments): no payload
      out.payload_off = static_cast<uint16_t>(end);
      out.payload_len = 0;
    } else {
      return decode_status::malformed; // data offset beyond the IP payload
    }
    if (!out.is_fragment)
      set_hash_l4(w);
    else
      set_hash_l3(w);
    return decode_status::ok;
  }
  case ipproto_udp: {
    if (avail < 8) {
      if (first_frag)
        break;
      return (l4 + 8 > claimed_end) ? decode_status::malformed : decode_status::truncated;
    }
    const uint8_t* u = d + l4;
    const uint32_t ulen = rd16(u + 4);
    if (ulen != 0 && ulen < 8) {
      if (first_frag)
        break;
      return decode_status::malformed;
    }
    uint32_t udp_end = claimed_end;
    if (ulen != 0 && l4 + ulen < claimed_end)
      udp_end = l4 + ulen; // bytes after the UDP datagram are not payload
    if (udp_end > end)
      udp_end = end;
    out.l4_off = static_cast<uint16_t>(l4);
    out.sport = rd16(u);
    out.dport = rd16(u + 2);
    out.payload_off = static_cast<uint16_t>(l4 + 8);
    out.payload_len = static_cast<uint16_t>(udp_end > l4 + 8 ? udp_end - (l4 + 8) : 0);
    if (!out.is_fragment)
      set_hash_l4(w);
    else
      set_hash_l3(w);
    return decode_status::ok;
  }
  default:
    out.l4_off = static_cast<uint16_t>(l4);
    out.payload_off = static_cast<uint16_t>(l4);
    out.payload_len = static_cast<uint16_t>(avail);
    if (!out.is_fragment)
      set_hash_l4(w);
    else
      set_hash_l3(w);
    return decode_status::ok;
  }
  // first fragment with an L4 header too short or invalid: fragment data only
  out.l4_off = 0;
  out.sport = 0;
  out.dport = 0;
  out.payload_off = static_cast<uint16_t>(l4);
  out.payload_len = static_cast<uint16_t>(avail);
  set_hash_l3(w);
  return decode_status::ok;
}

inline void set_lengths(walk& w, uint32_t off, uint32_t total, uint32_t avail) {
  const uint32_t l3_len = total < avail ? total : avail;
  uint32_t wire_avail = w.wire > off ? w.wire - off : 0;
  if (wire_avail < l3_len)
    wire_avail = l3_len; // wire_len below cap_len: a broken record, trust the capture
  w.out.l3_off = static_cast<uint16_t>(off);
  w.out.l3_len = static_cast<uint16_t>(l3_len);
  w.out.l3_wire_len = static_cast<uint16_t>(total < wire_avail ? total : wire_avail);
}

decode_status decode_ipv4(walk& w, uint32_t off) {
  decoded_packet& out = w.out;
  out.l3_off = static_cast<uint16_t>(off);
  const uint32_t avail = w.cap - off;
  if (avail < 20)
    return decode_status::truncated;
  const uint8_t* ip = w.d + off;
  if ((ip[0] >> 4) != 4)
    return decode_status::malformed;
  const uint32_t ihl = static_cast<uint32_t>(ip[0] & 0x0f) * 4;
  const uint32_t total = rd16(ip + 2);
  out.ip_version = 4;
  out.tos = ip[1];
  out.ttl = ip[8];
  out.l4_proto = ip[9];
  out.frag_id = rd16(ip + 4);
  // out is zeroed: write the bytes in place (no temporary to copy)
  std::memcpy(out.src.bytes.data(), ip + 12, 4);
  std::memcpy(out.dst.bytes.data(), ip + 16, 4);
  out.src.family = 4;
  out.dst.family = 4;
  w.a0 = rd32_le(ip + 12);
  w.b0 = rd32_le(ip + 16);
  const uint16_t fo = rd16(ip + 6);
  const uint32_t frag_off = static_cast<uint32_t>(fo & 0x1fff) * 8;
  out.more_fragments = (fo & 0x2000) != 0;
  out.frag_offset = static_cast<uint16_t>(frag_off); // <= 65528
  out.is_fragment = out.more_fragments || frag_off != 0;
  if (ihl < 20 || total < ihl)
    return decode_status::malformed;
  set_lengths(w, off, total, avail);
  if (ihl > out.l3_len)
    return decode_status::truncated; // options cut by the capture
  const uint32_t l4 = off + ihl;
  const uint32_t end = off + out.l3_len;
  if (frag_off != 0) {
    out.payload_off = static_cast<uint16_t>(l4);
    out.payload_len = static_cast<uint16_t>(end - l4);
    set_hash_l3(w);
    return decode_status::ok;
  }
  return decode_l4(w, l4, end, off + total, out.is_fragment);
}

decode_status decode_ipv6(walk& w, uint32_t off) {
  decoded_packet& out = w.out;
  out.l3_off = static_cast<uint16_t>(off);
  const uint32_t avail = w.cap - off;
  if (avail < 40)
    return decode_status::truncated;
  const uint8_t* ip = w.d + off;
  if ((ip[0] >> 4) != 6)
    return decode_status::malformed;
  const uint32_t plen = rd16(ip + 4);
  uint8_t nh = ip[6];
  out.ip_version = 6;
  out.tos = static_cast<uint8_t>(rd16(ip) >> 4);
  out.ttl = ip[7];
  std::memcpy(out.src.bytes.data(), ip + 8, 16);
  std::memcpy(out.dst.bytes.data(), ip + 24, 16);
  out.src.family = 6;
  out.dst.family = 6;
  w.a0 = ld64(ip + 8);
  w.a1 = ld64(ip + 16);
  w.b0 = ld64(ip + 24);
  w.b1 = ld64(ip + 32);
  uint32_t total = 40 + plen;
  if (plen == 0 && nh == 0)
    total = avail; // jumbogram (RFC 2675): length in hop-by-hop option
  if (total > 65535)
    total = 65535;
  set_lengths(w, off, total, avail);
  const uint32_t end = off + out.l3_len;
  const uint32_t claimed_end = off + total;
  uint32_t p = off + 40;
  bool first_frag = false;
  for (int n = 0;; ++n) {
    uint32_t hlen;
    switch (nh) {
    case 0:  // hop-by-hop options
    case 43: // routing
    case 60: // destination options
      if (p + 2 > end)
        return p + 2 > claimed_end ? decode_status::malformed : decode_status::truncated;
      hlen = (static_cast<uint32_t>(w.d[p + 1]) + 1) * 8;
      break;
    case 51: // authentication header
      if (p + 2 > end)
        return p + 2 > claimed_end ? decode_status::malformed : decode_status::truncated;
      hlen = (static_cast<uint32_t>(w.d[p + 1]) + 2) * 4;
      break;
    case 44: { // fragment
      if (p + 8 > end)
        return p + 8 > claimed_end ? decode_status::malformed : decode_status::truncated;
      const uint8_t* f = w.d + p;
      const uint16_t fo = rd16(f + 2);
      const uint16_t frag_off = fo & 0xfff8;
      const bool more = (fo & 1) != 0;
      out.frag_id = rd32(f + 4);
      if (frag_off != 0 || more) { // atomic fragments (RFC 6946) are not
        out.is_fragment = true;
        out.more_fragments = more;
        out.frag_offset = frag_off;
      }
      hlen = 8;
      if (frag_off != 0) {
        if (n >= max_ipv6_ext_headers)
          return decode_status::malformed;
        out.l4_proto = f[0];
        out.payload_off = static_cast<uint16_t>(p + 8);
        out.payload_len = static_cast<uint16_t>(end - (p + 8));
        set_hash_l3(w);
        return decode_status::ok;
      }
      first_frag = out.is_fragment;
      break;
    }
    default: // upper layer, ESP (50), no next header (59)
      out.l4_proto = nh;
      return decode_l4(w, p, end, claimed_end, first_frag);
    }
    if (n >= max_ipv6_ext_headers)
      return decode_status::malformed;
    if (p + hlen > end)
      return p + hlen > claimed_end ? decode_status::malformed : decode_status::truncated;
    nh = w.d[p];
    p += hlen;
  }
}

inline void read_ethernet(decoded_packet& out, const uint8_t* e) {
  std::memcpy(out.l2.dst_mac, e, 6);
  std::memcpy(out.l2.src_mac, e + 6, 6);
  out.l2.has_ethernet = true;
}

// Walks L2 encapsulations from `off`, starting with ethertype `et`.
decode_status decode_from_ethertype(walk& w, uint32_t off, uint16_t et) {
  decoded_packet& out = w.out;
  const uint8_t* d = w.d;
  const uint32_t cap = w.cap;
  int vlans = 0;
  for (int step = 0; step < max_l2_steps; ++step) {
    switch (et) {
    case et_ipv4:
      return decode_ipv4(w, off);
    case et_ipv6:
      return decode_ipv6(w, off);
    case et_vlan:
    case et_qinq:
    case et_qinq_old:
    case et_qinq_old2: {
      if (off + 4 > cap)
        return decode_status::truncated;
      const uint16_t vid = rd16(d + off) & 0x0fff;
      if (vlans == 0)
        out.l2.vlan_id = vid;
      else if (vlans == 1)
        out.l2.post_vlan_id = vid;
      ++vlans;
      et = rd16(d + off + 2);
      off += 4;
      break;
    }
    case et_mpls_uc:
    case et_mpls_mc: {
      for (int n = 0;; ++n) {
        if (n >= max_mpls_entries)
          return decode_status::malformed;
        if (off + 4 > cap)
          return decode_status::truncated;
        const uint32_t e = rd32(d + off);
        off += 4;
        if (out.l2.mpls_count < l2_context::max_mpls)
          out.l2.mpls[out.l2.mpls_count++] = e;
        if (e & 0x100) // bottom of stack
          break;
      }
      if (off >= cap)
        return decode_status::truncated;
      if ((d[off] >> 4) == 0) { // pseudowire control word, then Ethernet
        if (off + 4 + 14 > cap)
          return decode_status::truncated;
        off += 4;
        read_ethernet(out, d + off);
        et = rd16(d + off + 12);
        off += 14;
      } else {
        et = guess_ip(d + off);
        if (et == et_none)
          return decode_status::non_ip;
      }
      break;
    }
    case et_pppoe_session: {
      if (off + 8 > cap)
        return decode_status::truncated;
      if (d[off] != 0x11 || d[off + 1] != 0) // version 1, type 1, session data
        return decode_status::malformed;
      et = ppp_to_ethertype(rd16(d + off + 6));
      off += 8;
      if (et == et_none)
        return decode_status::non_ip;
      break;
    }
    case et_arista: {
      if (off + 4 > cap)
        return decode_status::truncated;
      const uint16_t subtype = rd16(d + off);
      const uint16_t version = rd16(d + off + 2) & 0xff;
      uint32_t ts_len;
      if (subtype == 1 && version == 0x10)
        ts_len = 8;
      else if (subtype == 1 && version == 0x20)
        ts_len = 6;
      else
        return decode_status::non_ip;
      if (off + 4 + ts_len + 2 > cap)
        return decode_status::truncated;
      et = rd16(d + off + 4 + ts_len);
      off += 4 + ts_len + 2;
      break;
    }
    default:
      if (et <= 1500) { // 802.3 length: LLC/SNAP with OUI 0 carries an ethertype
        if (off + 8 > cap)
          return decode_status::truncated;
        const uint8_t* l = d + off;
        if (l[0] == 0xaa && l[1] == 0xaa && l[2] == 0x03 && l[3] == 0 && l[4] == 0 &&
            l[5] == 0) {
          et = rd16(l + 6);
          off += 8;
          break;
        }
      }
      return decode_status::non_ip;
    }
  }
  return decode_status::malformed; // too many encapsulation headers
}

// PPP header (optional ff 03, 1- or 2-byte protocol) at off.
decode_status decode_ppp(walk& w, uint32_t off) {
  const uint8_t* d = w.d;
  if (off + 2 > w.cap)
    return decode_status::truncated;
  if (d[off] == 0xff && d[off + 1] == 0x03)
    off += 2;
  if (off + 1 > w.cap)
    return decode_status::truncated;
  uint16_t proto;
  if (d[off] & 1) { // protocol field compression
    proto = d[off];
    off += 1;
  } else {
    if (off + 2 > w.cap)
      return decode_status::truncated;
    proto = rd16(d + off);
    off += 2;
  }
  const uint16_t et = ppp_to_ethertype(proto);
  if (et == et_none)
    return decode_status::non_ip;
  return decode_from_ethertype(w, off, et);
}

decode_status decode_raw(walk& w, uint32_t off) {
  if (off >= w.cap)
    return decode_status::truncated;
  const uint16_t et = guess_ip(w.d + off);
  if (et == et_none)
    return decode_status::malformed;
  return decode_from_ethertype(w, off, et);
}

decode_status decode_link(walk& w, int lt) {
  const uint8_t* d = w.d;
  const uint32_t cap = w.cap;
  decoded_packet& out = w.out;
  if (lt == linktype::en10mb) { // the common case first: untagged IP over Ethernet
    if (cap < 14)
      return decode_status::truncated;
    read_ethernet(out, d);
    const uint16_t et = rd16(d + 12);
    if (et == et_ipv4)
      return decode_ipv4(w, 14);
    if (et == et_ipv6)
      return decode_ipv6(w, 14);
    return decode_from_ethertype(w, 14, et);
  }
  switch (lt) {
  case linktype::raw:
  case linktype::raw_12:
  case linktype::raw_14:
    return decode_raw(w, 0);
  case linktype::ipv4:
    return decode_from_ethertype(w, 0, et_ipv4);
  case linktype::ipv6:
    return decode_from_ethertype(w, 0, et_ipv6);
  case linktype::null_bsd:
  case linktype::loop: {
    if (cap < 4)
      return decode_status::truncated;
    uint32_t af = lt == linktype::loop ? rd32(d) : rd32_le(d);
    if (af > 0xffff) // DLT_NULL written by a host of the other byte order
      af = lt == linktype::loop ? rd32_le(d) : rd32(d);
    switch (af) {
    case 2: // AF_INET
      return decode_from_ethertype(w, 4, et_ipv4);
    case 10: // AF_INET6: Linux
    case 24: // NetBSD, OpenBSD
    case 28: // FreeBSD
    case 30: // macOS
      return decode_from_ethertype(w, 4, et_ipv6);
    default:
      return decode_status::non_ip;
    }
  }
  case linktype::linux_sll: {
    if (cap < 16)
      return decode_status::truncated;
    if (rd16(d + 2) == 1 && rd16(d + 4) == 6) // ARPHRD_ETHER, 6-byte address
      std::memcpy(out.l2.src_mac, d + 6, 6);
    return decode_from_ethertype(w, 16, rd16(d + 14));
  }
  case linktype::linux_sll2: {
    if (cap < 20)
      return decode_status::truncated;
    if (rd16(d + 8) == 1 && d[11] == 6)
      std::memcpy(out.l2.src_mac, d + 12, 6);
    return decode_from_ethertype(w, 20, rd16(d));
  }
  case linktype::ppp:
  case linktype::ppp_hdlc:
    return decode_ppp(w, 0);
  case linktype::c_hdlc:
    if (cap < 4)
      return decode_status::truncated;
    return decode_from_ethertype(w, 4, rd16(d + 2));
  default:
    return decode_status::unsupported_link;
  }
}

} // namespace

uint32_t flow_hash_of(const ip_address& a, const ip_address& b, uint16_t port_a,
                      uint16_t port_b, uint8_t proto) {
  return hash_words(ld64(a.bytes.data()), ld64(a.bytes.data() + 8), ld64(b.bytes.data()),
                    ld64(b.bytes.data() + 8), a.family, port_a, port_b, proto);
}

decode_status decode_packet(const uint8_t* data, uint32_t cap_len, uint32_t wire_len,
                            uint64_t ts_ns, int linktype, decoded_packet& out) {
  // All-zero bytes are decoded_packet's default state; one memset is much
  // cheaper than assigning a default-constructed temporary.
  static constexpr uint8_t zero[sizeof(decoded_packet)] = {};
  std::memcpy(static_cast<void*>(&out), zero, sizeof out);
  out.data = data;
  out.cap_len = cap_len;
  out.wire_len = wire_len;
  out.ts_ns = ts_ns;
  walk w{data, cap_len < 65535 ? cap_len : 65535, wire_len, out, 0, 0, 0, 0};
  if (data == nullptr)
    w.cap = 0;
  out.status = decode_link(w, linktype);
  if (out.status != decode_status::ok)
    out.flow_hash = 0;
  return out.status;
}

decode_status decode_reassembled(const uint8_t* ip, uint32_t len,
                                 const decoded_packet& original, decoded_packet& out) {
  decode_packet(ip, len, len, original.ts_ns, linktype::raw, out);
  out.l2 = original.l2;
  return out.status;
}

bool linktype_supported(int lt) {
  switch (lt) {
  case linktype::null_bsd:
  case linktype::en10mb:
  case linktype::ppp:
  case linktype::raw_12:
  case linktype::raw_14:
  case linktype::ppp_hdlc:
  case linktype::raw:
  case linktype::c_hdlc:
  case linktype::loop:
  case linktype::linux_sll:
  case linktype::ipv4:
  case linktype::ipv6:
  case linktype::linux_sll2:
    return true;
  default:
    return false;
  }
}

const char* to_string(decode_status s) {
  switch (s) {
  case decode_status::ok: return "ok";
  case decode_status::non_ip: return "non_ip";
  case decode_status::truncated: return "truncated";
  case decode_status::malformed: return "malformed";
  case decode_status::unsupported_link: return "unsupported_link";
  }
  return "unknown";
}

} // namespace metaprobe
