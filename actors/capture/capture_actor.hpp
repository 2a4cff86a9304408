// SPDX-License-Identifier: Apache-2.0
#pragma once
#include <atomic>
#include <memory>
#include <vector>

#include "capture/packet_source.hpp"
#include "core/actors.hpp"
#include "core/stage_stats.hpp"

namespace metaprobe {

struct capture_options {
  size_t batch_size = 256;        // packets per burst
  int64_t max_in_flight = 64;     // batches in the pipeline before capture holds back
  bool live = false;              // live input drops when the pipeline is full; files wait
};

// One reader per source, each in its own thread: reads bursts, shards them
// by address-pair hash over `shards` and sends one batch per shard. Start
// each with run_atom. A reader ends on the end of its input or when `stop`
// becomes true; the last reader to end sends flush_atom to every shard.
// Counters: "capture.*" summed over the readers, "capture.<i>.*" per source
// when there are several.
std::vector<capture_actor> spawn_capture(caf::actor_system& sys, capture_options opts,
                                         std::vector<std::unique_ptr<packet_source>> sources,
                                         std::vector<classifier_actor> shards,
                                         pipeline_gauge_ptr gauge,
                                         std::shared_ptr<stage_stats> stats,
                                         const std::atomic<bool>* stop);

} // namespace metaprobe
