// SPDX-License-Identifier: Apache-2.0
#include "capture/decoder.hpp"

#include <cstddef>
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
  uint32_t cap;  // usable captured bytes (<= 65535); the end of the innermost
                 // tunnel's payload once a tunnel is opened
  uint32_t wire; // wire length (end of the tunnel's IP packet on the wire)
  decoded_packet& out;
  const decode_options& opts;
  // Address words for the hash, loaded from the packet (not from out.src,
  // whose freshly stored bytes would stall store-to-load forwarding).
  uint64_t a0 = 0, a1 = 0, b0 = 0, b1 = 0;
  int vlans = 0; // VLAN tags seen in every Ethernet header so far
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
  int& vlans = w.vlans;
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


// ---- tunnels (decoder.hpp: "Tunnels") ----

constexpr uint8_t ipproto_ipip = 4;
constexpr uint8_t ipproto_ipv6 = 41;
constexpr uint8_t ipproto_gre = 47;

constexpr uint16_t port_vxlan = 4789;
constexpr uint16_t port_vxlan_gpe = 4790;
constexpr uint16_t port_geneve = 6081;
constexpr uint16_t port_gtpu = 2152;
constexpr uint16_t port_l2tp = 1701;
constexpr uint16_t port_teredo = 3544;

constexpr uint16_t et_teb = 0x6558;       // Transparent Ethernet Bridging
constexpr uint16_t et_ppp = 0x880b;       // PPP (PPTP's enhanced GRE)
constexpr uint16_t et_erspan2 = 0x88be;   // ERSPAN type I/II
constexpr uint16_t et_erspan3 = 0x22eb;   // ERSPAN type III

constexpr int max_gre_sre = 16;           // RFC 1701 source route entries walked
constexpr int max_gtpu_ext = 16;          // GTP-U extension headers walked

// What follows a tunnel header.
enum class inner_type : uint8_t { ethernet, ethertype, ip, ppp };

struct tunnel_header {
  decap_kind kind = decap_kind::gre;
  inner_type type = inner_type::ip;
  uint16_t et = 0;            // inner_type::ethertype
  uint32_t off = 0;           // start of the inner header
  uint32_t end = 0;           // end of the tunnel's payload
  uint32_t id_key = 0;        // part of the tunnel identity (VNI, GRE key, ERSPAN session)
  bool has_id_key = false;
  bool pair_in_id = true;     // the outer address pair is part of the identity
  bool vni = false;           // id_key is a VNI/VSID/GRE key (tunnel_context::vni)
  bool teid = false;          // teid_value holds a GTP-U TEID
  uint32_t teid_value = 0;
  bool erspan = false;
  uint16_t erspan_session = 0;
  uint16_t erspan_vlan = 0;
  uint8_t event = 0;          // tunnel_context::ev_* when the header is a control message
};

// GRE (RFC 2784/2890, RFC 1701 routing, RFC 2637 enhanced GRE) at p..end,
// with ERSPAN I/II/III behind it.
bool parse_gre(const uint8_t* d, uint32_t p, uint32_t end, tunnel_header& h) {
  if (p + 4 > end)
    return false;
  const uint16_t flags = rd16(d + p);
  const uint16_t proto = rd16(d + p + 2);
  uint32_t o = p + 4;
  switch (flags & 7) {
  case 0:
    if (flags & 0xc000) // checksum and/or routing: checksum + offset
      o += 4;
    if (flags & 0x2000) { // key
      if (o + 4 > end)
        return false;
      h.id_key = rd32(d + o);
      h.has_id_key = true;
      h.vni = true;
      o += 4;
    }
    if (flags & 0x1000) // sequence number
      o += 4;
    if (flags & 0x4000) { // RFC 1701 source route entries, ended by a NULL SRE
      for (int n = 0;; ++n) {
        if (n >= max_gre_sre || o + 4 > end)
          return false;
        const uint16_t af = rd16(d + o);
        const uint8_t len = d[o + 3];
        o += 4u + len;
        if (af == 0 && len == 0)
          break;
      }
    }
    break;
  case 1: // PPTP: key = payload length + call id (one per direction: not an identity)
    if (proto != et_ppp || !(flags & 0x2000))
      return false;
    o += 4;
    if (flags & 0x1000)
      o += 4;
    if (flags & 0x0080) // acknowledgment number
      o += 4;
    break;
  default:
    return false;
  }
  switch (proto) {
  case et_ipv4:
  case et_ipv6:
  case et_mpls_uc:
  case et_mpls_mc:
    h.type = inner_type::ethertype;
    h.et = proto;
    break;
  case et_teb:
    h.type = inner_type::ethernet;
    break;
  case et_ppp:
    h.type = inner_type::ppp;
    break;
  case et_erspan2:
    h.kind = decap_kind::erspan;
    h.type = inner_type::ethernet;
    if (flags & 0x1000) { // type II: 8-byte header; type I has none
      if (o + 8 > end || (d[o] >> 4) != 1)
        return false;
      h.erspan = true;
      h.erspan_vlan = rd16(d + o) & 0x0fff;
      h.erspan_session = rd16(d + o + 2) & 0x03ff;
      o += 8;
    }
    break;
  case et_erspan3: {
    h.kind = decap_kind::erspan;
    if (o + 12 > end || (d[o] >> 4) != 2)
      return false;
    h.erspan = true;
    h.erspan_vlan = rd16(d + o) & 0x0fff;
    h.erspan_session = rd16(d + o + 2) & 0x03ff;
    const unsigned ft = (d[o + 10] >> 2) & 0x1f; // frame type
    const bool platform = (d[o + 11] & 1) != 0;  // O: platform-specific sub-header
    o += 12 + (platform ? 8 : 0);
    if (ft == 0)
      h.type = inner_type::ethernet;
    else if (ft == 2)
      h.type = inner_type::ip;
    else
      return false;
    break;
  }
  default:
    return false;
  }
  if (h.erspan) { // the session is the identity (a GRE key is rare here)
    h.id_key = h.erspan_session;
    h.has_id_key = true;
    h.vni = false;
  }
  h.off = o;
  h.end = end;
  return o < end;
}

