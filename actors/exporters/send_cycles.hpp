// SPDX-License-Identifier: Apache-2.0
#pragma once
// Sending-cycle accounting of one exporter: the seeds'
// `Statistics on NFLW_export : {a/b/c%/d/e}` stat line and the
// `[NFLW] very long operation` alert lines. Plain C++, no I/O: the
// exporter loop feeds it times and counters and writes the lines it gets.
//
// A sending cycle is one tick period of the exporter loop (exporter_options
// ::tick, 100 ms by default). Its duration is the loop's busy time within
// that period: receiving batches, handing their records to the sinks
// (encoding, sending, writing) and the sinks' periodic tick; time spent
// waiting for input is not counted. A cycle overruns when its duration
// exceeds the period: the exporter could not keep up. The final flush at
// the end of the run is one more cycle.
//
// Stat line fields, per statistics period (netflow_timeout):
//   a  cycles ended in the period
//   b  cycles that overran
//   c  100 * b / a with two decimals (0.00 when a is 0)
//   d  longest cycle duration in the period, microseconds, suffix `us`
//   e  actual length of the period, microseconds, suffix `us`
// The figures restart with every period.
//
// Threading: used by one thread.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace metaprobe {

struct send_cycle_period {
  uint64_t cycles = 0;                     // a
  uint64_t overruns = 0;                   // b
  std::chrono::microseconds max_cycle{0};  // d
  std::chrono::microseconds elapsed{0};    // e
};

// `Statistics on NFLW_export : {a/b/c%/dus/eus}`.
std::string format_nflw_stats(const send_cycle_period& p);

class send_cycle_stats {
public:
  using clock = std::chrono::steady_clock;
  send_cycle_stats(std::chrono::microseconds cycle_period, std::chrono::microseconds stats_period,
                   clock::time_point start);

  // A cycle ended after `busy` time of work; true when it overran.
  bool end_cycle(std::chrono::microseconds busy);
  // True when a statistics period has elapsed by `now`.
  bool period_due(clock::time_point now) const { return now - period_start_ >= stats_period_; }
  // The figures of the period that ends at `now`; the next period starts.
  send_cycle_period take_period(clock::time_point now);

  std::chrono::microseconds cycle_period() const { return cycle_period_; }
  // Cycles ended in the current period so far.
  uint64_t period_cycles() const { return cur_.cycles; }
  uint64_t total_cycles() const { return total_cycles_; }
  uint64_t total_overruns() const { return total_overruns_; }
  std::chrono::microseconds max_cycle_ever() const { return max_ever_; }

private:
  std::chrono::microseconds cycle_period_;
  std::chrono::microseconds stats_period_;
  clock::time_point period_start_;
  send_cycle_period cur_;
  uint64_t total_cycles_ = 0;
  uint64_t total_overruns_ = 0;
  std::chrono::microseconds max_ever_{0};
};

// Rate-limited alert text for records the sinks skipped (dropped).
// observe() is called at the end of every cycle with each sink's
// `records_dropped` total; when the total grew, an alert is due at once
// unless one was written for that sink less than `min_interval` ago, in
// which case the drops wait for the next line (no drop goes unreported:
// finish() reports what is still waiting).
//
// Alert text (after the `[ALERT   ][time] ` line prefix):
//   [NFLW] very long operation: SINK skipped N record(s) in this cycle,
//   S since the last alert, T in total; cycle Xus of Yus period (overran)
// where the last word is `overran` or `within period`.
class drop_alerts {
public:
  using clock = std::chrono::steady_clock;
  explicit drop_alerts(std::chrono::milliseconds min_interval) : min_interval_(min_interval) {}

  struct cycle {
    std::chrono::microseconds busy{0};
    std::chrono::microseconds period{0};
    bool overran = false;
  };
  // Sink `index` (stable position, named `name`) has dropped `total`
  // records so far. Returns the alert text when a line is due now.
  std::optional<std::string> observe(size_t index, std::string_view name, uint64_t total,
                                     const cycle& c, clock::time_point now);
  // End of run: the text for sink `index` when drops wait, else nothing.
  std::optional<std::string> finish(size_t index, std::string_view name, const cycle& c);

  uint64_t lines() const { return lines_; }

private:
  struct state {
    std::string name;       // the sink at this position (a reload may replace it)
    uint64_t seen = 0;      // total at the last observe()
    uint64_t reported = 0;  // total at the last alert line
    uint64_t cycle_drops = 0;
    bool ever_alerted = false;
    clock::time_point last_alert{};
  };
  std::string text(std::string_view name, const state& s, const cycle& c) const;
  state& at(size_t index);

  std::chrono::milliseconds min_interval_;
  std::vector<state> sinks_;
  uint64_t lines_ = 0;
};

} // namespace metaprobe
