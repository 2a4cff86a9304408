// SPDX-License-Identifier: Apache-2.0
#pragma once
// SIGHUP reload of a running exporter's sinks. The exporter re-reads its
// configuration; a sink whose identity (name(): transport and collector or
// path) is still configured, and whose settings did not change, is kept as
// it is, with its IPFIX session (templates sent, sequence number, TCP
// connection). Sinks no longer configured are flushed and closed; new ones
// are created. When a setting other than the sink lists changed (for IPFIX
// any other ipfix_* key or *_parse_reply; for text any ajb_* key), every
// sink of the channel is rebuilt. A configuration that does not load keeps
// everything as it was (the caller logs the error).
//
// Threading: called from the exporter's main loop only.

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/channels.hpp"
#include "core/config.hpp"
#include "exporters/sink.hpp"

namespace metaprobe {

// Builds the channel's sinks from `cfg`, leaving out those whose name() is
// in `skip` (kept from before: a file sink must not reopen, i.e. truncate,
// the file its twin is writing), and puts the name of every configured
// sink into `names`. Throws config_error / std::runtime_error. See
// exporters/channel_sinks.hpp.
using sink_factory = std::function<std::vector<std::unique_ptr<sink>>(
  const config& cfg, const std::set<std::string>& skip, std::set<std::string>* names)>;

// Keys of `a` and `b` with different values among those `relevant` accepts.
std::vector<std::string> changed_keys(const config& a, const config& b,
                                      const std::function<bool(const std::string&)>& relevant);

// The keys whose change makes every sink of the channel be rebuilt: the
// settings of the channel's sink kind, except the sink lists themselves.
bool is_sink_setting(const channel& ch, const std::string& key);

struct sink_reload_result {
  size_t kept = 0;
  size_t added = 0;
  size_t removed = 0;
  std::vector<std::string> changed_settings; // non-empty: everything rebuilt
};

// Applies `next` to `sinks` (built from `current`). On an exception from
// the factory the sinks are those of `current` (unchanged, or rebuilt when
// settings changed) and the exception goes up.
sink_reload_result reload_sinks(const channel& ch, const config& current, const config& next,
                                std::vector<std::unique_ptr<sink>>& sinks,
                                const sink_factory& factory);

// "2 sink(s) kept, 1 added, 0 removed" (+ the changed settings).
std::string describe(const sink_reload_result& r);

} // namespace metaprobe