// VXLAN (RFC 7348): I flag set, 24-bit VNI, inner Ethernet.
bool parse_vxlan(const uint8_t* d, uint32_t p, uint32_t end, tunnel_header& h) {
  if (p + 8 >= end || !(d[p] & 0x08))
    return false;
  h.kind = decap_kind::vxlan;
  h.type = inner_type::ethernet;
  h.id_key = rd32(d + p + 4) >> 8;
  h.has_id_key = h.vni = true;
  h.off = p + 8;
  h.end = end;
  return true;
}

// VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe): version 0, next protocol when P.
bool parse_vxlan_gpe(const uint8_t* d, uint32_t p, uint32_t end, tunnel_header& h) {
  if (p + 8 >= end || (d[p] & 0x30) != 0)
    return false;
  h.kind = decap_kind::vxlan_gpe;
  h.type = inner_type::ethernet;
  if (d[p] & 0x04) {
    switch (d[p + 3]) {
    case 1: h.type = inner_type::ethertype; h.et = et_ipv4; break;
    case 2: h.type = inner_type::ethertype; h.et = et_ipv6; break;
    case 3: h.type = inner_type::ethernet; break;
    case 5: h.type = inner_type::ethertype; h.et = et_mpls_uc; break;
    default: return false; // NSH and others: not decoded
    }
  }
  if (d[p] & 0x08) {
    h.id_key = rd32(d + p + 4) >> 8;
    h.has_id_key = h.vni = true;
  }
  h.off = p + 8;
  h.end = end;
  return true;
}

// Geneve (RFC 8926): version 0, options skipped, protocol type = ethertype.
bool parse_geneve(const uint8_t* d, uint32_t p, uint32_t end, tunnel_header& h) {
  if (p + 8 > end || (d[p] >> 6) != 0)
    return false;
  const uint32_t o = p + 8 + static_cast<uint32_t>(d[p] & 0x3f) * 4;
  const uint16_t proto = rd16(d + p + 2);
  h.kind = decap_kind::geneve;
  if (proto == et_teb) {
    h.type = inner_type::ethernet;
  } else if (proto == et_ipv4 || proto == et_ipv6 || proto == et_mpls_uc) {
    h.type = inner_type::ethertype;
    h.et = proto;
  } else {
    return false;
  }
  h.id_key = rd32(d + p + 4) >> 8;
  h.has_id_key = h.vni = true;
  h.off = o;
  h.end = end;
  return o < end;
}

