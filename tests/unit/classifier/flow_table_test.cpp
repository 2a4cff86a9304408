// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include "classifier/flow_table.hpp"
#include "test_packets.hpp"

using namespace metaprobe;
using namespace metaprobe::test;

namespace {

decoded_packet pkt(const ip_address& s, uint16_t sp, const ip_address& d, uint16_t dp,
                   uint8_t proto = 6) {
  decoded_packet p;
  p.ip_version = s.family;
  p.src = s;
  p.dst = d;
  p.sport = sp;
  p.dport = dp;
  p.l4_proto = proto;
  p.flow_hash = flow_hash_of(s, d, sp, dp, proto);
  return p;
}

// `n` flows 1.1.1.1:1000+i -> 2.2.2.2:80 created at 10+i.
std::vector<flow_entry*> created_flows(flow_table& t, uint16_t n = 3) {
  std::vector<flow_entry*> fs;
  for (uint16_t i = 0; i < n; ++i) {
    auto p = pkt(v4(1, 1, 1, 1), static_cast<uint16_t>(1000 + i), v4(2, 2, 2, 2), 80);
    bool lo = false;
    fs.push_back(t.create(flow_key::of(p, lo), p.flow_hash, 10 + i));
  }
  return fs;
}

} // namespace

TEST_CASE("flow_key is the same for both directions") {
  auto a = v4(192, 168, 1, 1), b = v4(10, 1, 1, 1);
  bool lo1 = false, lo2 = false;
  flow_key k1 = flow_key::of(pkt(a, 1234, b, 80), lo1);
  flow_key k2 = flow_key::of(pkt(b, 80, a, 1234), lo2);
  CHECK(k1 == k2);
  CHECK(lo1 != lo2);
  CHECK_FALSE(lo1); // 10.x is the lower address
  // Same addresses: the port decides.
  bool lo3 = false;
  flow_key::of(pkt(a, 1000, a, 2000), lo3);
  CHECK(lo3);
  // Protocol and ports are part of the key.
  bool x = false;
  CHECK(flow_key::of(pkt(a, 1234, b, 80, 17), x) != k1);
  CHECK(flow_key::of(pkt(a, 1235, b, 80), x) != k1);
}

TEST_CASE("flow_table: find from both directions, release and reuse") {
  flow_table_options o;
  o.max_flows = 8;
  flow_table t(o);
  auto a = v4(1, 1, 1, 1), b = v4(2, 2, 2, 2);
  auto p1 = pkt(a, 5000, b, 443);
  auto p2 = pkt(b, 443, a, 5000);
  bool lo = false;
  flow_key k = flow_key::of(p1, lo);
  CHECK(t.find(k, p1.flow_hash) == nullptr);
  flow_entry* f = t.create(k, p1.flow_hash, 100);
  REQUIRE(f);
  CHECK(t.size() == 1);
  CHECK(t.find(flow_key::of(p2, lo), p2.flow_hash) == f);
  t.release(*f);
  CHECK(t.size() == 0);
  CHECK(t.find(k, p1.flow_hash) == nullptr);
  flow_entry* g = t.create(k, p1.flow_hash, 200);
  CHECK(g == f); // slot reused from the free list
}

TEST_CASE("flow_table: hard maximum and LRU victim") {
  flow_table_options o;
  o.max_flows = 3;
  flow_table t(o);
  std::vector<flow_entry*> fs = created_flows(t);
  CHECK(t.full());
  CHECK(t.oldest() == fs[0]);
  auto p = pkt(v4(9, 9, 9, 9), 1, v4(2, 2, 2, 2), 80);
  bool lo = false;
  CHECK(t.create(flow_key::of(p, lo), p.flow_hash, 20) == nullptr);
  t.touch(*fs[0], 30);
  CHECK(t.oldest() == fs[1]);
}

