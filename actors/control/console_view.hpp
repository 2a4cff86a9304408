// SPDX-License-Identifier: Apache-2.0
#pragma once
// What metaprobe-console prints for a ControlReply: aligned text tables or
// one JSON object (--json). Plain functions, no I/O.
//
// JSON shapes (every count a JSON number):
//   status:    {"processes":[{process,binary,version,pid,uptime_ms,state,
//               endpoint,error,control_requests,control_refused}]}
//   actors:    {"processes":[...],"actors":[{process,name,kind,shard,
//               mailbox_depth,messages_in,messages_out,rate,drops,errors,
//               last_error,finished}]}
//   flows:     {"processes":[...],"shards":[{process,shard,<counter>:n...}],
//               "protocols":{"<proto>":{<counter>:n...}},"total":{<counter>:n}}
//   exporters: {"processes":[...],"publisher":[{process,channel,<counter>:n}],
//               "exporters":[{process,channel,instance,<counter>:n...,
//               "sinks":[{sink,collector,<counter>:n...}]}]}
//   counters:  {"processes":[...],"counters":[{name,value,gauge,labels:{}}]}
//   config:    {"config":{key:value}}

#include <string>

#include "metaprobe/v1/control.pb.h"

namespace metaprobe {

// The request kind of a console command; false when it is not one.
bool console_command_kind(const std::string& command, v1::ControlRequest::Kind& kind);

// The commands metaprobe-console knows (completion, help).
const char* const* console_commands();

std::string render_json(const std::string& command, const v1::ControlReply& reply);
std::string render_text(const std::string& command, const v1::ControlReply& reply);

// A JSON string literal of `s` (quotes included; control bytes \u00XX,
// bytes >= 0x80 passed through).
std::string json_string(const std::string& s);

} // namespace metaprobe
