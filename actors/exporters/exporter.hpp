// SPDX-License-Identifier: Apache-2.0
#pragma once
// The main loop of one metaprobe-exporter instance: pulls RecordBatch
// messages of one channel from metaprobe-capture (ZeroMQ PULL, connecting
// to the endpoint in core/channels.hpp), hands every record to its sinks,
// ticks them, and finishes on end of stream or on a stop request.
//
// Loss accounting: gaps in a producer's batch sequence and the publisher's
// reported `dropped_records` are counted, so what was lost upstream shows in
// this process's counters and final log line.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/channels.hpp"
#include "core/stage_stats.hpp"
#include "exporters/delivery_state.hpp"
#include "exporters/sink.hpp"

namespace metaprobe {

struct exporter_options {
  std::string endpoint;             // where the capture publishes this channel
  channel ch;
  int instance = 0;
  int rcvhwm = 1000;
  std::chrono::milliseconds tick{100};
  // After a stop request, keep reading for at most this long while data
  // still arrives, so nothing queued is lost.
  std::chrono::milliseconds drain{500};
  // Delivery state of this instance (loss across a crash); may be null.
  // Not owned: outlives the exporter.
  delivery_state* delivery = nullptr;
  // Called at every tick with the sinks; may rebuild some of them (SIGHUP
  // reload). May be empty.
  std::function<void(std::vector<std::unique_ptr<sink>>&)> on_tick;
};

struct exporter_counters {
  uint64_t batches = 0;
  uint64_t records = 0;
  uint64_t bad_messages = 0;       // not a RecordBatch
  uint64_t sequence_gaps = 0;      // batches missing from a producer's sequence
  uint64_t upstream_dropped = 0;   // records the publisher reported dropped
  uint64_t end_of_stream = 0;
};

class exporter {
public:
  exporter(exporter_options opts, std::vector<std::unique_ptr<sink>> sinks);
  ~exporter();
  // Runs until end of stream (returns true) or until `stop` and drained
  // (returns true). Returns false if the endpoint cannot be used.
  bool run(const std::atomic<bool>& stop, std::string& error);

  const exporter_counters& counters() const { return counters_; }
  const std::vector<std::unique_ptr<sink>>& sinks() const { return sinks_; }
  void publish_counters(stage_stats& stats) const;

  // Handles one serialised RecordBatch (public for tests and fuzzing).
  // Returns true when it was an end-of-stream batch.
  bool handle(const void* data, size_t len);

private:
  // Records the sinks still hold (the most any one holds).
  uint64_t held() const;

  exporter_options opts_;
  std::vector<std::unique_ptr<sink>> sinks_;
  exporter_counters counters_;
  uint64_t producer_ = 0;
  uint64_t last_sequence_ = 0;
};

} // namespace metaprobe
