// SPDX-License-Identifier: Apache-2.0
#pragma once
#include <memory>

#include "core/actors.hpp"
#include "core/stage_stats.hpp"
#include "publisher/publisher.hpp"

namespace metaprobe {

// Runs in its own thread (a ZeroMQ send may wait on file input). On
// flush_atom it finishes the channels and sends done_atom to `waiter`.
// Once a second (and with the counters) it reads the channels' connected
// exporters into `stats` (publisher.<channel>.exporters_connected), so they
// show without traffic too.
publisher_actor spawn_publisher(caf::actor_system& sys, std::shared_ptr<publisher> pub,
                                caf::actor waiter, pipeline_gauge_ptr gauge,
                                std::shared_ptr<stage_stats> stats);

// Writes publisher.<channel>.exporters_connected of every channel of `pub`
// into `stats` (the actor's reports; the pipeline while it waits).
void report_exporters_connected(const publisher& pub, stage_stats& stats);

} // namespace metaprobe
