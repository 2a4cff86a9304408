// SPDX-License-Identifier: Apache-2.0
#pragma once
// What one exporter instance (channel, instance number) has done with the
// records of its channel, kept in a small memory-mapped file under run_dir
// (`<run_dir>/<group>.<kind>-<instance>.delivery`). The file outlives the
// process: after a SIGKILL the page cache still holds every store made
// before it, so the instance that the appliance starts in its place reads
// what its predecessor received and still held, and counts the loss.
//
// Loss accounting (docs/operations.md "Supervision"):
// - lost_in_process: records a dead incarnation had received but not yet
//   sent or written (its sinks' held_records() at the last update).
// - lost_in_transit: records the publisher sent that no incarnation of this
//   instance received (queued in the dead process's ZeroMQ pipe or socket
//   buffer). Counted from the batch positions (RecordBatch.records_before,
//   dropped_before): the records between the end of the last batch received
//   and the next one, less those the publisher itself dropped. Only with
//   one instance per channel; with several, batches go round-robin and a
//   gap is normal, so the appliance computes the channel's transit loss at
//   the end from every instance's file (received vs. the end-of-stream
//   totals, see channel_loss()).
// - publisher_dropped: records the publisher dropped on the channel (full
//   queue, no exporter connected), from the dropped_before deltas.
// Every number is cumulative over the incarnations of the instance. The
// appliance removes the files when it starts (a fresh run starts at zero).
//
// Exactness: the state is updated after each batch and each tick, with
// plain stores into the mapping. A kill in the middle of handling a batch
// (between a sink sending part of it and the update) counts those records
// as lost although some left; see docs/limits.md.
//
// Threading: one instance is used by the exporter's main loop only. Errors:
// open() throws std::runtime_error naming the file.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "core/channels.hpp"

namespace metaprobe {

// The file's layout (native byte order, one host only).
struct delivery_record {
  static constexpr uint64_t magic_value = 0x316c766464706d6dull; // "mmpddvl1"
  uint64_t magic = 0;
  uint64_t size = 0;            // sizeof(delivery_record) when written
  uint64_t running = 0;         // 1 while an incarnation runs, 0 after a clean exit
  uint64_t incarnations = 0;    // starts of this instance
  uint64_t crashes = 0;         // incarnations that ended without a clean exit
  uint64_t producer_id = 0;     // producer of the last batch received
  uint64_t position_end = 0;    // records_before + records of that batch
  uint64_t dropped_before = 0;  // its dropped_before
  uint64_t received = 0;        // records received
  uint64_t held = 0;            // records the running incarnation holds
  uint64_t lost_in_process = 0; // held by incarnations that died
  uint64_t lost_in_transit = 0; // sent, never received (one instance per channel)
  uint64_t publisher_dropped = 0;
  uint64_t eos_seen = 0;        // an end-of-stream batch arrived
  uint64_t eos_offered = 0;     // its records_before: records offered on the channel
  uint64_t eos_dropped = 0;     // its dropped_before
  uint64_t sink_dropped = 0;    // records its sinks dropped (worst sink), all incarnations
};
static_assert(std::is_trivially_copyable_v<delivery_record>);

class delivery_state {
public:
  // Over a record the caller owns and keeps alive (tests). `single_instance`:
  // the channel has one exporter instance (transit loss counted live).
  delivery_state(delivery_record* rec, bool single_instance);
  // Maps `path` (created, or reinitialised when its layout is not ours).
  static std::unique_ptr<delivery_state> open(const std::string& path, bool single_instance);
  ~delivery_state();
  delivery_state(const delivery_state&) = delete;
  delivery_state& operator=(const delivery_state&) = delete;

  // A new incarnation starts. Returns the records the previous one lost
  // inside its process if it died (0 after a clean exit or on a new file).
  uint64_t start();
  // A batch of `records` arrived (before its records go to the sinks).
  void on_batch(uint64_t producer_id, uint64_t records_before, uint64_t dropped_before,
                uint64_t records, bool end_of_stream);
  // What the sinks hold now (max of their held_records()).
  void on_held(uint64_t held) { rec_->held = held; }
  // What this incarnation's sinks dropped so far (max over its sinks of
  // records_dropped: a full disk, an unreachable collector).
  void on_sink_dropped(uint64_t n) { rec_->sink_dropped = sink_dropped_base_ + n; }
  // The incarnation flushed its sinks and exits normally.
  void clean_exit(uint64_t held);

  const delivery_record& record() const { return *rec_; }

private:
  delivery_record* rec_;
  bool single_;
  uint64_t sink_dropped_base_ = 0; // earlier incarnations' sink_dropped
  void* map_ = nullptr; // set when mapped by open()
};

// `<run_dir>/<group>.<kind>-<instance>.delivery`
std::string delivery_state_path(const std::string& run_dir, const channel& ch, int instance);
// A copy of a file's record; nullopt when it is missing or not ours.
std::optional<delivery_record> read_delivery_state(const std::string& path);

// One channel's loss over all its instances, from their records.
struct channel_loss {
  uint64_t offered = 0;           // from end of stream (0 if none seen)
  uint64_t publisher_dropped = 0; // ditto
  uint64_t received = 0;          // by all instances and incarnations
  uint64_t lost_in_process = 0;
  // offered - dropped - received: sent to an instance that never received
  // it. Valid only when `complete`.
  uint64_t lost_in_transit = 0;
  uint64_t crashes = 0;
  uint64_t sink_dropped = 0;      // dropped by the exporters' sinks (worst sink per instance)
  bool complete = false;          // some instance saw the end of stream
  uint64_t lost() const { return lost_in_process + lost_in_transit; }
};
channel_loss sum_channel_loss(const std::vector<delivery_record>& instances);

} // namespace metaprobe
