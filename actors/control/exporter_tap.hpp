// SPDX-License-Identifier: Apache-2.0
#pragma once
// Makes a running metaprobe-exporter inspectable: publish() is called on
// every tick of the exporter loop (exporter_options::on_tick, every 100 ms)
// and finish() after the loop; both copy the exporter's counters into a
// stage_stats (exporter::publish_counters) and its actor entry. The loop
// is single-threaded, so every read of the exporter's and sinks' counters
// happens on the loop's own thread; the control endpoint and /metrics read
// the thread-safe copy.
//
// Ownership: the tap borrows the exporter (set by attach() before run())
// and the stats.

#include <memory>
#include <string>

#include "core/stage_stats.hpp"
#include "exporters/exporter.hpp"

namespace metaprobe {

class exporter_tap {
public:
  exporter_tap(stage_stats& stats, actor_entry_ptr entry)
    : stats_(stats), entry_(std::move(entry)) {}

  void attach(const exporter* ex) { ex_ = ex; }

  void finish() {
    publish();
    if (entry_)
      entry_->set_finished();
  }

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
      drops += exporter::dropped_by(*s);
    entry_->set_drops(drops);
  }

private:
  stage_stats& stats_;
  actor_entry_ptr entry_;
  const exporter* ex_ = nullptr;
  uint64_t seen_batches_ = 0;
  uint64_t seen_records_ = 0;
};

} // namespace metaprobe
