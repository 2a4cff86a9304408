// SPDX-License-Identifier: Apache-2.0
// IP reassembly: in order, reverse and shuffled order, duplicates,
// overlaps (IPv4 consistent / conflicting, IPv6 RFC 5722), timeouts, every
// limit and validation rule, IPv6 unfragmentable part, and the fragmented
// captures of the corpus.

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <random>

#include "capture/decoder.hpp"
#include "capture/pcap_source.hpp"
#include "classifier/ip_reassembly.hpp"
#include "frame_builder.hpp"

using namespace metaprobe;
using namespace mp_test;

namespace {

constexpr uint64_t sec = 1'000'000'000ULL;

// A frame with its decode; the frame must stay alive while the packet is used.
struct frame {
  buf bytes;
  decoded_packet p;
};

frame make(buf b, uint64_t ts = 0) {
  frame f;
  f.bytes = std::move(b);
  decode_packet(f.bytes.data(), static_cast<uint32_t>(f.bytes.size()),
                static_cast<uint32_t>(f.bytes.size()), ts, linktype::en10mb, f.p);
  return f;
}

// IPv4 fragments of `l4` (an L4 header + payload) of `chunk` bytes each.
std::vector<frame> frag4(const buf& l4, size_t chunk, uint16_t id = 99, uint8_t proto = 17,
                         const v4addr& src = ip_a, uint64_t ts = 0, uint16_t vlan_id = 0) {
  std::vector<frame> out;
  for (size_t off = 0; off < l4.size(); off += chunk) {
    const size_t n = std::min(chunk, l4.size() - off);
    ipv4_opts o;
    o.proto = proto;
    o.id = id;
    o.frag = static_cast<uint16_t>((off / 8) | (off + n < l4.size() ? 0x2000 : 0));
    const buf part(l4.begin() + static_cast<long>(off), l4.begin() + static_cast<long>(off + n));
    buf l2 = vlan_id ? eth(0x8100) + vlan(vlan_id, 0x0800) : eth(0x0800);
    out.push_back(make(l2 + ipv4(src, ip_b, part, o), ts));
  }
  return out;
}

// IPv6 fragments; `unfrag` extension headers precede the fragment header
// (their chain must end with next header 44).
std::vector<frame> frag6(const buf& l4, size_t chunk, uint32_t id = 0x1234567,
                         uint8_t first_nh = 44, const buf& unfrag = {}, uint8_t l4_nh = 17) {
  std::vector<frame> out;
  for (size_t off = 0; off < l4.size(); off += chunk) {
    const size_t n = std::min(chunk, l4.size() - off);
    const buf part(l4.begin() + static_cast<long>(off), l4.begin() + static_cast<long>(off + n));
    out.push_back(make(eth(0x86dd) +
                       ipv6(ip6_a, ip6_b, first_nh,
                            unfrag + frag_hdr(l4_nh, static_cast<uint16_t>(off),
                                              off + n < l4.size(), id) +
                                part)));
  }
  return out;
}

bool feed(ip_reassembler& r, const std::vector<frame>& frames, std::vector<uint8_t>& out,
          const std::vector<size_t>& order) {
  bool done = false;
  for (size_t i : order) {
    const bool c = r.add(frames[i].p, out);
    REQUIRE_FALSE((c && done)); // completes once
    done = done || c;
  }
  return done;
}

std::vector<size_t> iota(size_t n) {
  std::vector<size_t> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = i;
  return v;
}

uint16_t checksum(const uint8_t* h, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2)
    sum += static_cast<uint32_t>(h[i] << 8 | h[i + 1]);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

const buf dns_payload = filler(1000, 3);
const buf udp_dgram = udp(53, 40000, dns_payload);

void check_v4_result(const std::vector<uint8_t>& out, const decoded_packet& original) {
  REQUIRE(out.size() == 20 + udp_dgram.size());
  CHECK(out[2] * 256 + out[3] == static_cast<int>(out.size()));
  CHECK((out[6] & 0x3f) == 0); // MF and offset cleared
  CHECK(out[7] == 0);
  CHECK(checksum(out.data(), 20) == 0xffff);
  decoded_packet d;
  REQUIRE(decode_reassembled(out.data(), static_cast<uint32_t>(out.size()), original, d) ==
          decode_status::ok);
  CHECK_FALSE(d.is_fragment);
  CHECK(d.sport == 53);
  CHECK(d.dport == 40000);
  CHECK(d.payload_len == dns_payload.size());
  CHECK(std::equal(dns_payload.begin(), dns_payload.end(), d.payload()));
  CHECK(d.l2.vlan_id == original.l2.vlan_id);
}

} // namespace

