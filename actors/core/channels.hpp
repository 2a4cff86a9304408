// SPDX-License-Identifier: Apache-2.0
#pragma once
// The contract between metaprobe-capture (publisher) and metaprobe-exporter:
// which ZeroMQ channels exist, what travels on them and where they live.
// Both sides include this header; nothing else names an endpoint.
//
// A channel is "<group>.<sink>": the records of one sink group for one kind
// of sink. The publisher binds a PUSH socket per active channel and sends
// every batch of the group to each of the group's channels (so the IPFIX and
// the text exporter both see all records); the N exporter instances of one
// channel connect PULL sockets and ZeroMQ load-balances batches among them.
// Each ZeroMQ message is one serialised metaprobe.v1.RecordBatch.

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "core/config.hpp"
#include "metaprobe/v1/records.pb.h"

namespace metaprobe {

enum class sink_group : uint8_t { clickstream = 0, meta = 1, dns = 2, fullflow = 3 };
inline constexpr int sink_group_count = 4;
inline constexpr std::array<std::string_view, sink_group_count> sink_group_names = {
  "clickstream", "meta", "dns", "fullflow"};

enum class sink_kind : uint8_t { ipfix = 0, text = 1 };
inline constexpr std::array<std::string_view, 2> sink_kind_names = {"ipfix", "text"};

struct channel {
  sink_group group = sink_group::clickstream;
  sink_kind kind = sink_kind::ipfix;
  std::string name() const {
    return std::string(sink_group_names[static_cast<int>(group)]) + "." +
           std::string(sink_kind_names[static_cast<int>(kind)]);
  }
  int index() const { return static_cast<int>(group) * 2 + static_cast<int>(kind); }
};

// Exporter instances of one channel are numbered 0..63 (their control and
// metrics offsets, control/control_endpoints.hpp, leave room for 64).
inline constexpr int max_channel_instances = 64;

// "clickstream.ipfix" -> channel; nullopt if unknown.
std::optional<channel> parse_channel(std::string_view name);

// The group a record belongs to.
sink_group group_of(const v1::Record& rec);
std::optional<sink_group> parse_group(std::string_view name);

// Endpoint of a channel given the configured base (`channel_endpoint`):
//   ipc://PATH             -> ipc://PATH-<group>-<sink>
//   tcp://HOST:PORT        -> tcp://HOST:(PORT + channel index)
std::string channel_endpoint(const std::string& base, const channel& ch);

// The base of a configuration's channels: `channel_endpoint`, with auto
// (the default) resolved to ipc://<run_dir>/channel, so two appliances
// with their own run_dir never share a channel.
std::string channel_base(const config& cfg);

} // namespace metaprobe
