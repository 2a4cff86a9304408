// SPDX-License-Identifier: Apache-2.0
// L2-L4 decoder: one test per encapsulation, one invalid input per
// validation rule, hash symmetry and distribution, a property test over
// mutated frames.

#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <set>

#include "capture/decoder.hpp"
#include "frame_builder.hpp"

using namespace metaprobe;
using namespace mp_test;

namespace {

struct decoded {
  buf frame;
  decoded_packet p;
  decode_status st;
};

decoded decode(const buf& frame, int lt = linktype::en10mb, int wire_len = -1) {
  decoded d;
  d.frame = frame;
  d.st = decode_packet(d.frame.data(), static_cast<uint32_t>(d.frame.size()),
                       wire_len >= 0 ? static_cast<uint32_t>(wire_len)
                                     : static_cast<uint32_t>(d.frame.size()),
                       42, lt, d.p);
  return d;
}


const buf http = filler(100, 'A');

ipv4_opts proto(uint8_t p) {
  ipv4_opts o;
  o.proto = p;
  return o;
}

buf tcp4() { return ipv4(ip_a, ip_b, tcp(1234, 80, http, 7, 9, 0x18, 4096)); }
buf udp4() { return ipv4(ip_a, ip_b, udp(5353, 53, filler(30)), proto(17)); }
buf tcp6() { return ipv6(ip6_a, ip6_b, 6, tcp(1234, 443, http)); }

void check_tcp4(const decoded_packet& p, uint16_t l3_off) {
  CHECK(p.status == decode_status::ok);
  CHECK(p.ip_version == 4);
  CHECK(p.l4_proto == 6);
  CHECK(p.src == ip_address::v4(ip_a.data()));
  CHECK(p.dst == ip_address::v4(ip_b.data()));
  CHECK(p.l3_off == l3_off);
  CHECK(p.l3_len == 20 + 20 + 100);
  CHECK(p.l4_off == l3_off + 20);
  CHECK(p.payload_off == l3_off + 40);
  CHECK(p.payload_len == 100);
  CHECK(p.sport == 1234);
  CHECK(p.dport == 80);
  CHECK(p.tcp_seq == 7);
  CHECK(p.tcp_ack == 9);
  CHECK(p.tcp_flags == 0x18);
  CHECK(p.tcp_window == 4096);
  CHECK(std::memcmp(p.payload(), http.data(), 100) == 0);
  CHECK_FALSE(p.is_fragment);
  CHECK(p.flow_hash != 0);
}

} // namespace

TEST_CASE("ethernet ipv4 tcp: every field") {
  auto d = decode(eth(0x0800) + tcp4());
  check_tcp4(d.p, 14);
  CHECK(d.p.data == d.frame.data());
  CHECK(d.p.cap_len == d.frame.size());
  CHECK(d.p.wire_len == d.frame.size());
  CHECK(d.p.ts_ns == 42);
  CHECK(d.p.l2.has_ethernet);
  CHECK(std::memcmp(d.p.l2.src_mac, mac_a.data(), 6) == 0);
  CHECK(std::memcmp(d.p.l2.dst_mac, mac_b.data(), 6) == 0);
  CHECK(d.p.l2.vlan_id == 0);
  CHECK(d.p.l2.mpls_count == 0);
  CHECK(d.p.ttl == 64);
  CHECK(d.p.frag_id == 0x1234);
  CHECK(d.p.l3_wire_len == 140);
}

TEST_CASE("ethernet padding is not payload") {
  // 14 + 20 + 8 + 4 = 46 bytes, padded to 60
  buf f = eth(0x0800) + ipv4(ip_a, ip_b, udp(1, 2, filler(4)), proto(17));
  f.resize(60, 0);
  auto d = decode(f);
  REQUIRE(d.st == decode_status::ok);
  CHECK(d.p.l3_len == 32);
  CHECK(d.p.l3_wire_len == 32);
  CHECK(d.p.payload_len == 4);
  CHECK(d.p.payload_off == 14 + 28);
}

TEST_CASE("ethernet ipv6 tcp") {
  auto d = decode(eth(0x86dd) + tcp6());
  REQUIRE(d.st == decode_status::ok);
  CHECK(d.p.ip_version == 6);
  CHECK(d.p.src == ip_address::v6(ip6_a.data()));
  CHECK(d.p.dst == ip_address::v6(ip6_b.data()));
  CHECK(d.p.l3_len == 40 + 20 + 100);
  CHECK(d.p.l4_off == 54);
  CHECK(d.p.payload_off == 74);
  CHECK(d.p.payload_len == 100);
  CHECK(d.p.dport == 443);
}

TEST_CASE("ipv6 traffic class and hop limit") {
  ipv6_opts o;
  o.tclass = 0xb8;
  o.hop = 7;
  auto d = decode(eth(0x86dd) + ipv6(ip6_a, ip6_b, 17, udp(1, 2), o));
  REQUIRE(d.st == decode_status::ok);
  CHECK(d.p.tos == 0xb8);
  CHECK(d.p.ttl == 7);
}

