// SPDX-License-Identifier: Apache-2.0
#include "exporters/send_cycles.hpp"

#include <algorithm>
#include <cstdio>

namespace metaprobe {

std::string format_nflw_stats(const send_cycle_period& p) {
  // c in hundredths of a percent, rounded half up; integer arithmetic so
  // that 1/3 prints 33.33 and 2/3 66.67 on every platform.
  const unsigned long long a = p.cycles;
  const unsigned long long b = std::min(p.overruns, p.cycles);
  const unsigned long long c = a == 0 ? 0 : (10000ULL * b + a / 2) / a;
  char buf[160];
  std::snprintf(buf, sizeof buf, "Statistics on NFLW_export : {%llu/%llu/%llu.%02llu%%/%lldus/%lldus}", a, b,
                c / 100, c % 100, static_cast<long long>(p.max_cycle.count()),
                static_cast<long long>(p.elapsed.count()));
  return buf;
}

send_cycle_stats::send_cycle_stats(std::chrono::microseconds cycle_period,
                                   std::chrono::microseconds stats_period, clock::time_point start)
  : cycle_period_(cycle_period), stats_period_(stats_period), period_start_(start) {}

bool send_cycle_stats::end_cycle(std::chrono::microseconds busy) {
  const bool overran = busy > cycle_period_;
  ++cur_.cycles;
  ++total_cycles_;
  if (overran) {
    ++cur_.overruns;
    ++total_overruns_;
  }
  cur_.max_cycle = std::max(cur_.max_cycle, busy);
  max_ever_ = std::max(max_ever_, busy);
  return overran;
}

send_cycle_period send_cycle_stats::take_period(clock::time_point now) {
  send_cycle_period out = cur_;
  out.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(now - period_start_);
  cur_ = {};
  period_start_ = now;
  return out;
}

drop_alerts::state& drop_alerts::at(size_t index) {
  if (sinks_.size() <= index) sinks_.resize(index + 1);
  return sinks_[index];
}

std::string drop_alerts::text(std::string_view name, const state& s, const cycle& c) const {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                " skipped %llu record(s) in this cycle, %llu since the last alert, %llu in total; "
                "cycle %lldus of %lldus period (%s)",
                static_cast<unsigned long long>(s.cycle_drops),
                static_cast<unsigned long long>(s.seen - s.reported), static_cast<unsigned long long>(s.seen),
                static_cast<long long>(c.busy.count()), static_cast<long long>(c.period.count()),
                c.overran ? "overran" : "within period");
  std::string out = "[NFLW] very long operation: ";
  out += name;
  out += buf;
  return out;
}

std::optional<std::string> drop_alerts::observe(size_t index, std::string_view name, uint64_t total,
                                                const cycle& c, clock::time_point now) {
  state& s = at(index);
  if (s.name != name) { // another sink at this position (SIGHUP reload): its own count
    s = state{};
    s.name = std::string(name);
  }
  s.cycle_drops = total > s.seen ? total - s.seen : 0;
  s.seen = std::max(s.seen, total);
  if (s.seen == s.reported) return std::nullopt;
  if (s.ever_alerted && now - s.last_alert < min_interval_) return std::nullopt;
  std::string out = text(name, s, c);
  s.reported = s.seen;
  s.ever_alerted = true;
  s.last_alert = now;
  ++lines_;
  return out;
}

std::optional<std::string> drop_alerts::finish(size_t index, std::string_view name, const cycle& c) {
  if (index >= sinks_.size()) return std::nullopt;
  state& s = sinks_[index];
  if (s.name != name || s.seen == s.reported) return std::nullopt;
  std::string out = text(name, s, c);
  s.reported = s.seen;
  ++lines_;
  return out;
}

} // namespace metaprobe
