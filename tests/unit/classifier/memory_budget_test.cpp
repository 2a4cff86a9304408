// SPDX-License-Identifier: Apache-2.0
// The memory budget (core/memory_budget.hpp) and how a classifier shard
// charges it and reacts to its pressure.
#include <doctest/doctest.h>

#include <string>

#include "classifier/classifier_core.hpp"
#include "classifier_harness.hpp"
#include "core/memory_budget.hpp"

using namespace metaprobe;
using namespace metaprobe::test;

namespace {

std::vector<protocol_entry> tcp_registry() {
  std::vector<protocol_entry> r(1);
  r[0].id = app_protocol::http;
  r[0].name = "http";
  r[0].tcp_ports = {80};
  r[0].make_stream = no_stream;
  return r;
}

endpoint_pair spoofed(uint32_t i, uint16_t port) {
  endpoint_pair e;
  e.a = v4(10, static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i));
  e.b = v4(192, 0, 2, 80);
  e.pa = static_cast<uint16_t>(1024 + i % 50000);
  e.pb = port;
  e.proto = 6;
  return e;
}


} // namespace

TEST_CASE("memory_budget: pressure levels follow the charged bytes") {
  memory_budget b(1000 * 1000);
  CHECK(b.pressure() == memory_pressure::normal);
  b.charge(699 * 1000);
  CHECK(b.pressure() == memory_pressure::normal);
  b.charge(2 * 1000);
  CHECK(b.pressure() == memory_pressure::tight);
  b.charge(150 * 1000);
  CHECK(b.pressure() == memory_pressure::critical);
  b.charge(200 * 1000);
  CHECK(b.pressure() == memory_pressure::full);
  CHECK(b.peak() == 1051 * 1000);
  b.charge(-1051 * 1000);
  CHECK(b.pressure() == memory_pressure::normal);
  CHECK(b.used() == 0);
  CHECK(b.peak() == 1051 * 1000);
}

TEST_CASE("memory_account: charges in steps of its slack and gives everything back") {
  memory_budget b(1 << 30);
  {
    memory_account a(&b);
    a.add(1000);
    CHECK(b.used() == 0); // below the slack: pending
    CHECK(a.total() == 1000);
    a.add(memory_account::slack);
    CHECK(b.used() == memory_account::slack + 1000);
    a.add(-500);
    a.flush();
    CHECK(b.used() == memory_account::slack + 500);
  }
  CHECK(b.used() == 0); // the destructor released it all
  memory_account none;   // no budget: nothing charged, never pressure
  none.add(1 << 20);
  CHECK(none.pressure() == memory_pressure::normal);
}

TEST_CASE("classifier: charges out-of-order buffers and gives them back when flows end") {
  memory_budget budget(uint64_t{1} << 30);
  classifier_harness h(tcp_registry(), 0, 7);
  h.opts.budget = &budget;
  h.opts.max_flows = 4096;
  auto e = spoofed(1, 80);
  h.b.tcp(e, true, 1 * ms, syn, 100);
  // out of order: 6000 bytes 1000 bytes ahead, buffered (more than a slot
  // keeps for its next flow, 4 KiB)
  h.b.tcp(e, true, 2 * ms, psh | ack, 1101, std::string(6000, 'x'));
  h.run();
  const int64_t chunk = static_cast<int64_t>(flow_table::chunk_bytes);
  // one chunk of slots, the buckets, and the stream's buffer storage
  CHECK(budget.used() >= chunk + 6000);
  const int64_t with_flow = budget.used();
  h.c().flush_all(10 * ms, h.out);
  h.c().advance_time(11 * ms, h.out); // flushes the account
  CHECK(budget.used() <= with_flow - 6000);
  CHECK(budget.used() >= chunk);
}

TEST_CASE("classifier: short of memory, new flows are lean and unconfirmed flows are evicted first") {
  // A budget the flow table's first chunk fills to two thirds: buffers of
  // a few hundred flows make it short.
  classifier_harness h(tcp_registry(), 0, 7);
  h.opts.max_flows = 4 * flow_table::chunk_size;
  const uint64_t chunk = flow_table::chunk_bytes;
  memory_budget budget(chunk + chunk / 2);
  h.opts.budget = &budget;
  // A real conversation first: handshake (confirmed), then data.
  endpoint_pair real = spoofed(0, 80);
  real.a = v4(198, 51, 100, 7);
  h.b.tcp(real, true, 1 * ms, syn, 100);
  h.b.tcp(real, false, 2 * ms, syn | ack, 500, {}, 101);
  h.b.tcp(real, true, 3 * ms, ack, 101, {}, 501);
  h.run();
  CHECK(h.c().counters().confirmed == 1);
  // Then a flood of spoofed SYNs with an out-of-order byte each.
  for (uint32_t i = 1; i <= 6000; ++i) {
    auto e = spoofed(i, 80);
    h.b.tcp(e, true, (10 + i) * ms, syn, 100);
    h.b.tcp(e, true, (10 + i) * ms, psh | ack, 2101, "z");
    if (i % 200 == 0)
      h.run();
  }
  h.run();
  const auto& c = h.c().counters();
  CHECK(budget.pressure() >= memory_pressure::tight);
  CHECK(c.lean_flows > 0);
  // the second chunk of slots would have made memory short: refused
  CHECK(c.chunk_refused > 0);
  CHECK(h.c().table().allocated() == flow_table::chunk_size);
  CHECK(budget.counted(memory_reason::lean_flows) == c.lean_flows);
  CHECK(c.memory_evictions > 0);
  CHECK(budget.counted(memory_reason::evicted) == c.memory_evictions);
  CHECK(c.memory_evictions_confirmed == 0);  // the conversation stays
  CHECK(c.flows_ended[static_cast<size_t>(flow_end_reason::evicted)] >= c.memory_evictions);
  // a lean flow's out-of-order byte is a gap at once, not buffered
  CHECK(c.tcp.limit_drops > 0);
  // the real flow is still in the table: its next packet makes no new flow
  const uint64_t created = c.flows_created;
  h.b.tcp(real, true, 6100 * ms, psh | ack, 101, "GET / HTTP/1.1\r\n\r\n", 501);
  h.run();
  CHECK(h.c().counters().flows_created == created);
}
