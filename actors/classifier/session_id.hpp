// SPDX-License-Identifier: Apache-2.0
#pragma once
// SESSION_ID generator: one per classifier shard (worker).
//
// Layout of an id (most significant bit first):
//
//   | 63 ............ 32 | 31 ...... 22 | 21 ............ 0 |
//   |   epoch (32 bits)  | worker (10)  |   counter (22)    |
//
// - epoch: starts at the low 32 bits of `boot_seed` (callers pass the process
//   start time in seconds since the Unix epoch, so two runs of the appliance
//   start from different epochs) and is incremented by one every time the
//   counter wraps.
// - worker: the shard number, masked to 10 bits (workers 0..1023; two shards
//   whose numbers are equal modulo 1024 would collide, metaprobe's `workers`
//   key allows far fewer).
// - counter: 0 .. 2^22-1 (4,194,304 ids per epoch step).
//
// Uniqueness: ids of different workers never collide (the worker field
// differs). Ids of one worker never collide within a run (epoch:counter is a
// strictly increasing 54-bit value; it wraps only after 2^54 ids). Across
// restarts ids stay unique as long as a run did not hand out more than 2^22
// ids per second of its lifetime on average (it would then have advanced its
// epoch past the next run's start second); at 4 million new flows per second
// per worker that does not happen in practice. The epoch wraps after 2^32
// steps (year 2106 for a seconds-based seed), and ids then start over.
// The value 0 is never returned (0 means "no session id").
//
// Threading: not thread-safe; each shard owns its generator.

#include <cstdint>

namespace metaprobe {

class session_id_generator {
public:
  static constexpr unsigned counter_bits = 22;
  static constexpr unsigned worker_bits = 10;
  static constexpr uint64_t counter_mask = (uint64_t{1} << counter_bits) - 1;
  static constexpr uint64_t worker_mask = (uint64_t{1} << worker_bits) - 1;

  session_id_generator(uint16_t worker, uint64_t boot_seed);

  // The next id (never 0).
  uint64_t next();

  uint16_t worker() const { return static_cast<uint16_t>(worker_); }
  // Epoch part the next id will carry.
  uint32_t epoch() const { return epoch_; }

  // Field extraction, for tests and diagnostics.
  static uint32_t epoch_of(uint64_t id) { return static_cast<uint32_t>(id >> 32); }
  static uint16_t worker_of(uint64_t id) {
    return static_cast<uint16_t>((id >> counter_bits) & worker_mask);
  }
  static uint32_t counter_of(uint64_t id) { return static_cast<uint32_t>(id & counter_mask); }

private:
  uint64_t worker_;
  uint32_t epoch_;
  uint32_t counter_ = 0;
};

} // namespace metaprobe
