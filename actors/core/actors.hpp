// SPDX-License-Identifier: Apache-2.0
#pragma once
// Typed interfaces of every actor of metaprobe-capture, in one place.
//
//   capture --packets--> classifier[shard] --streams--> parser:<proto>[shard]
//        \                      \--flows------\              |
//         \--(end of input)      \             v             v
//                                 `------> correlator <--records
//                                               |
//                                          publisher --ZeroMQ--> exporters
//
// Every message carries a batch (shared_ptr, never copied); the end of a
// finite input travels down the same path as `flush_atom` so it arrives
// after every batch of the sender (CAF keeps per-sender order).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include <caf/all.hpp>

#include "core/actor_registry.hpp"
#include "core/stream.hpp"

namespace metaprobe {

struct export_batches;

using run_atom = caf::atom_constant<caf::atom("run")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using done_atom = caf::atom_constant<caf::atom("done")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;

using stream_batch_ptr = std::shared_ptr<stream_batch>;
using record_batch_ptr = std::shared_ptr<record_batch>;
using flow_batch_ptr = std::shared_ptr<flow_batch>;
using export_batches_ptr = std::shared_ptr<export_batches>;

// Batches in flight between capture and the publisher. Capture reads the
// gauge to apply backpressure (file input) or drop (live input); every stage
// adds when it sends a batch and subtracts when it has handled one.
struct pipeline_gauge {
  std::atomic<int64_t> in_flight{0};
};
using pipeline_gauge_ptr = std::shared_ptr<pipeline_gauge>;

// After an actor handled a message: counts it in the actor's inspection
// entry and records its mailbox depth (read on the actor's own thread; CAF
// 0.17 offers no thread-safe read from outside).
template <class Self>
void note_handled(Self* self, actor_entry& e) {
  e.received();
  e.set_mailbox_depth(self->mailbox().size());
}

// When an actor publishes its stage_stats besides every N batches: at
// least every `interval` while batches arrive, so a slow input still shows
// current counters on the control endpoint. One clock read per batch.
class report_pacer {
public:
  explicit report_pacer(std::chrono::milliseconds interval = std::chrono::milliseconds(500))
    : interval_(interval) {}
  bool due() {
    auto now = std::chrono::steady_clock::now();
    if (now < next_)
      return false;
    next_ = now + interval_;
    return true;
  }

private:
  std::chrono::milliseconds interval_;
  std::chrono::steady_clock::time_point next_{};
};

// Sends end of data to whoever waits for the pipeline (the service main).
// tick_atom: the publisher's own timer (connected exporters, counters).
using publisher_actor = caf::typed_actor<
  caf::reacts_to<export_batches_ptr>,
  caf::reacts_to<tick_atom>,
  caf::reacts_to<flush_atom>>;

using correlator_actor = caf::typed_actor<
  caf::reacts_to<record_batch_ptr>,
  caf::reacts_to<flow_batch_ptr>,
  caf::reacts_to<flush_atom>>;

using parser_actor = caf::typed_actor<
  caf::reacts_to<stream_batch_ptr>,
  caf::reacts_to<flush_atom>>;

using classifier_actor = caf::typed_actor<
  caf::reacts_to<packet_batch_ptr>,
  caf::reacts_to<tick_atom, uint64_t>,
  caf::reacts_to<flush_atom>>;

using capture_actor = caf::typed_actor<
  caf::reacts_to<run_atom>>;

} // namespace metaprobe

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(metaprobe::packet_batch_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(metaprobe::stream_batch_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(metaprobe::record_batch_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(metaprobe::flow_batch_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(metaprobe::export_batches_ptr)
