// SPDX-License-Identifier: Apache-2.0
#pragma once
#include "core/actors.hpp"
#include "core/stage_stats.hpp"
#include "correlator/correlator.hpp"

namespace metaprobe {

// Forwards export batches to `pub`. Waits for `expected_flushes` flush_atom
// messages (one per classifier and per parser actor) before it flushes the
// publisher.
correlator_actor spawn_correlator(caf::actor_system& sys, correlator_options opts,
                                  publisher_actor pub, int expected_flushes,
                                  pipeline_gauge_ptr gauge, std::shared_ptr<stage_stats> stats);

} // namespace metaprobe