TEST_CASE("IPv4: in order, reverse, shuffled") {
  const auto frames = frag4(udp_dgram, 256, 99, 17, ip_a, 0, 42);
  REQUIRE(frames.size() == 4);
  for (const auto& f : frames)
    REQUIRE(f.p.is_fragment);
  std::vector<std::vector<size_t>> orders = {iota(4), {3, 2, 1, 0}, {2, 0, 3, 1}, {1, 3, 0, 2}};
  for (const auto& order : orders) {
    ip_reassembler r;
    std::vector<uint8_t> out;
    REQUIRE(feed(r, frames, out, order));
    check_v4_result(out, frames[order.back()].p);
    CHECK(r.pending() == 0);
    CHECK(r.buffered_bytes() == 0);
    CHECK(r.counters().reassembled == 1);
    CHECK(r.counters().fragments == 4);
  }
}

TEST_CASE("IPv4: DF kept, header options kept") {
  ipv4_opts o;
  o.proto = 17;
  o.id = 5;
  o.options = bytes({0x94, 0x04, 0x00, 0x00});
  o.frag = 0x2000;
  const buf first(udp_dgram.begin(), udp_dgram.begin() + 512);
  const buf second(udp_dgram.begin() + 512, udp_dgram.end());
  frame a = make(eth(0x0800) + ipv4(ip_a, ip_b, first, o));
  o.frag = 512 / 8;
  frame b = make(eth(0x0800) + ipv4(ip_a, ip_b, second, o));
  ip_reassembler r;
  std::vector<uint8_t> out;
  CHECK_FALSE(r.add(a.p, out));
  REQUIRE(r.add(b.p, out));
  REQUIRE(out.size() == 24 + udp_dgram.size());
  CHECK((out[0] & 0x0f) == 6);
  CHECK(out[20] == 0x94);
  CHECK(checksum(out.data(), 24) == 0xffff);
  decoded_packet d;
  REQUIRE(decode_reassembled(out.data(), static_cast<uint32_t>(out.size()), b.p, d) ==
          decode_status::ok);
  CHECK(d.payload_len == dns_payload.size());
}

TEST_CASE("IPv4: exact duplicates and consistent overlaps are accepted") {
  const auto frames = frag4(udp_dgram, 256);
  ip_reassembler r;
  std::vector<uint8_t> out;
  CHECK_FALSE(r.add(frames[0].p, out));
  CHECK_FALSE(r.add(frames[0].p, out)); // duplicate
  CHECK_FALSE(r.add(frames[1].p, out));
  // a re-fragmented copy of bytes 128..384 (same content) overlaps 0 and 1
  ipv4_opts o;
  o.proto = 17;
  o.id = 99;
  o.frag = 0x2000 | (128 / 8);
  const buf mid(udp_dgram.begin() + 128, udp_dgram.begin() + 384);
  frame m = make(eth(0x0800) + ipv4(ip_a, ip_b, mid, o));
  CHECK_FALSE(r.add(m.p, out));
  CHECK_FALSE(r.add(frames[3].p, out));
  REQUIRE(r.add(frames[2].p, out));
  check_v4_result(out, frames[2].p);
  CHECK(r.counters().duplicates == 2);
  CHECK(r.counters().overlaps == 0);
}

