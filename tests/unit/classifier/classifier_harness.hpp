// SPDX-License-Identifier: Apache-2.0
#pragma once
// A classifier_core over a hand-made protocol registry, fed batches built
// with test_packets.hpp, for the classifier's unit tests.

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "classifier/classifier_core.hpp"
#include "test_packets.hpp"

namespace metaprobe::test {

// Parser factories for registry entries that only need to say "a parser
// exists" (the classifier never calls them).
inline std::unique_ptr<stream_parser> no_stream(const parser_options&, parser_counters&) {
  return nullptr;
}
inline std::unique_ptr<datagram_parser> no_datagram(const parser_options&, parser_counters&) {
  return nullptr;
}

struct classifier_harness {
  std::vector<protocol_entry> reg;
  classifier_options opts;
  std::unique_ptr<classifier_core> core;
  classifier_output out;
  std::vector<packet_batch_ptr> keep; // batches the output still points into
  batch_builder b;
  uint16_t shard;
  uint64_t seed;

  classifier_harness(std::vector<protocol_entry> registry, uint16_t shard_, uint64_t seed_)
    : reg(std::move(registry)), shard(shard_), seed(seed_) {
    opts.max_flows = 64;
  }
  // Built on first use, so a test can change `opts` before.
  classifier_core& c() {
    if (!core)
      core = std::make_unique<classifier_core>(opts, shard, session_id_generator(shard, seed), reg);
    return *core;
  }
  // Processes the packets added to `b` since the last run.
  packet_batch_ptr run() {
    auto batch = b.build();
    keep.push_back(batch);
    c().process(batch, out);
    return batch;
  }
};

} // namespace metaprobe::test