// GTP-U v1 (3GPP TS 29.281): T-PDU only; other messages are control.
bool parse_gtpu(const uint8_t* d, uint32_t p, uint32_t end, tunnel_header& h) {
  if (p + 8 > end)
    return false;
  const uint8_t f = d[p];
  if ((f >> 5) != 1 || !(f & 0x10)) // version 1, protocol type GTP
    return false;
  if (d[p + 1] != 0xff) { // echo, error indication, end marker, ...
    h.event = tunnel_context::ev_gtpu_control;
    return false;
  }
  const uint32_t msg_end = p + 8 + rd16(d + p + 2);
  if (msg_end < end)
    end = msg_end;
  uint32_t o = p + 8;
  if (f & 0x07) { // sequence number, N-PDU number, next extension header type
    if (o + 4 > end)
      return false;
    uint8_t next = (f & 0x04) ? d[o + 3] : 0;
    o += 4;
    for (int n = 0; next != 0; ++n) {
      if (n >= max_gtpu_ext || o >= end)
        return false;
      const uint32_t len = static_cast<uint32_t>(d[o]) * 4;
      if (len == 0 || o + len > end)
        return false;
      next = d[o + len - 1];
      o += len;
    }
  }
  h.kind = decap_kind::gtpu;
  h.type = inner_type::ip;
  h.teid = true;
  h.teid_value = rd32(d + p + 4);
  h.off = o;
  h.end = end;
  return o < end;
}

// L2TPv2 (RFC 2661) data message with PPP.
bool parse_l2tp(const uint8_t* d, uint32_t p, uint32_t end, tunnel_header& h) {
  if (p + 6 > end)
    return false;
  const uint16_t flags = rd16(d + p);
  if ((flags & 0x0f) != 2 || (flags & 0x34f0) != 0) // version 2, reserved bits clear
    return false;
  if (flags & 0x8000) {
    h.event = tunnel_context::ev_l2tp_control;
    return false;
  }
  uint32_t o = p + 2;
  if (flags & 0x4000) { // length
    const uint32_t msg_end = p + rd16(d + o);
    if (msg_end < end)
      end = msg_end;
    o += 2;
  }
  o += 4; // tunnel id, session id (one per direction: not an identity)
  if (flags & 0x0800)
    o += 4; // Ns, Nr
  if (flags & 0x0200) { // offset size + padding
    if (o + 2 > end)
      return false;
    o += 2u + rd16(d + o);
  }
  h.kind = decap_kind::l2tp;
  h.type = inner_type::ppp;
  h.off = o;
  h.end = end;
  return o < end;
}

// Teredo (RFC 4380): optional authentication and origin indications, then an
// IPv6 packet that fills the datagram exactly (else it is not Teredo).
bool parse_teredo(const uint8_t* d, uint32_t p, uint32_t end, tunnel_header& h) {
  uint32_t o = p;
  if (o + 4 <= end && rd16(d + o) == 1) // authentication indication
    o += 4u + d[o + 2] + d[o + 3] + 8 + 1;
  if (o + 8 <= end && rd16(d + o) == 0) // origin indication
    o += 8;
  if (o + 40 > end || (d[o] >> 4) != 6 || o + 40 + rd16(d + o + 4) != end)
    return false;
  h.kind = decap_kind::teredo;
  h.type = inner_type::ethertype;
  h.et = et_ipv6;
  h.pair_in_id = false; // global IPv6 inside; relays are asymmetric
  h.off = o;
  h.end = end;
  return true;
}

bool is_extra_vxlan_port(const decode_options& o, uint16_t port) {
  for (uint16_t x : o.vxlan_ports)
    if (x != 0 && x == port)
      return true;
  return false;
}

// The tunnel whose header starts the payload of the decoded packet, if any.
bool find_tunnel(const walk& w, tunnel_header& h) {
  const decoded_packet& out = w.out;
  const uint8_t* d = w.d;
  const uint32_t p = out.payload_off;
  const uint32_t end = p + out.payload_len;
  const decode_options& o = w.opts;
  switch (out.l4_proto) {
  case ipproto_ipip:
  case ipproto_ipv6:
    if (!o.enabled(decap_kind::ip_in_ip) || p >= end)
      return false;
    h.kind = decap_kind::ip_in_ip;
    h.type = inner_type::ethertype;
    h.et = out.l4_proto == ipproto_ipip ? et_ipv4 : et_ipv6;
    // IPv6 inside (6in4, 6to4, 6in6) is global and 6to4 relays are
    // asymmetric (the reply comes back through another relay): the outer
    // pair would split the flow. IPv4 inside (IPIP, DS-Lite's 4in6) may be
    // private and overlap between tunnels: the pair keeps them apart.
    h.pair_in_id = h.et == et_ipv4;
    h.off = p;
    h.end = end;
    return true;
  case ipproto_gre:
    if (!parse_gre(d, p, end, h))
      return false;
    return o.enabled(h.kind);
  case ipproto_udp: {
    const uint16_t sp = out.sport, dp = out.dport;
    if (dp == port_vxlan || is_extra_vxlan_port(o, dp))
      return o.enabled(decap_kind::vxlan) && parse_vxlan(d, p, end, h);
    switch (dp) {
    case port_vxlan_gpe:
      return o.enabled(decap_kind::vxlan_gpe) && parse_vxlan_gpe(d, p, end, h);
    case port_geneve:
      return o.enabled(decap_kind::geneve) && parse_geneve(d, p, end, h);
    case port_gtpu:
      return o.enabled(decap_kind::gtpu) && parse_gtpu(d, p, end, h);
    default:
      break;
    }
    if (dp == port_l2tp || sp == port_l2tp)
      return o.enabled(decap_kind::l2tp) && parse_l2tp(d, p, end, h);
    if (dp == port_teredo || sp == port_teredo)
      return o.enabled(decap_kind::teredo) && parse_teredo(d, p, end, h);
    return false;
  }
  default:
    return false;
  }
}