TEST_CASE("IPv4: conflicting overlap abandons the datagram") {
  const auto frames = frag4(udp_dgram, 256);
  ip_reassembler r;
  std::vector<uint8_t> out;
  CHECK_FALSE(r.add(frames[0].p, out));
  CHECK_FALSE(r.add(frames[1].p, out));
  ipv4_opts o;
  o.proto = 17;
  o.id = 99;
  o.frag = 0x2000 | (128 / 8);
  frame evil = make(eth(0x0800) + ipv4(ip_a, ip_b, filler(256, 0x77), o));
  CHECK_FALSE(r.add(evil.p, out));
  CHECK(r.counters().overlaps == 1);
  CHECK(r.buffered_bytes() == 0);
  // the rest of the datagram is rejected, nothing completes
  CHECK_FALSE(r.add(frames[2].p, out));
  CHECK_FALSE(r.add(frames[3].p, out));
  CHECK(r.counters().invalid == 2);
  CHECK(r.counters().reassembled == 0);
  CHECK(out.empty());
  // until it times out; then the same key starts afresh
  r.expire(31 * sec);
  CHECK(r.pending() == 0);
  CHECK(r.counters().timed_out == 0); // abandoned ones are not counted twice
  std::vector<size_t> all = iota(4);
  auto again = frag4(udp_dgram, 256, 99, 17, ip_a, 40 * sec);
  REQUIRE(feed(r, again, out, all));
}

TEST_CASE("IPv6: fragment header removed, unfragmentable part kept") {
  const buf l4 = udp_dgram;
  SUBCASE("fragment header right after the IPv6 header") {
    const auto frames = frag6(l4, 304);
    REQUIRE(frames.size() == 4);
    for (const auto& order : std::vector<std::vector<size_t>>{iota(4), {3, 1, 2, 0}}) {
      ip_reassembler r;
      std::vector<uint8_t> out;
      REQUIRE(feed(r, frames, out, order));
      REQUIRE(out.size() == 40 + l4.size());
      CHECK(out[4] * 256 + out[5] == static_cast<int>(l4.size()));
      CHECK(out[6] == 17);
      decoded_packet d;
      REQUIRE(decode_reassembled(out.data(), static_cast<uint32_t>(out.size()), frames[0].p,
                                 d) == decode_status::ok);
      CHECK_FALSE(d.is_fragment);
      CHECK(d.l4_proto == 17);
      CHECK(d.sport == 53);
      CHECK(d.payload_len == dns_payload.size());
      CHECK(std::equal(dns_payload.begin(), dns_payload.end(), d.payload()));
    }
  }
  SUBCASE("hop-by-hop and routing before the fragment header") {
    const buf unfrag = ext_hdr(43, 0) + ext_hdr(44, 1); // hop-by-hop -> routing -> fragment
    const auto frames = frag6(l4, 512, 7, 0, unfrag);
    ip_reassembler r;
    std::vector<uint8_t> out;
    REQUIRE(feed(r, frames, out, {1, 0}));
    REQUIRE(out.size() == 40 + 24 + l4.size());
    CHECK(out[4] * 256 + out[5] == static_cast<int>(24 + l4.size()));
    CHECK(out[6] == 0);        // IPv6 header still points at hop-by-hop
    CHECK(out[40] == 43);      // hop-by-hop -> routing
    CHECK(out[48] == 17);      // routing now -> UDP (was 44)
    decoded_packet d;
    REQUIRE(decode_reassembled(out.data(), static_cast<uint32_t>(out.size()), frames[0].p, d) ==
            decode_status::ok);
    CHECK(d.l4_off == 64);
    CHECK(d.dport == 40000);
    CHECK(d.payload_len == dns_payload.size());
  }
}

TEST_CASE("IPv6: exact duplicate kept, any other overlap abandons (RFC 5722)") {
  const auto frames = frag6(udp_dgram, 304);
  {
    ip_reassembler r;
    std::vector<uint8_t> out;
    CHECK_FALSE(r.add(frames[1].p, out));
    CHECK_FALSE(r.add(frames[1].p, out));
    CHECK(r.counters().duplicates == 1);
    REQUIRE(feed(r, frames, out, {0, 2, 3}));
  }
  {
    ip_reassembler r;
    std::vector<uint8_t> out;
    CHECK_FALSE(r.add(frames[0].p, out));
    // same bytes, other boundaries: still an overlap for IPv6
    const buf part(udp_dgram.begin() + 152, udp_dgram.begin() + 456);
    frame o = make(eth(0x86dd) + ipv6(ip6_a, ip6_b, 44, frag_hdr(17, 152, true, 0x1234567) + part));
    CHECK_FALSE(r.add(o.p, out));
    CHECK(r.counters().overlaps == 1);
    CHECK_FALSE(feed(r, frames, out, {1, 2, 3}));
    CHECK(r.counters().reassembled == 0);
  }
}

