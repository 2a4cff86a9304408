// SPDX-License-Identifier: Apache-2.0
#pragma once
#include <vector>

#include "classifier/classifier_core.hpp"
#include "core/actors.hpp"
#include "core/stage_stats.hpp"

namespace metaprobe {

// One classifier shard. `parsers` is indexed by app_protocol value (an
// invalid handle where the protocol has no parser). On flush_atom it ends
// every flow, forwards what is left, and passes flush_atom on to its
// parsers and the correlator.
classifier_actor spawn_classifier(caf::actor_system& sys, classifier_options opts, int shard,
                                  uint64_t boot_seed, std::vector<parser_actor> parsers,
                                  correlator_actor corr, pipeline_gauge_ptr gauge,
                                  std::shared_ptr<stage_stats> stats);

} // namespace metaprobe