inline bool may_be_tunnel(const decoded_packet& p) {
  return p.l4_proto == ipproto_udp || p.l4_proto == ipproto_gre ||
         p.l4_proto == ipproto_ipip || p.l4_proto == ipproto_ipv6;
}

// Clears what the decoder learnt of the current L3/L4 (the tunnel's outer
// packet) before the inner packet is decoded.
inline void reset_l3(walk& w) {
  constexpr size_t from = offsetof(decoded_packet, ip_version);
  constexpr size_t to = offsetof(decoded_packet, tunnel);
  std::memset(reinterpret_cast<uint8_t*>(&w.out) + from, 0, to - from);
  w.a0 = w.a1 = w.b0 = w.b1 = 0;
}

// Opens the tunnel whose header starts the payload of the decoded packet and
// decodes what it carries. False when there is none (the packet stays as it
// is); true with `st` the inner packet's status otherwise.
bool decapsulate(walk& w, decode_status& st) {
  decoded_packet& out = w.out;
  tunnel_context& t = out.tunnel;
  tunnel_header h;
  if (!find_tunnel(w, h)) {
    t.events |= h.event;
    return false;
  }
  if (t.depth >= tunnel_context::max_layers) {
    t.events |= tunnel_context::ev_depth_exceeded;
    return false;
  }
  // A UDP tunnel is found by its port: when what it carries does not decode,
  // the packet is put back as the UDP packet it also is (a flow that merely
  // uses the port must not lose packets).
  const bool by_port = out.l4_proto == ipproto_udp;
  decoded_packet saved_out;
  walk saved_w = w;
  if (by_port)
    std::memcpy(static_cast<void*>(&saved_out), &out, sizeof out);
  // The identity of this layer: its IP address pair (symmetric), its kind
  // and, where both directions share it, its key.
  const uint32_t pair = hash_words(w.a0, w.a1, w.b0, w.b1, out.ip_version, 0, 0, 0);
  if (t.depth == 0) {
    t.outer_hash = pair;
    t.outer_src = out.src;
    t.outer_dst = out.dst;
  }
  if (h.pair_in_id) {
    uint64_t id = (t.id * 0x9e3779b97f4a7c15ULL) ^ pair ^
                  (static_cast<uint64_t>(h.kind) << 32 | uint64_t{1} << 40);
    if (h.has_id_key)
      id = fmix64(id) ^ (static_cast<uint64_t>(h.id_key) << 16);
    t.id = fmix64(id);
  }
  t.kinds[t.depth++] = static_cast<uint8_t>(h.kind);
  if (h.vni) {
    t.has_vni = true;
    t.vni = h.id_key;
  }
  if (h.teid) {
    t.has_teid = true;
    t.teid = h.teid_value;
  }
  if (h.erspan) {
    t.has_erspan = true;
    t.erspan_session = h.erspan_session;
    t.erspan_vlan = h.erspan_vlan;
  }
  // The inner packet ends where the tunnel's payload ends.
  const uint32_t wire_end = static_cast<uint32_t>(out.l3_off) + out.l3_wire_len;
  w.cap = h.end;
  w.wire = wire_end > h.end ? wire_end : h.end;
  reset_l3(w);
  switch (h.type) {
  case inner_type::ethernet:
    if (h.off + 14 > w.cap) {
      st = decode_status::truncated;
      break;
    }
    read_ethernet(out, w.d + h.off);
    st = decode_from_ethertype(w, h.off + 14, rd16(w.d + h.off + 12));
    break;
  case inner_type::ethertype:
    st = decode_from_ethertype(w, h.off, h.et);
    break;
  case inner_type::ip:
    st = decode_raw(w, h.off);
    break;
  case inner_type::ppp:
    st = decode_ppp(w, h.off);
    break;
  }
  // What the tunnel carries may legitimately be something other than IP
  // (ARP in VXLAN): only a cut or broken inner packet, or an L2TP payload
  // that is not IP (LCP, or no L2TP at all), puts the UDP packet back.
  if (by_port && (st == decode_status::truncated || st == decode_status::malformed ||
                  (st == decode_status::non_ip && h.kind == decap_kind::l2tp))) {
    std::memcpy(static_cast<void*>(&out), &saved_out, sizeof out);
    w.cap = saved_w.cap;
    w.wire = saved_w.wire;
    w.a0 = saved_w.a0;
    w.a1 = saved_w.a1;
    w.b0 = saved_w.b0;
    w.b1 = saved_w.b1;
    w.vlans = saved_w.vlans;
    out.tunnel.events |= tunnel_context::ev_bad_inner;
    st = decode_status::ok;
    return false;
  }
  // ERSPAN's VLAN is the mirrored frame's, when the frame itself is untagged.
  if (h.erspan && out.l2.vlan_id == 0)
    out.l2.vlan_id = h.erspan_vlan;
  return true;
}