TEST_CASE("ethernet: truncated header, non-IP ethertypes, LLC/SNAP") {
  CHECK(decode(cut(eth(0x0800), 13)).st == decode_status::truncated);
  CHECK(decode(buf{}).st == decode_status::truncated);
  CHECK(decode(eth(0x0806) + filler(28)).st == decode_status::non_ip);  // ARP
  CHECK(decode(eth(0x88cc) + filler(28)).st == decode_status::non_ip);  // LLDP
  // 802.3 + SNAP (OUI 0) + IPv4
  buf snap = bytes({0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00});
  buf t = tcp4();
  auto d = decode(eth(static_cast<uint16_t>(8 + t.size())) + snap + t);
  check_tcp4(d.p, 22);
  // 802.3 + plain LLC (STP)
  CHECK(decode(eth(38) + bytes({0x42, 0x42, 0x03}) + filler(35)).st == decode_status::non_ip);
  CHECK(decode(eth(38) + bytes({0xaa, 0xaa})).st == decode_status::truncated);
}

TEST_CASE("802.1Q single tag") {
  auto d = decode(eth(0x8100) + vlan(100, 0x0800, 5) + tcp4());
  check_tcp4(d.p, 18);
  CHECK(d.p.l2.vlan_id == 100);
  CHECK(d.p.l2.post_vlan_id == 0);
}

TEST_CASE("QinQ 0x88a8 and 0x9100: outer and inner tag") {
  auto d = decode(eth(0x88a8) + vlan(30, 0x8100) + vlan(100, 0x0800) + tcp4());
  check_tcp4(d.p, 22);
  CHECK(d.p.l2.vlan_id == 30);
  CHECK(d.p.l2.post_vlan_id == 100);
  auto d2 = decode(eth(0x9100) + vlan(4094, 0x8100) + vlan(1, 0x86dd) + tcp6());
  REQUIRE(d2.st == decode_status::ok);
  CHECK(d2.p.l2.vlan_id == 4094);
  CHECK(d2.p.l2.post_vlan_id == 1);
  // two 0x8100 tags (seen in real captures)
  auto d3 = decode(eth(0x8100) + vlan(421, 0x8100) + vlan(785, 0x0800) + tcp4());
  CHECK(d3.p.l2.vlan_id == 421);
  CHECK(d3.p.l2.post_vlan_id == 785);
}

TEST_CASE("three VLAN tags: the outer two are kept") {
  auto d = decode(eth(0x88a8) + vlan(10, 0x8100) + vlan(20, 0x8100) + vlan(30, 0x0800) + tcp4());
  check_tcp4(d.p, 26);
  CHECK(d.p.l2.vlan_id == 10);
  CHECK(d.p.l2.post_vlan_id == 20);
}

TEST_CASE("VLAN tag truncated") {
  CHECK(decode(eth(0x8100) + bytes({0x00, 0x64, 0x08})).st == decode_status::truncated);
  CHECK(decode(eth(0x88a8) + vlan(1, 0x8100) + bytes({0})).st == decode_status::truncated);
}

TEST_CASE("too many encapsulation headers is malformed") {
  buf f = eth(0x8100);
  for (int i = 0; i < 20; ++i)
    f = f + vlan(static_cast<uint16_t>(i + 1), 0x8100);
  f = f + tcp4();
  CHECK(decode(f).st == decode_status::malformed);
}

TEST_CASE("MPLS single label, IPv4 guessed") {
  auto d = decode(eth(0x8847) + mpls(16000, true, 126) + tcp4());
  check_tcp4(d.p, 18);
  REQUIRE(d.p.l2.mpls_count == 1);
  CHECK(d.p.l2.mpls[0] == mpls_entry(16000, true, 126));
  CHECK((d.p.l2.mpls[0] >> 12) == 16000);
}

TEST_CASE("MPLS label stack, IPv6, multicast ethertype, after VLAN") {
  auto d = decode(eth(0x8100) + vlan(7, 0x8848) + mpls(18, false) + mpls(19, false) +
                  mpls(20, true) + tcp6());
  REQUIRE(d.st == decode_status::ok);
  CHECK(d.p.ip_version == 6);
  CHECK(d.p.l2.vlan_id == 7);
  REQUIRE(d.p.l2.mpls_count == 3);
  CHECK((d.p.l2.mpls[0] >> 12) == 18);
  CHECK((d.p.l2.mpls[1] >> 12) == 19);
  CHECK((d.p.l2.mpls[2] >> 12) == 20);
  CHECK(d.p.l3_off == 14 + 4 + 12);
}

TEST_CASE("MPLS stack deeper than max_mpls keeps the outer entries") {
  buf f = eth(0x8847);
  for (uint32_t i = 0; i < 11; ++i)
    f = f + mpls(100 + i, i == 10);
  auto d = decode(f + tcp4());
  check_tcp4(d.p, static_cast<uint16_t>(14 + 44));
  REQUIRE(d.p.l2.mpls_count == l2_context::max_mpls);
  CHECK((d.p.l2.mpls[7] >> 12) == 107);
}

TEST_CASE("MPLS invalid inputs") {
  // no bottom of stack within max entries
  buf f = eth(0x8847);
  for (int i = 0; i < 40; ++i)
    f = f + mpls(5, false);
  CHECK(decode(f + tcp4()).st == decode_status::malformed);
  // cut inside the stack
  CHECK(decode(eth(0x8847) + mpls(5, false) + bytes({0, 0})).st == decode_status::truncated);
  // cut right after bottom of stack
  CHECK(decode(eth(0x8847) + mpls(5, true)).st == decode_status::truncated);
  // payload that is neither IP nor a pseudowire control word
  CHECK(decode(eth(0x8847) + mpls(5, true) + bytes({0x15, 0, 0, 0}) + filler(40)).st ==
        decode_status::non_ip);
}

