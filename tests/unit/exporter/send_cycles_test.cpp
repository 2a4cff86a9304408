// SPDX-License-Identifier: Apache-2.0
// Sending-cycle accounting: the `Statistics on NFLW_export` figures and
// the rate-limited `[NFLW] very long operation` alerts.
#include <doctest/doctest.h>

#include <string>

#include "exporters/send_cycles.hpp"

using namespace metaprobe;
using namespace std::chrono_literals;
using std::chrono::microseconds;

TEST_CASE("stat line format: the seed's example and the percentage") {
  send_cycle_period p;
  p.cycles = 7;
  p.overruns = 0;
  p.max_cycle = 45297us;
  p.elapsed = 30008163us;
  CHECK(format_nflw_stats(p) == "Statistics on NFLW_export : {7/0/0.00%/45297us/30008163us}");
  p.cycles = 3;
  p.overruns = 1;
  CHECK(format_nflw_stats(p) == "Statistics on NFLW_export : {3/1/33.33%/45297us/30008163us}");
  p.overruns = 2;
  CHECK(format_nflw_stats(p) == "Statistics on NFLW_export : {3/2/66.67%/45297us/30008163us}");
  p.overruns = 3;
  CHECK(format_nflw_stats(p) == "Statistics on NFLW_export : {3/3/100.00%/45297us/30008163us}");
  p.cycles = 8;
  p.overruns = 1;
  CHECK(format_nflw_stats(p) == "Statistics on NFLW_export : {8/1/12.50%/45297us/30008163us}");
  p.cycles = 100000;
  p.overruns = 1;
  CHECK(format_nflw_stats(p) == "Statistics on NFLW_export : {100000/1/0.00%/45297us/30008163us}");
  p.overruns = 5;
  CHECK(format_nflw_stats(p) == "Statistics on NFLW_export : {100000/5/0.01%/45297us/30008163us}");
}

TEST_CASE("stat line with no cycles") {
  send_cycle_period p;
  p.elapsed = 1000us;
  CHECK(format_nflw_stats(p) == "Statistics on NFLW_export : {0/0/0.00%/0us/1000us}");
}

TEST_CASE("cycles, overruns, maximum and the period") {
  const auto t0 = send_cycle_stats::clock::time_point{} + 1h;
  send_cycle_stats s(100ms, 1s, t0);
  CHECK(!s.end_cycle(5ms));
  CHECK(!s.end_cycle(100ms)); // exactly the period: not over it
  CHECK(s.end_cycle(100001us));
  CHECK(s.end_cycle(250ms));
  CHECK(!s.end_cycle(0us));
  CHECK(!s.period_due(t0 + 999ms));
  CHECK(s.period_due(t0 + 1s));
  const send_cycle_period p = s.take_period(t0 + 1000123us);
  CHECK(p.cycles == 5);
  CHECK(p.overruns == 2);
  CHECK(p.max_cycle == 250ms);
  CHECK(p.elapsed == 1000123us); // the actual elapsed time, not the nominal period
  CHECK(format_nflw_stats(p) == "Statistics on NFLW_export : {5/2/40.00%/250000us/1000123us}");

  // the next period starts afresh; totals keep counting
  CHECK(!s.period_due(t0 + 1500ms));
  CHECK(!s.end_cycle(7ms));
  const send_cycle_period q = s.take_period(t0 + 2100123us);
  CHECK(q.cycles == 1);
  CHECK(q.overruns == 0);
  CHECK(q.max_cycle == 7ms);
  CHECK(q.elapsed == 1100ms);
  CHECK(s.total_cycles() == 6);
  CHECK(s.total_overruns() == 2);
  CHECK(s.max_cycle_ever() == 250ms);
  const send_cycle_period empty = s.take_period(t0 + 2200123us);
  CHECK(format_nflw_stats(empty) == "Statistics on NFLW_export : {0/0/0.00%/0us/100000us}");
}

TEST_CASE("drop alerts: at once, then at most one per interval, nothing lost") {
  using clock = drop_alerts::clock;
  const auto t0 = clock::time_point{} + 1h;
  drop_alerts a(1000ms);
  drop_alerts::cycle within{3ms, 100ms, false};
  drop_alerts::cycle over{150ms, 100ms, true};

  CHECK(!a.observe(0, "sink:a", 0, within, t0)); // nothing dropped
  auto l1 = a.observe(0, "sink:a", 40, within, t0 + 100ms);
  REQUIRE(l1);
  CHECK(*l1 == "[NFLW] very long operation: sink:a skipped 40 record(s) in this cycle, 40 since the last "
               "alert, 40 in total; cycle 3000us of 100000us period (within period)");
  CHECK(!a.observe(0, "sink:a", 50, over, t0 + 200ms)); // rate-limited
  CHECK(!a.observe(0, "sink:a", 50, within, t0 + 300ms));
  // another sink has its own limit
  auto other = a.observe(1, "sink:b", 7, over, t0 + 300ms);
  REQUIRE(other);
  CHECK(other->find("sink:b skipped 7 record(s) in this cycle, 7 since the last alert, 7 in total") !=
        std::string::npos);
  CHECK(other->find("cycle 150000us of 100000us period (overran)") != std::string::npos);
  // the interval has passed: the drops held back are reported
  auto l2 = a.observe(0, "sink:a", 52, over, t0 + 1100ms);
  REQUIRE(l2);
  CHECK(l2->find("sink:a skipped 2 record(s) in this cycle, 12 since the last alert, 52 in total") !=
        std::string::npos);
  // no new drops: no line, even after the interval
  CHECK(!a.observe(0, "sink:a", 52, within, t0 + 5s));
  // drops held back at the end of the run are reported by finish()
  CHECK(a.observe(0, "sink:a", 60, within, t0 + 5100ms));
  CHECK(!a.observe(0, "sink:a", 61, within, t0 + 5200ms));
  auto last = a.finish(0, "sink:a", within);
  REQUIRE(last);
  CHECK(last->find("skipped 1 record(s) in this cycle, 1 since the last alert, 61 in total") !=
        std::string::npos);
  CHECK(!a.finish(0, "sink:a", within));
  CHECK(!a.finish(1, "sink:b", within));
  CHECK(!a.finish(9, "sink:none", within));
  CHECK(a.lines() == 5);
}

TEST_CASE("drop alerts: a sink replaced at the same position (reload) starts its own count") {
  using clock = drop_alerts::clock;
  const auto t0 = clock::time_point{} + 1h;
  drop_alerts a(1000ms);
  drop_alerts::cycle within{3ms, 100ms, false};
  REQUIRE(a.observe(0, "sink:old", 500, within, t0));
  // after a reload position 0 holds a new sink with 3 drops of its own
  auto l = a.observe(0, "sink:new", 3, within, t0 + 100ms);
  REQUIRE(l);
  CHECK(l->find("sink:new skipped 3 record(s) in this cycle, 3 since the last alert, 3 in total") !=
        std::string::npos);
  CHECK(!a.finish(0, "sink:new", within));
}
