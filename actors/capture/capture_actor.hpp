// SPDX-License-Identifier: Apache-2.0
#pragma once
#include <atomic>
#include <memory>
#include <vector>

#include "capture/pcap_source.hpp"
#include "core/actors.hpp"
#include "core/stage_stats.hpp"

namespace metaprobe {

struct capture_options {
  size_t batch_size = 256;        // packets per burst
  int64_t max_in_flight = 64;     // batches in the pipeline before capture holds back
  bool live = false;              // live input drops when the pipeline is full; files wait
};

// Reads bursts from `source`, shards them by address-pair hash over `shards` and
// sends one batch per shard. Runs in its own thread. Ends on end of input or
// when `stop` becomes true: then it sends flush_atom to every shard.
capture_actor spawn_capture(caf::actor_system& sys, capture_options opts,
                            std::unique_ptr<pcap_source> source,
                            std::vector<classifier_actor> shards, pipeline_gauge_ptr gauge,
                            std::shared_ptr<stage_stats> stats, const std::atomic<bool>* stop);

} // namespace metaprobe
