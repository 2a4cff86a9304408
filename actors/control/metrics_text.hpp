// SPDX-License-Identifier: Apache-2.0
#pragma once
// Prometheus text exposition format 0.0.4 of a ControlReply: the same
// counters metaprobe-console shows, as metric families with # HELP and
// # TYPE lines, named metaprobe_<name> (counters end in _total), label
// values escaped (\\ \" \n). Per actor: metaprobe_actor_messages_in_total,
// _messages_out_total, _drops_total, _errors_total and the gauge
// metaprobe_actor_mailbox_depth, labelled process, actor, kind, shard.
// Per process: metaprobe_process_uptime_seconds, metaprobe_control_requests_total,
// metaprobe_control_refused_total. The stage counters as their families of
// control/metric_families.hpp (base units, HELP text), gauges where
// Counter.gauge is set. Plain function, no state.

#include <string>

#include "metaprobe/v1/control.pb.h"

namespace metaprobe {

std::string render_prometheus(const v1::ControlReply& reply);

// "a\"b" -> a\"b with \\, \" and \n escaped (label values).
std::string prometheus_escape(const std::string& v);

} // namespace metaprobe