TEST_CASE("timeout: expire() and a late fragment") {
  ip_reassembly_limits lim;
  lim.timeout_ns = 5 * sec;
  ip_reassembler r(lim);
  std::vector<uint8_t> out;
  auto frames = frag4(udp_dgram, 256, 1, 17, ip_a, 100 * sec);
  CHECK_FALSE(r.add(frames[0].p, out));
  CHECK_FALSE(r.add(frames[1].p, out));
  r.expire(104 * sec);
  CHECK(r.pending() == 1);
  r.expire(105 * sec);
  CHECK(r.pending() == 0);
  CHECK(r.counters().timed_out == 1);
  CHECK(r.buffered_bytes() == 0);

  // late fragment of a datagram not yet expired by expire(): starts afresh
  auto g = frag4(udp_dgram, 256, 2, 17, ip_a, 200 * sec);
  CHECK_FALSE(r.add(g[0].p, out));
  CHECK_FALSE(r.add(g[1].p, out));
  auto late = frag4(udp_dgram, 256, 2, 17, ip_a, 206 * sec);
  CHECK_FALSE(r.add(late[2].p, out));
  CHECK_FALSE(r.add(late[3].p, out)); // 0 and 1 were dropped with the old one
  CHECK(r.counters().timed_out == 2);
  CHECK(r.pending() == 1);
  REQUIRE(feed(r, late, out, {0, 1}));
}

TEST_CASE("limit: max_datagrams evicts the oldest") {
  ip_reassembly_limits lim;
  lim.max_datagrams = 2;
  ip_reassembler r(lim);
  std::vector<uint8_t> out;
  auto a = frag4(udp_dgram, 256, 1);
  auto b = frag4(udp_dgram, 256, 2);
  auto c = frag4(udp_dgram, 256, 3);
  CHECK_FALSE(r.add(a[0].p, out));
  CHECK_FALSE(r.add(b[0].p, out));
  CHECK_FALSE(r.add(c[0].p, out));
  CHECK(r.pending() == 2);
  CHECK(r.counters().limit_datagrams == 1);
  CHECK(feed(r, c, out, {1, 2, 3}));
  CHECK(feed(r, b, out, {1, 2, 3}));
  CHECK_FALSE(feed(r, a, out, {1, 2, 3})); // a lost its first fragment
}

TEST_CASE("limit: max_fragments abandons the datagram") {
  ip_reassembly_limits lim;
  lim.max_fragments = 3;
  ip_reassembler r(lim);
  std::vector<uint8_t> out;
  auto f = frag4(udp_dgram, 256);
  CHECK_FALSE(feed(r, f, out, iota(4)));
  CHECK(r.counters().limit_fragments == 1);
  CHECK(r.counters().reassembled == 0);
  CHECK(r.buffered_bytes() == 0);
}

TEST_CASE("limit: max_buffered_bytes evicts others, then abandons") {
  ip_reassembly_limits lim;
  lim.max_buffered_bytes = 1500;
  ip_reassembler r(lim);
  std::vector<uint8_t> out;
  auto a = frag4(udp_dgram, 256, 1);
  auto b = frag4(udp_dgram, 256, 2);
  CHECK_FALSE(r.add(a[0].p, out));
  CHECK_FALSE(r.add(a[1].p, out));
  CHECK(r.buffered_bytes() <= 1500);
  CHECK_FALSE(r.add(b[3].p, out)); // needs ~1000 bytes: a is evicted
  CHECK(r.counters().limit_bytes >= 1);
  CHECK(r.buffered_bytes() <= 1500);
  REQUIRE(feed(r, b, out, {0, 1, 2}));
  // a datagram bigger than the whole budget is abandoned
  const buf big = udp(1, 2, filler(3000));
  auto c = frag4(big, 1000, 9);
  CHECK_FALSE(feed(r, c, out, {3, 2, 1, 0}));
  CHECK(r.buffered_bytes() <= 1500);
}