// Decodes from `st` (the link's status) through every tunnel, then mixes the
// tunnel identity into the flow hash.
decode_status decode_tunnels(walk& w, decode_status st) {
  decoded_packet& out = w.out;
  while (st == decode_status::ok && !out.is_fragment && may_be_tunnel(out)) {
    if (!decapsulate(w, st))
      break;
  }
  if (st != decode_status::ok)
    out.flow_hash = 0;
  else if (out.tunnel.id != 0)
    out.flow_hash ^= static_cast<uint32_t>(out.tunnel.id ^ (out.tunnel.id >> 32));
  return st;
}
// Resets `out` to the default state for a frame (all-zero bytes are
// decoded_packet's default state; one memset is much cheaper than assigning
// a default-constructed temporary).
void start(decoded_packet& out, const uint8_t* data, uint32_t cap_len, uint32_t wire_len,
           uint64_t ts_ns) {
  static constexpr uint8_t zero[sizeof(decoded_packet)] = {};
  std::memcpy(static_cast<void*>(&out), zero, sizeof out);
  out.data = data;
  out.cap_len = cap_len;
  out.wire_len = wire_len;
  out.ts_ns = ts_ns;
}

// The bytes the walk may read: the capture, at most 65535 (offsets are 16 bit).
uint32_t usable(const uint8_t* data, uint32_t cap_len) {
  if (data == nullptr)
    return 0;
  return cap_len < 65535 ? cap_len : 65535;
}

} // namespace

uint32_t flow_hash_of(const ip_address& a, const ip_address& b, uint16_t port_a,
                      uint16_t port_b, uint8_t proto, uint64_t tunnel_id) {
  uint32_t h = hash_words(ld64(a.bytes.data()), ld64(a.bytes.data() + 8), ld64(b.bytes.data()),
                          ld64(b.bytes.data() + 8), a.family, port_a, port_b, proto);
  if (tunnel_id != 0)
    h ^= static_cast<uint32_t>(tunnel_id ^ (tunnel_id >> 32));
  return h;
}

uint32_t shard_hash_of(const decoded_packet& p) {
  if (p.status != decode_status::ok)
    return 0;
  if (p.tunnel.depth != 0)
    return p.tunnel.outer_hash;
  return flow_hash_of(p.src, p.dst, 0, 0, 0);
}

decode_status decode_packet(const uint8_t* data, uint32_t cap_len, uint32_t wire_len,
                            uint64_t ts_ns, int linktype, decoded_packet& out,
                            const decode_options& opts) {
  start(out, data, cap_len, wire_len, ts_ns);
  walk w{data, usable(data, cap_len), wire_len, out, opts};
  out.status = decode_tunnels(w, decode_link(w, linktype));
  return out.status;
}

decode_status decode_reassembled(const uint8_t* ip, uint32_t len,
                                 const decoded_packet& original, decoded_packet& out,
                                 const decode_options& opts) {
  start(out, ip, len, len, original.ts_ns);
  // The context of what was around the fragments: their L2 and tunnels. An
  // Ethernet header inside the reassembled packet (a tunnel) replaces the MACs.
  out.l2 = original.l2;
  out.tunnel = original.tunnel;
  walk w{ip, usable(ip, len), len, out, opts};
  w.vlans = (out.l2.vlan_id != 0) + (out.l2.post_vlan_id != 0);
  out.status = decode_tunnels(w, decode_raw(w, 0));
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
