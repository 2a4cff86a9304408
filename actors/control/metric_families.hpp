// SPDX-License-Identifier: Apache-2.0
#pragma once
// The Prometheus family of each stage counter (v1::Counter, named by
// control/stats_counters.hpp): its name in base units and its HELP text.
// The control endpoint and metaprobe-console keep the counters' own names
// and units; /metrics (control/metrics_text.hpp) renders them through this
// table, so that
//   - a quantity is in base units, named by its unit last: seconds
//     (max_send_cycle_us -> send_cycle_max_seconds, value / 1e6) and bytes
//     (bytes_sent -> sent_bytes, octets_sent -> sent_bytes);
//   - every family has a HELP text that says what is counted;
//   - render_prometheus adds _total to counters only (Counter.gauge says
//     which are levels).
// A counter that is not in the table keeps its name and gets the HELP
// text "<stage> counter <name>" (integration.metrics_lint fails on it: add
// the counter here). Plain functions, no state.

#include <string>
#include <string_view>

namespace metaprobe {

struct metric_family {
  std::string name;   // without the metaprobe_ prefix and the _total suffix
  std::string help;
  double divisor = 1; // the family's value is the counter's value / divisor
};

// The family of the counter named `counter_name` (Counter.name, e.g.
// "exporter_sink_octets_sent"); `stage` (its stage label) words the
// fallback HELP text.
metric_family family_of_counter(std::string_view counter_name, std::string_view stage);

} // namespace metaprobe