TEST_CASE("MPLS Ethernet pseudowire with control word") {
  const mac inner_src{0xcc, 0, 0x0a, 0x64, 0, 0};
  const mac inner_dst{0xcc, 0x07, 0x0d, 0x08, 0, 0};
  auto d = decode(eth(0x8847) + mpls(18, false) + mpls(16, true) + bytes({0, 0, 0, 0}) +
                  eth(0x8100, inner_dst, inner_src) + vlan(1, 0x0800) + tcp4());
  check_tcp4(d.p, static_cast<uint16_t>(14 + 8 + 4 + 14 + 4));
  CHECK(d.p.l2.vlan_id == 1);
  CHECK(d.p.l2.mpls_count == 2);
  CHECK(std::memcmp(d.p.l2.src_mac, inner_src.data(), 6) == 0);
  CHECK(std::memcmp(d.p.l2.dst_mac, inner_dst.data(), 6) == 0);
  // control word present but inner Ethernet cut
  CHECK(decode(eth(0x8847) + mpls(16, true) + bytes({0, 0, 0, 0}) + filler(10)).st ==
        decode_status::truncated);
}

TEST_CASE("PPPoE session: IPv4, IPv6, non-IP, invalid") {
  buf t = tcp4();
  auto d = decode(eth(0x8864) + pppoe(0x0021, static_cast<uint16_t>(t.size())) + t);
  check_tcp4(d.p, 22);
  buf t6 = tcp6();
  auto d6 = decode(eth(0x8100) + vlan(9, 0x8864) + pppoe(0x0057, static_cast<uint16_t>(t6.size())) + t6);
  REQUIRE(d6.st == decode_status::ok);
  CHECK(d6.p.ip_version == 6);
  CHECK(d6.p.l2.vlan_id == 9);
  CHECK(decode(eth(0x8864) + pppoe(0xc021, 10) + filler(10)).st == decode_status::non_ip); // LCP
  CHECK(decode(eth(0x8864) + pppoe(0x0021, 10, 0x21) + t).st == decode_status::malformed);
  CHECK(decode(eth(0x8864) + cut(pppoe(0x0021, 10), 7)).st == decode_status::truncated);
  CHECK(decode(eth(0x8863) + filler(20)).st == decode_status::non_ip); // discovery
}

TEST_CASE("raw IP link types") {
  for (int lt : {linktype::raw, linktype::raw_12, linktype::raw_14}) {
    auto d = decode(tcp4(), lt);
    check_tcp4(d.p, 0);
    CHECK_FALSE(d.p.l2.has_ethernet);
    auto d6 = decode(tcp6(), lt);
    CHECK(d6.st == decode_status::ok);
    CHECK(d6.p.ip_version == 6);
    CHECK(decode(bytes({0x55, 1, 2, 3}), lt).st == decode_status::malformed);
    CHECK(decode(buf{}, lt).st == decode_status::truncated);
  }
  check_tcp4(decode(tcp4(), linktype::ipv4).p, 0);
  CHECK(decode(tcp6(), linktype::ipv6).st == decode_status::ok);
  CHECK(decode(tcp6(), linktype::ipv4).st == decode_status::malformed); // version mismatch
  CHECK(decode(tcp4(), linktype::ipv6).st == decode_status::malformed);
}

TEST_CASE("Linux cooked v1 and v2") {
  auto d = decode(sll(0x0800) + tcp4(), linktype::linux_sll);
  check_tcp4(d.p, 16);
  CHECK_FALSE(d.p.l2.has_ethernet);
  CHECK(std::memcmp(d.p.l2.src_mac, mac_a.data(), 6) == 0);
  auto dv = decode(sll(0x8100) + vlan(55, 0x0800) + tcp4(), linktype::linux_sll);
  check_tcp4(dv.p, 20);
  CHECK(dv.p.l2.vlan_id == 55);
  CHECK(decode(cut(sll(0x0800), 15), linktype::linux_sll).st == decode_status::truncated);
  CHECK(decode(sll(0x0004) + filler(20), linktype::linux_sll).st == decode_status::non_ip);

  auto d2 = decode(sll2(0x86dd) + tcp6(), linktype::linux_sll2);
  REQUIRE(d2.st == decode_status::ok);
  CHECK(d2.p.l3_off == 20);
  CHECK(std::memcmp(d2.p.l2.src_mac, mac_a.data(), 6) == 0);
  CHECK(decode(cut(sll2(0x0800), 19), linktype::linux_sll2).st == decode_status::truncated);
}

TEST_CASE("NULL and LOOP link types") {
  check_tcp4(decode(bytes({2, 0, 0, 0}) + tcp4(), linktype::null_bsd).p, 4);   // little endian host
  check_tcp4(decode(bytes({0, 0, 0, 2}) + tcp4(), linktype::null_bsd).p, 4);   // big endian host
  check_tcp4(decode(bytes({0, 0, 0, 2}) + tcp4(), linktype::loop).p, 4);
  for (int af : {10, 24, 28, 30}) {
    auto d = decode(bytes({af, 0, 0, 0}) + tcp6(), linktype::null_bsd);
    CHECK(d.st == decode_status::ok);
    CHECK(d.p.ip_version == 6);
  }
  CHECK(decode(bytes({7, 0, 0, 0}) + tcp4(), linktype::null_bsd).st == decode_status::non_ip);
  CHECK(decode(bytes({2, 0, 0}), linktype::null_bsd).st == decode_status::truncated);
}