TEST_CASE("validation rules") {
  std::vector<uint8_t> out;
  SUBCASE("not a fragment / not ok") {
    ip_reassembler r;
    frame f = make(eth(0x0800) + ipv4(ip_a, ip_b, udp(1, 2), [] {
                     ipv4_opts o;
                     o.proto = 17;
                     return o;
                   }()));
    CHECK_FALSE(r.add(f.p, out));
    frame g = make(eth(0x0806) + filler(30));
    CHECK_FALSE(r.add(g.p, out));
    CHECK(r.counters().invalid == 2);
  }
  SUBCASE("non-last fragment length not a multiple of 8") {
    ip_reassembler r;
    auto f = frag4(udp_dgram, 250);
    CHECK_FALSE(r.add(f[0].p, out));
    CHECK(r.counters().invalid == 1);
    CHECK(r.pending() == 0);
  }
  SUBCASE("offset + length beyond 65535") {
    ip_reassembler r;
    ipv4_opts o;
    o.proto = 17;
    o.frag = 8190; // 65520 bytes
    frame f = make(eth(0x0800) + ipv4(ip_a, ip_b, filler(100), o));
    REQUIRE(f.p.status == decode_status::ok);
    CHECK_FALSE(r.add(f.p, out));
    CHECK(r.counters().invalid == 1);
    CHECK(r.pending() == 0);
  }
  SUBCASE("beyond max_datagram_size") {
    ip_reassembly_limits lim;
    lim.max_datagram_size = 1000;
    ip_reassembler r(lim);
    auto f = frag4(udp_dgram, 256);
    CHECK_FALSE(feed(r, f, out, iota(4)));
    CHECK(r.counters().invalid == 1); // the last one, ending at 1008 + 20
  }
  SUBCASE("fragment data cut by the capture") {
    ip_reassembler r;
    auto f = frag4(udp_dgram, 256);
    buf cut(f[1].bytes.begin(), f[1].bytes.end() - 10);
    frame c = make(cut);
    REQUIRE(c.p.status == decode_status::ok);
    CHECK_FALSE(r.add(c.p, out));
    CHECK(r.counters().invalid == 1);
  }
  SUBCASE("two last fragments with different ends") {
    ip_reassembler r;
    auto f = frag4(udp_dgram, 256);
    CHECK_FALSE(r.add(f[3].p, out));
    ipv4_opts o;
    o.proto = 17;
    o.id = 99;
    o.frag = 1024 / 8;
    frame other = make(eth(0x0800) + ipv4(ip_a, ip_b, filler(8), o));
    CHECK_FALSE(r.add(other.p, out));
    CHECK(r.counters().invalid == 1);
    CHECK_FALSE(feed(r, f, out, {0, 1, 2}));
  }
  SUBCASE("data beyond the end given by the last fragment") {
    ip_reassembler r;
    auto f = frag4(udp_dgram, 256);
    CHECK_FALSE(r.add(f[3].p, out)); // ends at 1008
    ipv4_opts o;
    o.proto = 17;
    o.id = 99;
    o.frag = 0x2000 | (1024 / 8);
    frame beyond = make(eth(0x0800) + ipv4(ip_a, ip_b, filler(16), o));
    CHECK_FALSE(r.add(beyond.p, out));
    CHECK(r.counters().invalid == 1);
  }
}

