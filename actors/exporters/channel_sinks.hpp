// SPDX-License-Identifier: Apache-2.0
#pragma once
// The sinks of one export channel as the configuration gives them: IPFIX
// collectors and file (channel <group>.ipfix) or the group's text files
// (<group>.text). Used by metaprobe-exporter at start and on SIGHUP reload
// (exporters/sink_reload.hpp).

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/channels.hpp"
#include "core/config.hpp"
#include "exporters/sink.hpp"

namespace metaprobe {

// Builds the sinks of `ch` for exporter instance `instance`, except those
// whose name() is in `skip` (nothing of them is opened or created). When
// `names` is given it receives the name of every configured sink, skipped
// ones included. `resume`: this instance restarts after a crash, IPFIX
// files are continued instead of truncated. Throws config_error (e.g. a text directory that cannot be
// created) or std::runtime_error (a collector that does not resolve).
std::vector<std::unique_ptr<sink>> make_channel_sinks(const config& cfg, const channel& ch,
                                                      int instance,
                                                      const std::set<std::string>& skip = {},
                                                      std::set<std::string>* names = nullptr,
                                                      bool resume = false);

} // namespace metaprobe