TEST_CASE("PPP and Cisco HDLC link types") {
  check_tcp4(decode(bytes({0xff, 0x03, 0x00, 0x21}) + tcp4(), linktype::ppp).p, 4);
  check_tcp4(decode(bytes({0x00, 0x21}) + tcp4(), linktype::ppp_hdlc).p, 2);
  check_tcp4(decode(bytes({0x21}) + tcp4(), linktype::ppp).p, 1); // protocol compression
  auto d = decode(bytes({0xff, 0x03, 0x02, 0x81}) + mpls(100704, true) + tcp4(), linktype::ppp);
  check_tcp4(d.p, 8);
  CHECK((d.p.l2.mpls[0] >> 12) == 100704);
  CHECK(decode(bytes({0xff, 0x03, 0xc0, 0x21, 1, 2}), linktype::ppp).st == decode_status::non_ip);
  CHECK(decode(bytes({0xff}), linktype::ppp).st == decode_status::truncated);
  CHECK(decode(bytes({0xff, 0x03, 0x00}), linktype::ppp).st == decode_status::truncated);
  check_tcp4(decode(bytes({0x0f, 0x00, 0x08, 0x00}) + tcp4(), linktype::c_hdlc).p, 4);
  CHECK(decode(bytes({0x0f, 0x00, 0x08}), linktype::c_hdlc).st == decode_status::truncated);
}

TEST_CASE("Arista timestamp header") {
  buf v1 = bytes({0x00, 0x01, 0x00, 0x10}) + filler(8) + bytes({0x08, 0x00});
  check_tcp4(decode(eth(0xd28b) + v1 + tcp4()).p, 28);
  buf v2 = bytes({0x00, 0x01, 0x00, 0x20}) + filler(6) + bytes({0x81, 0x00});
  auto d = decode(eth(0xd28b) + v2 + vlan(100, 0x8847) + mpls(1024, true) + tcp4());
  check_tcp4(d.p, static_cast<uint16_t>(14 + 12 + 4 + 4));
  CHECK(d.p.l2.vlan_id == 100);
  CHECK(decode(eth(0xd28b) + bytes({0x00, 0x01, 0x00, 0x11}) + filler(40)).st ==
        decode_status::non_ip);
  CHECK(decode(eth(0xd28b) + bytes({0x00, 0x01, 0x00, 0x10}) + filler(4)).st ==
        decode_status::truncated);
}

TEST_CASE("unsupported link type") {
  auto d = decode(tcp4(), 147);
  CHECK(d.st == decode_status::unsupported_link);
  CHECK_FALSE(linktype_supported(147));
  CHECK(linktype_supported(linktype::linux_sll2));
}

TEST_CASE("IPv4 options shift L4") {
  ipv4_opts o;
  o.options = bytes({0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00}); // router alert + NOPs + EOL
  auto d = decode(eth(0x0800) + ipv4(ip_a, ip_b, tcp(1, 2, filler(10)), o));
  REQUIRE(d.st == decode_status::ok);
  CHECK(d.p.l4_off == 14 + 28);
  CHECK(d.p.payload_off == 14 + 48);
  CHECK(d.p.payload_len == 10);
  o.options = filler(40); // IHL 15
  auto d2 = decode(eth(0x0800) + ipv4(ip_a, ip_b, udp(1, 2, filler(3)), [&] {
                     auto x = o;
                     x.proto = 17;
                     return x;
                   }()));
  REQUIRE(d2.st == decode_status::ok);
  CHECK(d2.p.l4_off == 14 + 60);
  CHECK(d2.p.payload_len == 3);
}

TEST_CASE("IPv4 validation rules") {
  SUBCASE("header cut by the capture") {
    CHECK(decode(cut(eth(0x0800) + tcp4(), 14 + 19)).st == decode_status::truncated);
  }
  SUBCASE("version is not 4") {
    ipv4_opts o;
    o.version = 5;
    CHECK(decode(eth(0x0800) + ipv4(ip_a, ip_b, tcp(1, 2), o)).st == decode_status::malformed);
  }
  SUBCASE("IHL below 5") {
    ipv4_opts o;
    o.ihl = 4;
    CHECK(decode(eth(0x0800) + ipv4(ip_a, ip_b, tcp(1, 2), o)).st == decode_status::malformed);
  }
  SUBCASE("total length below the header") {
    ipv4_opts o;
    o.total = 19;
    CHECK(decode(eth(0x0800) + ipv4(ip_a, ip_b, tcp(1, 2), o)).st == decode_status::malformed);
    o.total = 0;
    CHECK(decode(eth(0x0800) + ipv4(ip_a, ip_b, tcp(1, 2), o)).st == decode_status::malformed);
    o.options = filler(8);
    o.total = 24; // below IHL 7
    CHECK(decode(eth(0x0800) + ipv4(ip_a, ip_b, tcp(1, 2), o)).st == decode_status::malformed);
  }
  SUBCASE("options cut by the capture") {
    ipv4_opts o;
    o.options = filler(8);
    buf f = eth(0x0800) + ipv4(ip_a, ip_b, tcp(1, 2), o);
    auto d = decode(cut(f, 14 + 24));
    CHECK(d.st == decode_status::truncated);
    CHECK(d.p.src == ip_address::v4(ip_a.data())); // diagnostics keep what was read
  }
  SUBCASE("total length above the captured bytes: captured bytes are used") {
    ipv4_opts o;
    o.total = 1500;
    auto d = decode(eth(0x0800) + ipv4(ip_a, ip_b, tcp(1, 2, filler(50)), o));
    REQUIRE(d.st == decode_status::ok);
    CHECK(d.p.l3_len == 90);
    CHECK(d.p.l3_wire_len == 90);
    CHECK(d.p.payload_len == 50);
  }
  SUBCASE("snap length: wire length gives l3_wire_len") {
    buf f = eth(0x0800) + tcp4();
    auto d = decode(cut(f, 14 + 40 + 10), linktype::en10mb, static_cast<int>(f.size()));
    REQUIRE(d.st == decode_status::ok);
    CHECK(d.p.l3_len == 50);
    CHECK(d.p.l3_wire_len == 140);
    CHECK(d.p.payload_len == 10);
  }
}