TEST_CASE("keys: address, id, protocol and family separate datagrams") {
  ip_reassembler r;
  std::vector<uint8_t> out;
  auto a = frag4(udp_dgram, 256, 1, 17, ip_a);
  auto b = frag4(udp_dgram, 256, 1, 17, v4addr{10, 0, 0, 9});
  auto c = frag4(udp_dgram, 256, 2, 17, ip_a);
  auto d = frag4(udp_dgram, 256, 1, 6, ip_a);
  for (size_t i = 0; i < 3; ++i) {
    CHECK_FALSE(r.add(a[i].p, out));
    CHECK_FALSE(r.add(b[i].p, out));
    CHECK_FALSE(r.add(c[i].p, out));
    CHECK_FALSE(r.add(d[i].p, out));
  }
  CHECK(r.pending() == 4);
  CHECK(r.add(a[3].p, out));
  CHECK(r.add(b[3].p, out));
  CHECK(r.add(c[3].p, out));
  CHECK(r.add(d[3].p, out));
  CHECK(r.counters().reassembled == 4);
}

TEST_CASE("random fragment streams keep memory bounded") {
  ip_reassembly_limits lim;
  lim.max_datagrams = 16;
  lim.max_buffered_bytes = 64 * 1024;
  ip_reassembler r(lim);
  std::mt19937 rng(99);
  std::vector<uint8_t> out;
  size_t done = 0;
  for (int i = 0; i < 20000; ++i) {
    ipv4_opts o;
    o.proto = 17;
    o.id = static_cast<uint16_t>(rng() % 40);
    const bool more = rng() % 4 != 0;
    o.frag = static_cast<uint16_t>((rng() % 64) | (more ? 0x2000 : 0));
    frame f = make(eth(0x0800) + ipv4(ip_a, ip_b, filler(8 * (1 + rng() % 8)), o),
                   static_cast<uint64_t>(i) * 1000000);
    if (r.add(f.p, out)) {
      ++done;
      decoded_packet d;
      CHECK(decode_reassembled(out.data(), static_cast<uint32_t>(out.size()), f.p, d) !=
            decode_status::unsupported_link);
    }
    REQUIRE(r.pending() <= 16);
    REQUIRE(r.buffered_bytes() <= 64 * 1024);
  }
  CHECK(r.counters().fragments == 20000);
  CHECK(done == r.counters().reassembled);
  r.clear();
  CHECK(r.pending() == 0);
  CHECK(r.buffered_bytes() == 0);
}

TEST_CASE("corpus: fragmented captures reassemble") {
  const std::string corpus = METAPROBE_CORPUS;
  if (!std::ifstream(corpus + "/MANIFEST.tsv").good()) {
    MESSAGE("corpus not found at " << corpus << ": skipped");
    return;
  }
  // file, datagrams tshark reassembles (frames with ip.reassembled.length or
  // ipv6.reassembled.length)
  const std::vector<std::pair<std::string, uint64_t>> files = {
      {"ipv4-fragments-large-pcpp.pcap", 190},
      {"ipv6-fragments-pcpp.pcap", 4},
      {"dns-ipv4-fragmented.pcap", 7},
      {"ipv4-frag-http-req.pcap", 1},
  };
  for (const auto& [name, expect] : files) {
    std::string err;
    auto src = pcap_source::open_file(corpus + "/" + name, err);
    REQUIRE_MESSAGE(src, err);
    ip_reassembler r;
    std::vector<uint8_t> out;
    uint64_t decoded_ok = 0;
    while (!src->eof()) {
      packet_batch b;
      if (src->next_batch(b, 64) < 0)
        break;
      for (const auto& p : b.packets) {
        if (p.status != decode_status::ok || !p.is_fragment)
          continue;
        if (r.add(p, out)) {
          decoded_packet d;
          if (decode_reassembled(out.data(), static_cast<uint32_t>(out.size()), p, d) ==
                  decode_status::ok &&
              !d.is_fragment && d.l4_proto == p.l4_proto)
            ++decoded_ok;
        }
      }
    }
    const auto& c = r.counters();
    MESSAGE(name << ": fragments " << c.fragments << ", reassembled " << c.reassembled
                 << ", invalid " << c.invalid << ", overlaps " << c.overlaps << ", pending "
                 << r.pending());
    CHECK(c.reassembled > 0);
    CHECK(decoded_ok == c.reassembled);
    CHECK(c.reassembled == expect);
  }
}
