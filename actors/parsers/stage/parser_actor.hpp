// SPDX-License-Identifier: Apache-2.0
#pragma once
#include "core/actors.hpp"
#include "core/stage_stats.hpp"
#include "parsers/registry.hpp"

namespace metaprobe {

// parser:<proto> of one shard: runs the protocol's parsers over the stream
// batches of its classifier and sends their records to the correlator.
parser_actor spawn_parser(caf::actor_system& sys, const protocol_entry& entry,
                          parser_options opts, int shard, correlator_actor corr,
                          pipeline_gauge_ptr gauge, std::shared_ptr<stage_stats> stats);

} // namespace metaprobe