TEST_CASE("IPv4 fragments") {
  const buf data = filler(64);
  buf first = ipv4(ip_a, ip_b, udp(53, 5353, data, 200), [] {
    ipv4_opts o;
    o.proto = 17;
    o.frag = 0x2000;
    o.id = 77;
    return o;
  }());
  auto d1 = decode(eth(0x0800) + first);
  REQUIRE(d1.st == decode_status::ok);
  CHECK(d1.p.is_fragment);
  CHECK(d1.p.more_fragments);
  CHECK(d1.p.frag_offset == 0);
  CHECK(d1.p.frag_id == 77);
  CHECK(d1.p.sport == 53); // first fragment: L4 decoded
  CHECK(d1.p.l4_off == 34);
  CHECK(d1.p.payload_len == 64); // UDP length 200 clamped to the fragment

  ipv4_opts mid;
  mid.proto = 17;
  mid.frag = 0x2000 | 9; // offset 72 bytes
  mid.id = 77;
  auto d2 = decode(eth(0x0800) + ipv4(ip_a, ip_b, filler(64), mid));
  REQUIRE(d2.st == decode_status::ok);
  CHECK(d2.p.is_fragment);
  CHECK(d2.p.more_fragments);
  CHECK(d2.p.frag_offset == 72);
  CHECK(d2.p.l4_off == 0);
  CHECK(d2.p.sport == 0);
  CHECK(d2.p.dport == 0);
  CHECK(d2.p.l4_proto == 17);
  CHECK(d2.p.payload_off == 34);
  CHECK(d2.p.payload_len == 64);
  // every fragment of a datagram hashes alike
  CHECK(d1.p.flow_hash == d2.p.flow_hash);

  ipv4_opts last = mid;
  last.frag = 17; // offset 136, MF clear
  auto d3 = decode(eth(0x0800) + ipv4(ip_a, ip_b, filler(8), last));
  CHECK(d3.p.is_fragment);
  CHECK_FALSE(d3.p.more_fragments);
  CHECK(d3.p.frag_offset == 136);

  // first fragment too short for the TCP header: data only, status ok
  ipv4_opts tiny;
  tiny.frag = 0x2000;
  auto d4 = decode(eth(0x0800) + ipv4(ip_a, ip_b, filler(8), tiny));
  REQUIRE(d4.st == decode_status::ok);
  CHECK(d4.p.l4_off == 0);
  CHECK(d4.p.sport == 0);
  CHECK(d4.p.payload_len == 8);

  // first fragment whose TCP header is invalid (data offset 0): data only
  ipv4_opts bad;
  bad.frag = 0x2000;
  auto d6 = decode(eth(0x0800) + ipv4(ip_a, ip_b, tcp(1, 2, filler(16), 1, 1, 2, 1, {}, 0), bad));
  REQUIRE(d6.st == decode_status::ok);
  CHECK(d6.p.l4_off == 0);
  CHECK(d6.p.sport == 0);
  CHECK(d6.p.payload_len == 36);

  // DF alone is not a fragment
  ipv4_opts df;
  df.frag = 0x4000;
  auto d5 = decode(eth(0x0800) + ipv4(ip_a, ip_b, tcp(1, 2), df));
  CHECK_FALSE(d5.p.is_fragment);
}

