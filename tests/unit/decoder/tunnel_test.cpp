// SPDX-License-Identifier: Apache-2.0
// Decoder tunnels: every encapsulation of decoder.hpp "Tunnels" gives the
// same innermost packet as the plain frame, with its layers, identity and
// events; broken and ambiguous headers leave the packet as it is; the
// options turn kinds off; outer and inner fragments reassemble and open.

#include <doctest/doctest.h>

#include <cstring>

#include "capture/decoder.hpp"
#include "capture/packet_source.hpp"
#include "classifier/ip_reassembly.hpp"
#include "core/decap_config.hpp"
#include "frame_builder.hpp"

using namespace metaprobe;
using namespace mp_test;

namespace {

constexpr v4addr outer_a{198, 51, 100, 1};
constexpr v4addr outer_b{198, 51, 100, 2};
constexpr v6addr outer6_a{0x20, 0x01, 0x0d, 0xb8, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
constexpr v6addr outer6_b{0x20, 0x01, 0x0d, 0xb8, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
constexpr mac inner_src{0x02, 0x11, 0x11, 0x11, 0x11, 0x11};
constexpr mac inner_dst{0x02, 0x22, 0x22, 0x22, 0x22, 0x22};

const buf http_get = [] {
  const char* t = "GET /inside HTTP/1.1\r\nHost: example.test\r\n\r\n";
  return buf(t, t + std::strlen(t));
}();

// The inner packet every test carries: TCP 10.0.0.1:40000 -> 192.168.1.2:80.
buf inner_ip() { return ipv4(ip_a, ip_b, tcp(40000, 80, http_get)); }
buf inner_eth() { return eth(0x0800, inner_dst, inner_src) + inner_ip(); }

ipv4_opts proto(uint8_t p) {
  ipv4_opts o;
  o.proto = p;
  return o;
}

buf outer4(const buf& payload, uint8_t p, const v4addr& s = outer_a, const v4addr& d = outer_b) {
  return eth(0x0800) + ipv4(s, d, payload, proto(p));
}
buf outer_udp(uint16_t dport, const buf& payload, uint16_t sport = 50123,
              const v4addr& s = outer_a, const v4addr& d = outer_b) {
  return outer4(udp(sport, dport, payload), 17, s, d);
}

struct decoded {
  buf frame;
  decoded_packet p;
};

decoded decode(const buf& frame, const decode_options& o = {}, int lt = linktype::en10mb) {
  decoded d;
  d.frame = frame;
  decode_packet(d.frame.data(), static_cast<uint32_t>(d.frame.size()),
                static_cast<uint32_t>(d.frame.size()), 42, lt, d.p, o);
  return d;
}

// The innermost packet is the plain one's: addresses, ports, payload.
void check_inner(const decoded& d) {
  const decoded_packet& p = d.p;
  REQUIRE(p.status == decode_status::ok);
  CHECK(p.ip_version == 4);
  CHECK(p.l4_proto == 6);
  CHECK(p.src == ip_address::v4(ip_a.data()));
  CHECK(p.dst == ip_address::v4(ip_b.data()));
  CHECK(p.sport == 40000);
  CHECK(p.dport == 80);
  CHECK(p.l3_len == 20 + 20 + http_get.size());
  REQUIRE(p.payload_len == http_get.size());
  CHECK(std::memcmp(p.payload(), http_get.data(), http_get.size()) == 0);
  CHECK(p.flow_hash == flow_hash_of(p.dst, p.src, p.dport, p.sport, 6, p.tunnel.id));
}

void check_layers(const decoded_packet& p, std::initializer_list<decap_kind> kinds) {
  REQUIRE(p.tunnel.depth == kinds.size());
  size_t i = 0;
  for (decap_kind k : kinds)
    CHECK(p.tunnel.kinds[i++] == static_cast<uint8_t>(k));
}

// What the frame gives with decapsulation off: the outer packet.
void check_untouched(const buf& frame, uint8_t outer_proto) {
  const decoded d = decode(frame);
  CHECK(d.p.status == decode_status::ok);
  CHECK(d.p.tunnel.depth == 0);
  CHECK(d.p.tunnel.id == 0);
  CHECK(d.p.l4_proto == outer_proto);
  CHECK(d.p.src == ip_address::v4(outer_a.data()));
}

decode_options only(decap_kind k) {
  decode_options o;
  o.kinds = 1u << static_cast<unsigned>(k);
  return o;
}

// Two fragments through IP reassembly, the datagram decoded again (it points
// into `out`).
decoded_packet reassemble(const decoded_packet& first, const decoded_packet& last,
                          std::vector<uint8_t>& out) {
  ip_reassembly_limits lim;
  ip_reassembler r(lim);
  CHECK_FALSE(r.add(first, out));
  REQUIRE(r.add(last, out));
  decoded_packet p;
  REQUIRE(decode_reassembled(out.data(), static_cast<uint32_t>(out.size()), last, p) ==
          decode_status::ok);
  return p;
}

} // namespace

TEST_CASE("plain frames are not tunnelled") {
  const decoded d = decode(eth(0x0800) + inner_ip());
  CHECK(d.p.status == decode_status::ok);
  CHECK(d.p.tunnel.depth == 0);
  CHECK(d.p.tunnel.id == 0);
  CHECK(shard_hash_of(d.p) == flow_hash_of(d.p.src, d.p.dst, 0, 0, 0));
}

TEST_CASE("GRE: plain, key, checksum, sequence; IPv4, IPv6, TEB, MPLS") {
  SUBCASE("IPv4 payload, no options") {
    const decoded d = decode(outer4(gre(0x0800) + inner_ip(), 47));
    check_inner(d);
    check_layers(d.p, {decap_kind::gre});
    CHECK_FALSE(d.p.tunnel.has_vni);
    CHECK(d.p.tunnel.outer_src == ip_address::v4(outer_a.data()));
    CHECK(d.p.tunnel.outer_dst == ip_address::v4(outer_b.data()));
    CHECK(d.p.l2.has_ethernet);
  }
  SUBCASE("checksum + key + sequence") {
    gre_opts o;
    o.checksum = o.key = o.seq = true;
    o.key_value = 0xdeadbeef;
    const decoded d = decode(outer4(gre(0x0800, o) + inner_ip(), 47));
    check_inner(d);
    CHECK(d.p.tunnel.has_vni);
    CHECK(d.p.tunnel.vni == 0xdeadbeef);
  }
  SUBCASE("transparent Ethernet bridging (gretap, NVGRE): inner MACs") {
    gre_opts o;
    o.key = true;
    o.key_value = 0x00abcd00; // VSID 0xabcd, flow id 0
    const decoded d = decode(outer4(gre(0x6558, o) + inner_eth(), 47));
    check_inner(d);
    CHECK(std::memcmp(d.p.l2.src_mac, inner_src.data(), 6) == 0);
    CHECK(std::memcmp(d.p.l2.dst_mac, inner_dst.data(), 6) == 0);
  }
  SUBCASE("MPLS in GRE") {
    const decoded d = decode(outer4(gre(0x8847) + mpls(100, true) + inner_ip(), 47));
    check_inner(d);
    REQUIRE(d.p.l2.mpls_count == 1);
    CHECK((d.p.l2.mpls[0] >> 12) == 100);
  }
  SUBCASE("IPv6 inner over IPv6 outer (ip6gre)") {
    const buf in6 = ipv6(ip6_a, ip6_b, 6, tcp(40000, 80, http_get));
    const buf f = eth(0x86dd) + ipv6(outer6_a, outer6_b, 47, gre(0x86dd) + in6);
    const decoded d = decode(f);
    REQUIRE(d.p.status == decode_status::ok);
    CHECK(d.p.ip_version == 6);
    CHECK(d.p.src == ip_address::v6(ip6_a.data()));
    CHECK(d.p.dport == 80);
    CHECK(d.p.tunnel.outer_src == ip_address::v6(outer6_a.data()));
    check_layers(d.p, {decap_kind::gre});
  }
  SUBCASE("PPTP enhanced GRE with PPP") {
    buf g;
    put16(g, 0x3001); // K, S, version 1
    put16(g, 0x880b);
    put16(g, static_cast<uint32_t>(inner_ip().size() + 4));
    put16(g, 0x4242); // call id
    put32(g, 1);      // sequence
    const decoded d = decode(outer4(g + bytes({0xff, 0x03, 0x00, 0x21}) + inner_ip(), 47));
    check_inner(d);
    CHECK_FALSE(d.p.tunnel.has_vni); // call ids differ per direction
  }
  SUBCASE("unknown protocol, version 2, header past the payload: left as GRE") {
    check_untouched(outer4(gre(0x1234) + inner_ip(), 47), 47);
    gre_opts v2;
    v2.version = 2;
    check_untouched(outer4(gre(0x0800, v2) + inner_ip(), 47), 47);
    gre_opts key;
    key.key = true;
    check_untouched(outer4(cut(gre(0x0800, key), 6), 47), 47);
  }
}

TEST_CASE("ERSPAN type I, II, III") {
  SUBCASE("type I: GRE 0x88be without sequence, bare Ethernet") {
    const decoded d = decode(outer4(gre(0x88be) + inner_eth(), 47));
    check_inner(d);
    check_layers(d.p, {decap_kind::erspan});
    CHECK_FALSE(d.p.tunnel.has_erspan);
  }
  SUBCASE("type II: session and VLAN") {
    gre_opts o;
    o.seq = true;
    const decoded d = decode(outer4(gre(0x88be, o) + erspan2(321, 55) + inner_eth(), 47));
    check_inner(d);
    check_layers(d.p, {decap_kind::erspan});
    CHECK(d.p.tunnel.has_erspan);
    CHECK(d.p.tunnel.erspan_session == 321);
    CHECK(d.p.tunnel.erspan_vlan == 55);
    CHECK(d.p.l2.vlan_id == 55); // the mirrored frame had no tag of its own
    CHECK(std::memcmp(d.p.l2.src_mac, inner_src.data(), 6) == 0);
  }
  SUBCASE("type II: a tagged mirrored frame keeps its own tag") {
    gre_opts o;
    o.seq = true;
    const buf tagged = eth(0x8100, inner_dst, inner_src) + vlan(77, 0x0800) + inner_ip();
    const decoded d = decode(outer4(gre(0x88be, o) + erspan2(1, 55) + tagged, 47));
    check_inner(d);
    CHECK(d.p.l2.vlan_id == 77);
  }
  SUBCASE("type III without and with the platform sub-header, over IPv6") {
    for (bool platform : {false, true}) {
      CAPTURE(platform);
      gre_opts o;
      o.seq = true;
      const buf f = eth(0x86dd) +
                    ipv6(outer6_a, outer6_b, 47, gre(0x22eb, o) + erspan3(900, platform) + inner_eth());
      const decoded d = decode(f);
      check_inner(d);
      CHECK(d.p.tunnel.erspan_session == 900);
      CHECK(d.p.tunnel.outer_src == ip_address::v6(outer6_a.data()));
    }
  }
  SUBCASE("type III with frame type IP") {
    gre_opts o;
    o.seq = true;
    check_inner(decode(outer4(gre(0x22eb, o) + erspan3(5, false, 2) + inner_ip(), 47)));
  }
  SUBCASE("sessions are part of the identity") {
    gre_opts o;
    o.seq = true;
    const decoded a = decode(outer4(gre(0x88be, o) + erspan2(1) + inner_eth(), 47));
    const decoded b = decode(outer4(gre(0x88be, o) + erspan2(2) + inner_eth(), 47));
    CHECK(a.p.tunnel.id != b.p.tunnel.id);
    CHECK(a.p.flow_hash != b.p.flow_hash);
  }
  SUBCASE("wrong version: left as GRE") {
    gre_opts o;
    o.seq = true;
    buf bad = erspan2(1);
    bad[0] = 0x30;
    check_untouched(outer4(gre(0x88be, o) + bad + inner_eth(), 47), 47);
  }
}

TEST_CASE("VXLAN, VXLAN-GPE, Geneve") {
  SUBCASE("VXLAN on 4789: VNI") {
    const decoded d = decode(outer_udp(4789, vxlan_hdr(4242) + inner_eth()));
    check_inner(d);
    check_layers(d.p, {decap_kind::vxlan});
    CHECK(d.p.tunnel.has_vni);
    CHECK(d.p.tunnel.vni == 4242);
    CHECK(std::memcmp(d.p.l2.src_mac, inner_src.data(), 6) == 0);
  }
  SUBCASE("ARP inside VXLAN is not IP; a cut inner frame leaves the UDP packet") {
    const decoded arp = decode(outer_udp(4789, vxlan_hdr(1) + eth(0x0806) + filler(28)));
    CHECK(arp.p.status == decode_status::non_ip);
    const decoded cut_inner = decode(outer_udp(4789, vxlan_hdr(1) + cut(inner_eth(), 20)));
    CHECK(cut_inner.p.status == decode_status::ok);
    CHECK(cut_inner.p.dport == 4789);
    CHECK(cut_inner.p.tunnel.depth == 0);
    CHECK(cut_inner.p.tunnel.events == tunnel_context::ev_bad_inner);
  }
  SUBCASE("VXLAN without the I flag is not VXLAN") {
    check_untouched(outer_udp(4789, vxlan_hdr(1, 0) + inner_eth()), 17);
  }
  SUBCASE("extra VXLAN ports only when configured") {
    const buf f = outer_udp(8472, vxlan_hdr(7) + inner_eth());
    check_untouched(f, 17);
    decode_options o;
    REQUIRE(parse_vxlan_ports("8472, 9999", &o).empty());
    const decoded d = decode(f, o);
    check_inner(d);
    CHECK(d.p.tunnel.vni == 7);
  }
  SUBCASE("VNIs are part of the identity; the entropy source port is not") {
    const decoded a = decode(outer_udp(4789, vxlan_hdr(1) + inner_eth(), 1000));
    const decoded b = decode(outer_udp(4789, vxlan_hdr(1) + inner_eth(), 2000));
    const decoded c = decode(outer_udp(4789, vxlan_hdr(2) + inner_eth(), 1000));
    CHECK(a.p.tunnel.id == b.p.tunnel.id);
    CHECK(a.p.tunnel.id != c.p.tunnel.id);
  }
  SUBCASE("the identity is symmetric: the reply crosses the tunnel the other way") {
    const buf reply_inner = eth(0x0800, inner_src, inner_dst) +
                            ipv4(ip_b, ip_a, tcp(80, 40000, http_get));
    const decoded a = decode(outer_udp(4789, vxlan_hdr(9) + inner_eth()));
    const decoded b = decode(outer_udp(4789, vxlan_hdr(9) + reply_inner, 777, outer_b, outer_a));
    CHECK(a.p.tunnel.id == b.p.tunnel.id);
    CHECK(a.p.flow_hash == b.p.flow_hash);
    CHECK(shard_hash_of(a.p) == shard_hash_of(b.p));
  }
  SUBCASE("VXLAN-GPE: IPv4, Ethernet, NSH") {
    const decoded d = decode(outer_udp(4790, vxlan_gpe_hdr(3, 1) + inner_ip()));
    check_inner(d);
    check_layers(d.p, {decap_kind::vxlan_gpe});
    check_inner(decode(outer_udp(4790, vxlan_gpe_hdr(3, 3) + inner_eth())));
    check_untouched(outer_udp(4790, vxlan_gpe_hdr(3, 4) + inner_ip()), 17);
  }
  SUBCASE("Geneve with options, Ethernet and IPv4 payloads") {
    const decoded d = decode(outer_udp(6081, geneve_hdr(77, 0x6558, 3) + inner_eth()));
    check_inner(d);
    check_layers(d.p, {decap_kind::geneve});
    CHECK(d.p.tunnel.vni == 77);
    check_inner(decode(outer_udp(6081, geneve_hdr(77, 0x0800) + inner_ip())));
    buf v1 = geneve_hdr(77, 0x6558);
    v1[0] |= 0x40; // version 1
    check_untouched(outer_udp(6081, v1 + inner_eth()), 17);
  }
}

TEST_CASE("GTP-U: T-PDU with optional fields and extension headers; control messages") {
  const buf in = inner_ip();
  SUBCASE("plain, with sequence, with an extension header") {
    for (int shape = 0; shape < 3; ++shape) {
      CAPTURE(shape);
      const decoded d =
        decode(outer_udp(2152, gtpu_hdr(0x01020304, in.size(), 0xff, shape == 1, shape == 2) + in, 2152));
      check_inner(d);
      check_layers(d.p, {decap_kind::gtpu});
      CHECK(d.p.tunnel.has_teid);
      CHECK(d.p.tunnel.teid == 0x01020304);
    }
  }
  SUBCASE("the TEID differs per direction and is not the identity") {
    const decoded up = decode(outer_udp(2152, gtpu_hdr(1, in.size()) + in, 2152));
    const decoded down = decode(outer_udp(2152, gtpu_hdr(2, in.size()) + in, 2152, outer_b, outer_a));
    CHECK(up.p.tunnel.id == down.p.tunnel.id);
  }
  SUBCASE("bytes after the GTP length are not inner data") {
    const decoded d = decode(outer_udp(2152, gtpu_hdr(1, in.size()) + in + filler(9), 2152));
    check_inner(d);
  }
  SUBCASE("echo request: a UDP packet with an event") {
    const buf echo = gtpu_hdr(0, 4, 1, true);
    const decoded d = decode(outer_udp(2152, echo, 2152));
    CHECK(d.p.status == decode_status::ok);
    CHECK(d.p.tunnel.depth == 0);
    CHECK(d.p.tunnel.events == tunnel_context::ev_gtpu_control);
    CHECK(d.p.l4_proto == 17);
    source_counters c;
    c.frame(d.p, 100, 100);
    CHECK(c.decap_gtpu_control == 1);
  }
  SUBCASE("a zero-length extension header is broken: left as UDP") {
    buf h = gtpu_hdr(1, in.size(), 0xff, false, true);
    h[12] = 0;
    check_untouched(outer_udp(2152, h + in, 2152), 17);
  }
}

TEST_CASE("IP in IP: 4in4, 6in4, 4in6, 6in6") {
  const buf in6 = ipv6(ip6_a, ip6_b, 6, tcp(40000, 80, http_get));
  SUBCASE("IPv4 in IPv4") {
    const decoded d = decode(outer4(inner_ip(), 4));
    check_inner(d);
    check_layers(d.p, {decap_kind::ip_in_ip});
  }
  SUBCASE("IPv6 in IPv4 (6in4, 6to4)") {
    const decoded d = decode(outer4(in6, 41));
    REQUIRE(d.p.status == decode_status::ok);
    CHECK(d.p.ip_version == 6);
    CHECK(d.p.src == ip_address::v6(ip6_a.data()));
    CHECK(d.p.tunnel.outer_src == ip_address::v4(outer_a.data()));
    // global IPv6 inside: a reply through another 6to4 relay, or sent
    // natively, is the same flow
    const buf reply = ipv6(ip6_b, ip6_a, 6, tcp(80, 40000, http_get));
    const v4addr relay{192, 88, 99, 1};
    const decoded r = decode(outer4(reply, 41, relay, outer_a));
    const decoded native = decode(eth(0x86dd) + reply);
    CHECK(d.p.tunnel.id == 0);
    CHECK(r.p.flow_hash == d.p.flow_hash);
    CHECK(native.p.flow_hash == d.p.flow_hash);
  }
  SUBCASE("IPv4 inside: the outer pair keeps overlapping private spaces apart") {
    const decoded a = decode(outer4(inner_ip(), 4));
    const v4addr other{203, 0, 113, 9};
    const decoded b = decode(outer4(inner_ip(), 4, other, outer_b));
    CHECK(a.p.tunnel.id != 0);
    CHECK(a.p.flow_hash != b.p.flow_hash);
  }
  SUBCASE("IPv4 in IPv6 and IPv6 in IPv6") {
    check_inner(decode(eth(0x86dd) + ipv6(outer6_a, outer6_b, 4, inner_ip())));
    const decoded d = decode(eth(0x86dd) + ipv6(outer6_a, outer6_b, 41, in6));
    REQUIRE(d.p.status == decode_status::ok);
    CHECK(d.p.src == ip_address::v6(ip6_a.data()));
    check_layers(d.p, {decap_kind::ip_in_ip});
  }
  SUBCASE("a broken inner header gives the inner status") {
    buf bad = inner_ip();
    bad[0] = 0x43; // IHL 3
    CHECK(decode(outer4(bad, 4)).p.status == decode_status::malformed);
    CHECK(decode(outer4(cut(inner_ip(), 10), 4)).p.status == decode_status::truncated);
  }
}

TEST_CASE("L2TPv2 data with PPP; control messages") {
  const buf in = inner_ip();
  const decoded d = decode(outer_udp(1701, l2tp_ppp(0x0021, in.size()) + in, 1701));
  check_inner(d);
  check_layers(d.p, {decap_kind::l2tp});
  // the LAC's port 1701 may be either side
  check_inner(decode(outer_udp(33333, l2tp_ppp(0x0021, in.size()) + in, 1701)));
  const decoded c = decode(outer_udp(1701, l2tp_ppp(0xc021, 8, true) + filler(8), 1701));
  CHECK(c.p.status == decode_status::ok);
  CHECK(c.p.tunnel.depth == 0);
  CHECK(c.p.tunnel.events == tunnel_context::ev_l2tp_control);
  // LCP inside a data message is not IP: the packet stays a UDP packet
  const decoded lcp = decode(outer_udp(1701, l2tp_ppp(0xc021, 8) + filler(8), 1701));
  CHECK(lcp.p.status == decode_status::ok);
  CHECK(lcp.p.l4_proto == 17);
  CHECK(lcp.p.tunnel.depth == 0);
  CHECK(lcp.p.tunnel.id == 0);
  CHECK(lcp.p.tunnel.events == tunnel_context::ev_bad_inner);
  CHECK(lcp.p.flow_hash == flow_hash_of(lcp.p.src, lcp.p.dst, 1701, 1701, 17));
  source_counters sc;
  sc.frame(lcp.p, 1, 1);
  CHECK(sc.decap_bad_inner == 1);
  // a DNS query from client port 1701 is DNS, whatever its id
  for (unsigned id = 0; id < 65536; id += 257) {
    buf q;
    put16(q, id);
    q = q + bytes({0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0, 1, 0, 1});
    const decoded dns = decode(outer_udp(53, q, 1701));
    CHECK(dns.p.status == decode_status::ok);
    CHECK(dns.p.dport == 53);
    CHECK(dns.p.tunnel.depth == 0);
  }
}

TEST_CASE("Teredo only when the IPv6 packet fills the datagram") {
  const buf in6 = ipv6(ip6_a, ip6_b, 6, tcp(40000, 80, http_get));
  const decoded d = decode(outer_udp(3544, in6));
  REQUIRE(d.p.status == decode_status::ok);
  CHECK(d.p.ip_version == 6);
  check_layers(d.p, {decap_kind::teredo});
  // origin indication first
  buf origin = bytes({0, 0, 0x12, 0x34, 1, 2, 3, 4});
  CHECK(decode(outer_udp(50000, origin + in6, 3544)).p.tunnel.depth == 1);
  // one byte too many or too few: not Teredo
  check_untouched(outer_udp(3544, in6 + filler(1)), 17);
  check_untouched(outer_udp(3544, cut(in6, in6.size() - 1)), 17);
}

TEST_CASE("nesting: VXLAN in GRE in 802.1Q, MPLS inside; the depth bound") {
  const buf vx = udp(1, 4789, vxlan_hdr(5) + eth(0x8847, inner_dst, inner_src) + mpls(16, true) +
                                 inner_ip());
  const buf f = eth(0x8100) + vlan(10, 0x0800) +
                ipv4(outer_a, outer_b, gre(0x0800) + ipv4(ip_b, ip_a, vx, proto(17)), proto(47));
  const decoded d = decode(f);
  check_inner(d);
  check_layers(d.p, {decap_kind::gre, decap_kind::vxlan});
  CHECK(d.p.l2.vlan_id == 10);
  CHECK(d.p.l2.mpls_count == 1);
  CHECK(d.p.tunnel.vni == 5);
  CHECK(d.p.tunnel.outer_src == ip_address::v4(outer_a.data()));
  CHECK(shard_hash_of(d.p) ==
        flow_hash_of(ip_address::v4(outer_a.data()), ip_address::v4(outer_b.data()), 0, 0, 0));

  // IP in IP nine deep: eight are opened, the ninth is counted and left closed
  buf pkt = inner_ip();
  for (int i = 0; i < tunnel_context::max_layers + 1; ++i)
    pkt = ipv4(outer_a, outer_b, pkt, proto(4));
  const decoded deep = decode(eth(0x0800) + pkt);
  CHECK(deep.p.status == decode_status::ok);
  CHECK(deep.p.tunnel.depth == tunnel_context::max_layers);
  CHECK(deep.p.tunnel.events == tunnel_context::ev_depth_exceeded);
  CHECK(deep.p.l4_proto == 4);
  source_counters c;
  c.frame(deep.p, 1, 1);
  CHECK(c.decap[static_cast<size_t>(decap_kind::ip_in_ip)] == tunnel_context::max_layers);
  CHECK(c.decap_depth_exceeded == 1);
}

TEST_CASE("link types around tunnels: SLL2, raw IP") {
  buf sll2_frame = sll2(0x0800) + ipv4(outer_a, outer_b, udp(1, 4789, vxlan_hdr(1) + inner_eth()), proto(17));
  check_inner(decode(sll2_frame, {}, linktype::linux_sll2));
  check_inner(decode(ipv4(outer_a, outer_b, gre(0x0800) + inner_ip(), proto(47)), {},
                     linktype::raw));
}

TEST_CASE("decap options turn kinds off") {
  const buf vx = outer_udp(4789, vxlan_hdr(1) + inner_eth());
  const buf g = outer4(gre(0x0800) + inner_ip(), 47);
  decode_options none;
  none.kinds = 0;
  CHECK(decode(vx, none).p.tunnel.depth == 0);
  CHECK(decode(g, none).p.l4_proto == 47);
  CHECK(decode(vx, only(decap_kind::vxlan)).p.tunnel.depth == 1);
  CHECK(decode(g, only(decap_kind::vxlan)).p.tunnel.depth == 0);

  uint32_t kinds = 0;
  CHECK(parse_decap_kinds("all", &kinds).empty());
  CHECK(kinds == decode_options::all_kinds);
  CHECK(parse_decap_kinds("none", &kinds).empty());
  CHECK(kinds == 0);
  CHECK(parse_decap_kinds(" gre , vxlan", &kinds).empty());
  CHECK(kinds == ((1u << unsigned(decap_kind::gre)) | (1u << unsigned(decap_kind::vxlan))));
  CHECK(parse_decap_kinds("all,-teredo", &kinds).empty());
  CHECK(kinds == (decode_options::all_kinds & ~(1u << unsigned(decap_kind::teredo))));
  CHECK_FALSE(parse_decap_kinds("gre,bogus", nullptr).empty());
  CHECK_FALSE(parse_decap_kinds("", nullptr).empty());
  CHECK_FALSE(parse_decap_kinds("gre,,vxlan", nullptr).empty());
  CHECK_FALSE(parse_decap_kinds("gre,none", nullptr).empty());
  CHECK_FALSE(parse_vxlan_ports("0", nullptr).empty());
  CHECK_FALSE(parse_vxlan_ports("70000", nullptr).empty());
  CHECK_FALSE(parse_vxlan_ports("1,2,3,4,5,6,7,8,9", nullptr).empty());
  CHECK_FALSE(parse_vxlan_ports("47x", nullptr).empty());
  CHECK(parse_vxlan_ports("", nullptr).empty());
  for (size_t i = 0; i < decap_kind_count; ++i)
    CHECK(parse_decap_kinds(to_string(static_cast<decap_kind>(i)), nullptr).empty());
}

TEST_CASE("outer fragments: reassembled, then the tunnel opens") {
  // A VXLAN packet fragmented in two by the underlay.
  const buf vx = udp(50000, 4789, vxlan_hdr(31) + inner_eth());
  ipv4_opts f1 = proto(17), f2 = proto(17);
  f1.id = f2.id = 0x7777;
  f1.frag = 0x2000; // MF, offset 0
  const size_t split = 48; // multiple of 8
  f2.frag = static_cast<uint16_t>(split / 8);
  const decoded a = decode(eth(0x0800) + ipv4(outer_a, outer_b, cut(vx, split), f1));
  const decoded b = decode(eth(0x0800) + ipv4(outer_a, outer_b, buf(vx.begin() + split, vx.end()), f2));
  REQUIRE(a.p.is_fragment);
  REQUIRE(b.p.is_fragment);
  CHECK(a.p.tunnel.depth == 0); // not opened before reassembly
  CHECK(shard_hash_of(a.p) == shard_hash_of(b.p));

  std::vector<uint8_t> out;
  const decoded_packet p = reassemble(a.p, b.p, out);
  CHECK(p.src == ip_address::v4(ip_a.data()));
  CHECK(p.dport == 80);
  CHECK(p.tunnel.depth == 1);
  CHECK(p.tunnel.vni == 31);
  // the shard of the reassembled packet is the fragments' shard
  CHECK(shard_hash_of(p) == shard_hash_of(a.p));
  // and its flow is the one of the same packet sent whole
  const decoded whole = decode(eth(0x0800) + ipv4(outer_a, outer_b, vx, proto(17)));
  CHECK(whole.p.tunnel.id == p.tunnel.id);
  CHECK(whole.p.flow_hash == p.flow_hash);
  CHECK(std::memcmp(p.l2.src_mac, inner_src.data(), 6) == 0);
}

TEST_CASE("inner fragments keep the tunnel context through reassembly") {
  ipv4_opts f1, f2;
  f1.frag = 0x2000;
  f2.frag = 3; // 24 bytes
  const buf l4 = tcp(40000, 80, http_get);
  const buf p1 = ipv4(ip_a, ip_b, cut(l4, 24), f1);
  const buf p2 = ipv4(ip_a, ip_b, buf(l4.begin() + 24, l4.end()), f2);
  const decoded a = decode(outer_udp(4789, vxlan_hdr(8) + eth(0x0800, inner_dst, inner_src) + p1));
  const decoded b = decode(outer_udp(4789, vxlan_hdr(8) + eth(0x0800, inner_dst, inner_src) + p2));
  REQUIRE(a.p.is_fragment);
  CHECK(a.p.tunnel.depth == 1);
  CHECK(a.p.src == ip_address::v4(ip_a.data()));
  std::vector<uint8_t> out;
  const decoded_packet p = reassemble(a.p, b.p, out);
  CHECK(p.tunnel.depth == 1);
  CHECK(p.tunnel.id == a.p.tunnel.id);
  CHECK(p.dport == 80);
  const decoded whole = decode(outer_udp(4789, vxlan_hdr(8) + inner_eth()));
  CHECK(p.flow_hash == whole.p.flow_hash);
}

TEST_CASE("property: every cut of every tunnel frame decodes inside its bounds") {
  gre_opts seq;
  seq.seq = true;
  const buf in = inner_ip();
  const std::vector<buf> frames = {
    outer4(gre(0x88be, seq) + erspan2(1) + inner_eth(), 47),
    outer4(gre(0x22eb, seq) + erspan3(1, true) + inner_eth(), 47),
    outer_udp(4789, vxlan_hdr(1) + inner_eth()),
    outer_udp(6081, geneve_hdr(1, 0x6558, 2) + inner_eth()),
    outer_udp(2152, gtpu_hdr(1, in.size(), 0xff, false, true) + in, 2152),
    outer_udp(1701, l2tp_ppp(0x0021, in.size()) + in, 1701),
    outer4(inner_ip(), 4),
  };
  for (const buf& f : frames) {
    for (size_t n = 0; n <= f.size(); ++n) {
      const buf c = cut(f, n);
      decoded_packet p;
      // an exactly sized copy so a sanitizer build sees any read past it
      std::vector<uint8_t> exact(c.begin(), c.end());
      const auto st = decode_packet(exact.empty() ? nullptr : exact.data(),
                                    static_cast<uint32_t>(exact.size()), static_cast<uint32_t>(f.size()),
                                    1, linktype::en10mb, p);
      if (st != decode_status::ok)
        continue;
      CHECK(static_cast<uint32_t>(p.payload_off) + p.payload_len <= n);
      CHECK(static_cast<uint32_t>(p.l3_off) + p.l3_len <= n);
      CHECK(p.l3_wire_len >= p.l3_len);
    }
  }
}
