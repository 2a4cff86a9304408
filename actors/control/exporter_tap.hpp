// SPDX-License-Identifier: Apache-2.0
#pragma once
// Makes a running metaprobe-exporter inspectable without touching its main
// loop: a sink that exports nothing and, on every tick of the loop (every
// 100 ms) and at the final flush, copies the exporter's counters into a
// stage_stats (exporter::publish_counters) and its actor entry. The loop
// is single-threaded, so every read of the exporter's and sinks' counters
// happens on the loop's own thread; the control endpoint and /metrics read
// the thread-safe copy. Cost: one empty virtual call per record.
//
// Ownership: the exporter owns the tap (as one of its sinks); the tap
// borrows the exporter (set by attach() before run()) and the stats.

#include <memory>
#include <string>

#include "core/stage_stats.hpp"
#include "exporters/exporter.hpp"
#include "exporters/sink.hpp"

namespace metaprobe {

class exporter_tap : public sink {
public:
  exporter_tap(stage_stats& stats, actor_entry_ptr entry)
    : stats_(stats), entry_(std::move(entry)) {}

  void attach(const exporter* ex) { ex_ = ex; }

  std::string name() const override { return "tap"; }
  void add(const v1::Record&) override {}
  void tick(std::chrono::system_clock::time_point) override { publish(); }
  void flush() override {
    publish();
    if (entry_)
      entry_->set_finished();
  }
  std::vector<sink_counter> counters() const override { return {}; }

private:
  void publish() {
    if (!ex_)
      return;
    ex_->publish_counters(stats_);
    if (!entry_)
      return;
    const auto& c = ex_->counters();
    // messages in: record batches pulled; out: records handed to the sinks
    entry_->received(c.batches - seen_batches_);
    entry_->sent(c.records - seen_records_);
    seen_batches_ = c.batches;
    seen_records_ = c.records;
    uint64_t drops = c.upstream_dropped;
    for (const auto& s : ex_->sinks())
      for (const auto& sc : s->counters())
        if (sc.name == "records_dropped")
          drops += sc.value;
    entry_->set_drops(drops);
  }

  stage_stats& stats_;
  actor_entry_ptr entry_;
  const exporter* ex_ = nullptr;
  uint64_t seen_batches_ = 0;
  uint64_t seen_records_ = 0;
};

} // namespace metaprobe