TEST_CASE("IPv6 extension headers") {
  buf l4 = tcp(1000, 80, filler(20));
  buf p = ext_hdr(43, 0) + ext_hdr(60, 1) + ext_hdr(6, 2) + l4; // hop-by-hop, routing, dstopts
  auto d = decode(eth(0x86dd) + ipv6(ip6_a, ip6_b, 0, p));
  REQUIRE(d.st == decode_status::ok);
  CHECK(d.p.l4_proto == 6);
  CHECK(d.p.l4_off == 14 + 40 + 8 + 16 + 24);
  CHECK(d.p.dport == 80);
  CHECK(d.p.payload_len == 20);

  auto da = decode(eth(0x86dd) + ipv6(ip6_a, ip6_b, 51, ah_hdr(17, 4) + udp(9, 10, filler(5))));
  REQUIRE(da.st == decode_status::ok);
  CHECK(da.p.l4_proto == 17);
  CHECK(da.p.l4_off == 14 + 40 + 24);
  CHECK(da.p.payload_len == 5);

  auto de = decode(eth(0x86dd) + ipv6(ip6_a, ip6_b, 60, ext_hdr(50) + filler(40)));
  REQUIRE(de.st == decode_status::ok);
  CHECK(de.p.l4_proto == 50); // ESP ends the walk
  CHECK(de.p.sport == 0);
  CHECK(de.p.payload_len == 40);

  auto dn = decode(eth(0x86dd) + ipv6(ip6_a, ip6_b, 59, {}));
  REQUIRE(dn.st == decode_status::ok);
  CHECK(dn.p.l4_proto == 59);
  CHECK(dn.p.payload_len == 0);
}

TEST_CASE("IPv6 fragment header") {
  auto d1 = decode(eth(0x86dd) +
                   ipv6(ip6_a, ip6_b, 44, frag_hdr(17, 0, true, 0xabcdef) + udp(1, 2, filler(16), 400)));
  REQUIRE(d1.st == decode_status::ok);
  CHECK(d1.p.is_fragment);
  CHECK(d1.p.more_fragments);
  CHECK(d1.p.frag_id == 0xabcdef);
  CHECK(d1.p.sport == 1);
  CHECK(d1.p.l4_proto == 17);

  auto d2 = decode(eth(0x86dd) + ipv6(ip6_a, ip6_b, 0, ext_hdr(44) + frag_hdr(17, 1232, false, 0xabcdef) + filler(48)));
  REQUIRE(d2.st == decode_status::ok);
  CHECK(d2.p.is_fragment);
  CHECK_FALSE(d2.p.more_fragments);
  CHECK(d2.p.frag_offset == 1232);
  CHECK(d2.p.l4_off == 0);
  CHECK(d2.p.l4_proto == 17);
  CHECK(d2.p.payload_off == 14 + 40 + 8 + 8);
  CHECK(d2.p.payload_len == 48);
  CHECK(d1.p.flow_hash == d2.p.flow_hash);

  // atomic fragment: decoded as a whole packet
  auto d3 = decode(eth(0x86dd) + ipv6(ip6_a, ip6_b, 44, frag_hdr(6, 0, false, 5) + tcp(7, 8)));
  REQUIRE(d3.st == decode_status::ok);
  CHECK_FALSE(d3.p.is_fragment);
  CHECK(d3.p.frag_id == 5);
  CHECK(d3.p.sport == 7);
}

TEST_CASE("IPv6 validation rules") {
  SUBCASE("header cut") {
    CHECK(decode(cut(eth(0x86dd) + tcp6(), 14 + 39)).st == decode_status::truncated);
  }
  SUBCASE("version is not 6") {
    ipv6_opts o;
    o.version = 4;
    CHECK(decode(eth(0x86dd) + ipv6(ip6_a, ip6_b, 6, tcp(1, 2), o)).st == decode_status::malformed);
  }
  SUBCASE("too many extension headers") {
    buf p = tcp(1, 2);
    p = ext_hdr(6) + p;
    for (int i = 0; i < max_ipv6_ext_headers; ++i)
      p = ext_hdr(60) + p;
    CHECK(decode(eth(0x86dd) + ipv6(ip6_a, ip6_b, 60, p)).st == decode_status::malformed);
    // exactly the limit is fine
    buf q = ext_hdr(6) + tcp(1, 2);
    for (int i = 1; i < max_ipv6_ext_headers; ++i)
      q = ext_hdr(60) + q;
    CHECK(decode(eth(0x86dd) + ipv6(ip6_a, ip6_b, 60, q)).st == decode_status::ok);
  }
  SUBCASE("extension header beyond the payload length") {
    ipv6_opts o;
    o.plen = 12; // dstopts of 16 bytes
    CHECK(decode(eth(0x86dd) + ipv6(ip6_a, ip6_b, 60, ext_hdr(6, 1) + tcp(1, 2), o)).st ==
          decode_status::malformed);
  }
  SUBCASE("extension header cut by the capture") {
    buf f = eth(0x86dd) + ipv6(ip6_a, ip6_b, 60, ext_hdr(6, 1) + tcp(1, 2));
    CHECK(decode(cut(f, 14 + 40 + 10)).st == decode_status::truncated);
  }
  SUBCASE("fragment header cut") {
    buf f = eth(0x86dd) + ipv6(ip6_a, ip6_b, 44, frag_hdr(6, 8, true, 1) + filler(8));
    CHECK(decode(cut(f, 14 + 40 + 6)).st == decode_status::truncated);
  }
  SUBCASE("payload length above the capture: captured bytes are used") {
    ipv6_opts o;
    o.plen = 1000;
    auto d = decode(eth(0x86dd) + ipv6(ip6_a, ip6_b, 17, udp(1, 2, filler(10)), o));
    REQUIRE(d.st == decode_status::ok);
    CHECK(d.p.l3_len == 58);
    CHECK(d.p.payload_len == 10);
  }
}

