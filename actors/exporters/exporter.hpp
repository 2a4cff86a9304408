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
//
// Instance isolation: with `producer` set (the appliance passes the id it
// gave its capture), a batch from any other producer is dropped and
// counted (foreign_batches, foreign_records) before anything else looks at
// it: it never reaches the sinks, the sequence and delivery accounting or
// end-of-stream handling. 0 accepts every producer (a standalone exporter;
// CURVE keys then decide who may send).
//
// CURVE (`keys` on): the PULL socket is a CURVE client that accepts only a
// server holding server.key.
//
// Sending cycles (see send_cycles.hpp): every tick period is one cycle;
// its busy time is measured, overruns counted. Every `stats_period` the
// `Statistics on NFLW_export` line goes to `stat_log` (when set; the
// service sets it when dbg_log_mask has bit 0x80), and once more at the
// end of the run for the last, partial period (unless it has no cycle). Records a sink drops
// (skips) make a rate-limited `[NFLW] very long operation` line in
// `alert_log` (when set).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/channels.hpp"
#include "core/event_log.hpp"
#include "core/stage_stats.hpp"
#include "exporters/delivery_state.hpp"
#include "exporters/send_cycles.hpp"
#include "exporters/sink.hpp"
#include "security/curve_keys.hpp"

namespace metaprobe {

struct exporter_options {
  std::string endpoint;             // where the capture publishes this channel
  channel ch;
  int instance = 0;
  int rcvhwm = 1000;
  uint64_t producer = 0;            // accepted producer id; 0: any
  curve_keys keys;                  // off: plain ZeroMQ
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
  // Period of the stat line (netflow_timeout).
  std::chrono::milliseconds stats_period{30000};
  // At most one alert line per sink this often; drops in between are
  // reported by the next line.
  std::chrono::milliseconds alert_interval{1000};
  // Not owned, may be null (no lines); must outlive run().
  event_log* stat_log = nullptr;
  event_log* alert_log = nullptr;
};

struct exporter_counters {
  uint64_t batches = 0;
  uint64_t records = 0;
  uint64_t bad_messages = 0;       // not a RecordBatch
  uint64_t foreign_batches = 0;    // from another producer than `producer`: dropped
  uint64_t foreign_records = 0;    // ... the records they carried
  uint64_t sequence_gaps = 0;      // batches missing from a producer's sequence
  uint64_t upstream_dropped = 0;   // records the publisher reported dropped
  uint64_t end_of_stream = 0;
  uint64_t send_cycles = 0;        // tick periods (sending cycles) ended
  uint64_t send_cycle_overruns = 0; // ... whose busy time exceeded the period
  uint64_t max_send_cycle_us = 0;  // longest busy time of a cycle
  uint64_t stat_lines = 0;         // lines written to the stat log
  uint64_t alert_lines = 0;        // lines written to the alert log
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
  // Records sink `s` dropped so far (its records_dropped counters).
  static uint64_t dropped_by(const sink& s);

  // Handles one serialised RecordBatch (public for tests and fuzzing).
  // Returns true when it was an end-of-stream batch.
  bool handle(const void* data, size_t len);

private:
  // First block of the per-batch protobuf arena (handle()); a batch that
  // needs more gets further blocks from the heap, freed with the batch.
  static constexpr size_t arena_block_bytes = size_t{1} << 20;
  std::vector<char> arena_block_;
  // Records the sinks still hold (the most any one holds).
  uint64_t held() const;
  // Records dropped by the worst of the sinks (records_dropped).
  uint64_t sink_dropped() const;
  // A cycle ended with `busy` time of work at `now`: counts it, writes the
  // alert lines due and, when the period is over, the stat line.
  void end_cycle(std::chrono::microseconds busy, std::chrono::steady_clock::time_point now);
  // End of run: the last partial period's stat line, waiting alerts.
  void finish_cycles(std::chrono::steady_clock::time_point now);
  void write_stat_line(std::chrono::steady_clock::time_point now);
  void write_alert(const std::string& text);

  exporter_options opts_;
  std::vector<std::unique_ptr<sink>> sinks_;
  exporter_counters counters_;
  uint64_t producer_ = 0;
  uint64_t last_sequence_ = 0;
  send_cycle_stats cycles_;
  drop_alerts alerts_;
  drop_alerts::cycle last_cycle_;
};

} // namespace metaprobe