TEST_CASE("flow_table: unconfirmed flows are the victims before confirmed ones") {
  flow_table_options o;
  o.max_flows = 8;
  flow_table t(o);
  std::vector<flow_entry*> fs = created_flows(t);
  CHECK(t.unconfirmed() == 3);
  t.confirm(*fs[0]);
  t.confirm(*fs[0]); // no-op
  CHECK(t.unconfirmed() == 2);
  CHECK(t.oldest() == fs[1]);     // the oldest unconfirmed, not the oldest
  t.touch(*fs[1], 20);
  CHECK(t.oldest() == fs[2]);
  t.confirm(*fs[1]);
  t.confirm(*fs[2]);
  CHECK(t.unconfirmed() == 0);
  CHECK(t.oldest() == fs[0]);     // all confirmed: least recently used
  t.release(*fs[0]);
  CHECK(t.oldest() == fs[2]);
  auto p = pkt(v4(3, 3, 3, 3), 1, v4(2, 2, 2, 2), 80);
  bool lo = false;
  flow_entry* n = t.create(flow_key::of(p, lo), p.flow_hash, 30);
  CHECK(!n->confirmed);           // a reused slot starts unconfirmed
  CHECK(t.oldest() == n);
  int visited = 0;
  t.for_each([&](flow_entry&) { ++visited; });
  CHECK(visited == 3);
}

TEST_CASE("flow_table: timers in due order") {
  flow_table_options o;
  o.max_flows = 16;
  o.inactive_timeout_ns = 30 * sec;
  o.active_timeout_ns = 100 * sec;
  o.tcp_close_linger_ns = 2 * sec;
  flow_table t(o);
  auto mk = [&](uint16_t port, uint64_t ts) {
    auto p = pkt(v4(1, 1, 1, 1), port, v4(2, 2, 2, 2), 80);
    bool lo = false;
    return t.create(flow_key::of(p, lo), p.flow_hash, ts);
  };
  flow_entry* a = mk(1, 0);
  flow_entry* b = mk(2, 1 * sec);
  flow_entry* c = mk(3, 2 * sec);
  flow_end_reason why{};
  CHECK(t.next_due(29 * sec, why) == nullptr);
  // a idle at 30 s unless touched
  t.touch(*a, 20 * sec);
  CHECK(t.next_due(31 * sec, why) == b);
  CHECK(why == flow_end_reason::idle);
  t.release(*b);
  // c closes at 10 s: ends at 12 s, before anything else
  t.mark_closing(*c, 10 * sec);
  CHECK(t.next_due(12 * sec, why) == c);
  CHECK(why == flow_end_reason::end);
  t.release(*c);
  // a: active report due at 100 s if it keeps sending
  for (uint64_t s = 30; s <= 100; s += 10)
    t.touch(*a, s * sec);
  CHECK(t.next_due(100 * sec, why) == a);
  CHECK(why == flow_end_reason::active);
  t.rearm_active(*a, 100 * sec);
  CHECK(t.next_due(100 * sec, why) == nullptr);
  CHECK(t.next_due(130 * sec, why) == a);
  CHECK(why == flow_end_reason::idle);
}

TEST_CASE("flow_table: slots beyond one chunk stay addressable") {
  flow_table_options o;
  o.max_flows = flow_table::chunk_size + 100;
  flow_table t(o);
  std::vector<flow_entry*> all;
  for (uint32_t i = 0; i < o.max_flows; ++i) {
    auto p = pkt(v4(1, 1, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)), 1000,
                 v4(2, 2, 2, 2), 80);
    bool lo = false;
    all.push_back(t.create(flow_key::of(p, lo), p.flow_hash, i));
  }
  CHECK(t.full());
  CHECK(t.allocated() == 2 * flow_table::chunk_size);
  size_t found = 0;
  for (uint32_t i = 0; i < o.max_flows; ++i) {
    auto p = pkt(v4(2, 2, 2, 2), 80, v4(1, 1, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)),
                 1000);
    bool lo = false;
    found += t.find(flow_key::of(p, lo), p.flow_hash) == all[i];
  }
  CHECK(found == o.max_flows);
  size_t visited = 0;
  t.for_each([&](flow_entry&) { ++visited; });
  CHECK(visited == o.max_flows);
}