TEST_CASE("TCP validation rules") {
  SUBCASE("data offset below 5") {
    CHECK(decode(eth(0x0800) + ipv4(ip_a, ip_b, tcp(1, 2, {}, 1, 1, 2, 1, {}, 4))).st ==
          decode_status::malformed);
  }
  SUBCASE("data offset beyond the IP payload") {
    CHECK(decode(eth(0x0800) + ipv4(ip_a, ip_b, tcp(1, 2, {}, 1, 1, 2, 1, {}, 8))).st ==
          decode_status::malformed);
  }
  SUBCASE("header shorter than 20 bytes inside the IP payload") {
    CHECK(decode(eth(0x0800) + ipv4(ip_a, ip_b, cut(tcp(1, 2), 12))).st ==
          decode_status::malformed);
  }
  SUBCASE("header cut by the capture") {
    CHECK(decode(cut(eth(0x0800) + tcp4(), 14 + 20 + 12)).st == decode_status::truncated);
  }
  SUBCASE("options cut by the snap length: ok without payload") {
    buf opts = bytes({2, 4, 5, 0xb4, 1, 1, 4, 2}) + filler(4, 1); // 12 bytes
    buf f = eth(0x0800) + ipv4(ip_a, ip_b, tcp(1, 2, filler(10), 5, 6, 2, 7, opts));
    auto d = decode(cut(f, 14 + 20 + 24));
    REQUIRE(d.st == decode_status::ok);
    CHECK(d.p.sport == 1);
    CHECK(d.p.tcp_seq == 5);
    CHECK(d.p.payload_len == 0);
    CHECK(d.p.payload_off <= d.p.cap_len);
  }
}

TEST_CASE("UDP validation rules") {
  SUBCASE("length field 1..7") {
    CHECK(decode(eth(0x0800) + ipv4(ip_a, ip_b, udp(1, 2, filler(4), 7), proto(17))).st ==
          decode_status::malformed);
  }
  SUBCASE("length below the IP payload: trailing bytes are not payload") {
    auto d = decode(eth(0x0800) + ipv4(ip_a, ip_b, udp(1, 2, filler(20), 18), proto(17)));
    REQUIRE(d.st == decode_status::ok);
    CHECK(d.p.payload_len == 10);
  }
  SUBCASE("length above the IP payload: clamped") {
    auto d = decode(eth(0x0800) + ipv4(ip_a, ip_b, udp(1, 2, filler(20), 500), proto(17)));
    REQUIRE(d.st == decode_status::ok);
    CHECK(d.p.payload_len == 20);
  }
  SUBCASE("length 0: rest of the IP payload") {
    auto d = decode(eth(0x0800) + ipv4(ip_a, ip_b, udp(1, 2, filler(20), 0), proto(17)));
    REQUIRE(d.st == decode_status::ok);
    CHECK(d.p.payload_len == 20);
  }
  SUBCASE("header shorter than 8 bytes inside the IP payload") {
    CHECK(decode(eth(0x0800) + ipv4(ip_a, ip_b, bytes({0, 1, 0, 2}), proto(17))).st ==
          decode_status::malformed);
  }
  SUBCASE("header cut by the capture") {
    CHECK(decode(cut(eth(0x0800) + udp4(), 14 + 20 + 5)).st == decode_status::truncated);
  }
}

TEST_CASE("ICMP and other protocols: proto set, no ports") {
  auto d = decode(eth(0x0800) + ipv4(ip_a, ip_b, icmp_echo(1, 2, filler(12)), proto(1)));
  REQUIRE(d.st == decode_status::ok);
  CHECK(d.p.l4_proto == 1);
  CHECK(d.p.sport == 0);
  CHECK(d.p.dport == 0);
  CHECK(d.p.l4_off == 34);
  CHECK(d.p.payload_off == 34);
  CHECK(d.p.payload_len == 20);
  auto g = decode(eth(0x0800) + ipv4(ip_a, ip_b, filler(24), proto(47)));
  CHECK(g.p.l4_proto == 47);
  CHECK(g.p.payload_len == 24);
}

TEST_CASE("flow hash is symmetric") {
  auto a = decode(eth(0x0800) + ipv4(ip_a, ip_b, tcp(1234, 80)));
  auto b = decode(eth(0x0800, mac_a, mac_b) + ipv4(ip_b, ip_a, tcp(80, 1234)));
  CHECK(a.p.flow_hash == b.p.flow_hash);
  auto c = decode(eth(0x0800) + ipv4(ip_a, ip_b, tcp(1235, 80)));
  CHECK(a.p.flow_hash != c.p.flow_hash);
  auto u = decode(eth(0x0800) + ipv4(ip_a, ip_b, udp(1234, 80), proto(17)));
  CHECK(a.p.flow_hash != u.p.flow_hash); // proto matters

  auto a6 = decode(eth(0x86dd) + ipv6(ip6_a, ip6_b, 6, tcp(1, 2)));
  auto b6 = decode(eth(0x86dd) + ipv6(ip6_b, ip6_a, 6, tcp(2, 1)));
  CHECK(a6.p.flow_hash == b6.p.flow_hash);
  // swapped ports with the same addresses are another flow
  auto s6 = decode(eth(0x86dd) + ipv6(ip6_a, ip6_b, 6, tcp(2, 1)));
  CHECK(a6.p.flow_hash != s6.p.flow_hash);

  std::mt19937 rng(7);
  for (int i = 0; i < 1000; ++i) {
    uint8_t x[16], y[16];
    for (auto& v : x)
      v = static_cast<uint8_t>(rng());
    for (auto& v : y)
      v = static_cast<uint8_t>(rng());
    const bool v6 = i & 1;
    ip_address ax = v6 ? ip_address::v6(x) : ip_address::v4(x);
    ip_address ay = v6 ? ip_address::v6(y) : ip_address::v4(y);
    const auto pa = static_cast<uint16_t>(rng());
    const auto pb = static_cast<uint16_t>(rng());
    REQUIRE(flow_hash_of(ax, ay, pa, pb, 6) == flow_hash_of(ay, ax, pb, pa, 6));
  }
}

