// SPDX-License-Identifier: Apache-2.0
#pragma once
// Turns the dotted stage_stats names of a process into named, labelled
// counters: the one naming that the control endpoint, metaprobe-console
// and /metrics share.
//
//   capture.decode.ok                      -> capture_decode_ok {stage}
//   classifier.<shard>.flows_created       -> classifier_flows_created {stage, shard}
//   parser.<proto>.<shard>.records         -> parser_records {stage, protocol, shard}
//   correlator.records                     -> correlator_records {stage}
//   publisher.<group>.<sink>.records_sent  -> publisher_records_sent {stage, channel}
//   exporter.<group>.<sink>.<i>.records    -> exporter_records {stage, channel, instance}
//   exporter.<group>.<sink>.<i>.<sink name>.<counter>{<label>}
//                                          -> exporter_sink_<counter>
//                                             {stage, channel, instance, sink, collector}
//   anything else <a>.<b>...               -> <a>_<b>_... {stage=<a>}
// Names keep [a-z0-9_] only. /metrics renders these counters under their
// Prometheus family names (base units, HELP texts: metric_families.hpp).
// Plain functions, no state.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "metaprobe/v1/control.pb.h"

namespace metaprobe {

// [A-Za-z0-9_] kept (letters lowered), everything else becomes '_'.
std::string metric_safe(std::string_view s);

// True for counters that are levels (active flows, pending datagrams,
// connection state, buffered, unacknowledged and held records, connected
// exporters, running children, the longest send cycle so far), false for
// monotonic counts.
bool is_gauge_name(std::string_view counter_name);

// One stage_stats entry as a Counter (labels as above, without `process`).
v1::Counter counter_from_stat(const std::string& key, uint64_t value);

std::vector<v1::Counter> counters_from_stats(const std::map<std::string, uint64_t>& stats);

} // namespace metaprobe