TEST_CASE("flow hash distribution") {
  // Sequential client addresses and ports (the hard case for weak hashes):
  // every bucket of 256 (low bits, as a shard index would use) and of the
  // high bits must be within 25 % of the mean.
  constexpr int buckets = 256;
  constexpr int n = 256 * 400;
  std::vector<int> low(buckets), high(buckets);
  std::set<uint32_t> distinct;
  const uint8_t server[4] = {93, 184, 216, 34};
  for (int i = 0; i < n; ++i) {
    uint8_t client[4] = {10, 0, static_cast<uint8_t>(i >> 8 & 0x3f), static_cast<uint8_t>(i)};
    const uint32_t h = flow_hash_of(ip_address::v4(client), ip_address::v4(server),
                                    static_cast<uint16_t>(40000 + (i >> 14)), 443, 6);
    ++low[h % buckets];
    ++high[h >> 24];
    distinct.insert(h);
  }
  const int mean = n / buckets;
  for (int b = 0; b < buckets; ++b) {
    CHECK(low[b] > mean * 3 / 4);
    CHECK(low[b] < mean * 5 / 4);
    CHECK(high[b] > mean * 3 / 4);
    CHECK(high[b] < mean * 5 / 4);
  }
  CHECK(distinct.size() > static_cast<size_t>(n) * 99 / 100);
}

TEST_CASE("property: offsets never run past the frame or the IP length") {
  // Mutate valid frames of every kind byte by byte and check the invariants
  // of every decode, whatever the status.
  std::vector<std::pair<buf, int>> seeds = {
      {eth(0x0800) + tcp4(), linktype::en10mb},
      {eth(0x86dd) + ipv6(ip6_a, ip6_b, 0, ext_hdr(44) + frag_hdr(17, 0, true, 1) + udp(1, 2, filler(16))), linktype::en10mb},
      {eth(0x88a8) + vlan(1, 0x8100) + vlan(2, 0x8847) + mpls(3, true) + udp4(), linktype::en10mb},
      {eth(0x8864) + pppoe(0x0021, 48) + udp4(), linktype::en10mb},
      {sll(0x86dd) + tcp6(), linktype::linux_sll},
      {tcp4(), linktype::raw},
      {bytes({2, 0, 0, 0}) + udp4(), linktype::null_bsd},
  };
  std::mt19937 rng(1234);
  size_t ok = 0;
  for (auto& [seed, lt] : seeds) {
    for (int iter = 0; iter < 3000; ++iter) {
      buf f = seed;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips; ++k)
        f[rng() % f.size()] = static_cast<uint8_t>(rng());
      if (rng() % 4 == 0)
        f.resize(rng() % (f.size() + 1));
      decoded_packet p;
      const auto st = decode_packet(f.data(), static_cast<uint32_t>(f.size()),
                                    static_cast<uint32_t>(f.size()), 0, lt, p);
      if (st != decode_status::ok)
        continue;
      ++ok;
      REQUIRE(static_cast<size_t>(p.l3_off) + p.l3_len <= f.size());
      REQUIRE(static_cast<size_t>(p.payload_off) + p.payload_len <= f.size());
      REQUIRE(p.payload_off + p.payload_len <= p.l3_off + p.l3_len);
      REQUIRE(p.payload_off >= p.l3_off);
      if (p.l4_off)
        REQUIRE(p.l4_off <= p.payload_off);
      REQUIRE((p.ip_version == 4 || p.ip_version == 6));
    }
  }
  CHECK(ok > 1000); // the mutations must not all be rejected
}

TEST_CASE("to_string") {
  CHECK(std::string(to_string(decode_status::ok)) == "ok");
  CHECK(std::string(to_string(decode_status::non_ip)) == "non_ip");
  CHECK(std::string(to_string(decode_status::truncated)) == "truncated");
  CHECK(std::string(to_string(decode_status::malformed)) == "malformed");
  CHECK(std::string(to_string(decode_status::unsupported_link)) == "unsupported_link");
}

TEST_CASE("decode_reassembled keeps the L2 context") {
  auto orig = decode(eth(0x8100) + vlan(12, 0x0800) + tcp4());
  buf ip = tcp4();
  decoded_packet out;
  REQUIRE(decode_reassembled(ip.data(), static_cast<uint32_t>(ip.size()), orig.p, out) ==
          decode_status::ok);
  CHECK(out.l2.vlan_id == 12);
  CHECK(out.l2.has_ethernet);
  CHECK(out.ts_ns == 42);
  CHECK(out.l3_off == 0);
  CHECK(out.sport == 1234);
  CHECK(out.flow_hash == orig.p.flow_hash);
}
