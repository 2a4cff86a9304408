// SPDX-License-Identifier: Apache-2.0
#include "capture/capture_actor.hpp"

#include <chrono>
#include <map>
#include <string>

#include "capture/decoder.hpp"
#include "core/decap_config.hpp"

#include <spdlog/spdlog.h>

namespace metaprobe {

namespace {

// What the readers of one input share: the last one to finish flushes the
// shards (every reader has stopped sending by then, so the flush follows
// every batch in each shard's mailbox).
struct capture_group {
  std::atomic<size_t> running{0};
  size_t sources = 0;
};

struct capture_state {
  static inline const char* name = "capture";
  capture_options opts;
  std::shared_ptr<packet_source> source;
  size_t index = 0;                       // this reader's source
  std::shared_ptr<capture_group> group;
  std::vector<classifier_actor> shards;
  pipeline_gauge_ptr gauge;
  std::shared_ptr<stage_stats> stats;
  const std::atomic<bool>* stop = nullptr;
  actor_entry_ptr entry;
  report_pacer pacer;
  uint64_t batches = 0;
  uint64_t packets = 0;
  uint64_t dropped_packets = 0;   // live input, pipeline full
  uint64_t backpressure_waits = 0;
  bool finished = false;
  std::map<std::string, uint64_t> reported; // last value put, per counter

  // "capture.<name>" is the sum over all readers of the input (each adds
  // what it counted since its last report); with several sources each one
  // also has "capture.<index>.<name>".
  void put(const std::string& name, uint64_t value) {
    uint64_t& last = reported[name];
    if (value != last)
      stats->add("capture." + name, value - last);
    last = value;
    if (group->sources > 1)
      stats->set("capture." + std::to_string(index) + "." + name, value);
  }

  void report() {
    put("batches", batches);
    put("packets", packets);
    put("dropped_packets", dropped_packets);
    put("backpressure_waits", backpressure_waits);
    const auto& c = source->counters();
    put("source.packets", c.packets);
    put("source.bytes", c.bytes);
    put("source.wire_bytes", c.wire_bytes);
    put("source.truncated_records", c.truncated_records);
    put("source.read_errors", c.read_errors);
    for (size_t i = 0; i < c.status.size(); ++i)
      put(std::string("decode.") + to_string(static_cast<decode_status>(i)), c.status[i]);
    for (size_t i = 0; i < c.decap.size(); ++i)
      put(std::string("decap.") + to_string(static_cast<decap_kind>(i)), c.decap[i]);
    put("decap.depth_exceeded", c.decap_depth_exceeded);
    put("decap.gtpu_control", c.decap_gtpu_control);
    put("decap.l2tp_control", c.decap_l2tp_control);
    put("decap.bad_inner", c.decap_bad_inner);
    source_live_stats live;
    if (source->live_stats(live)) {
      put("kernel.received", live.received);
      put("kernel.dropped", live.dropped);
      put("kernel.if_dropped", live.if_dropped);
      put("kernel.ring_freezes", live.ring_freezes);
    }
  }

  template <class Self>
  void send_batch(Self* self, std::shared_ptr<packet_batch> batch) {
    if (shards.size() == 1) {
      gauge->in_flight.fetch_add(1, std::memory_order_relaxed);
      entry->sent();
      self->send(shards[0], packet_batch_ptr(std::move(batch)));
      return;
    }
    const size_t n = shards.size();
    std::vector<std::shared_ptr<packet_batch>> parts(n);
    for (const auto& p : batch->packets) {
      // Shard by the address pair only (the outermost one of a tunnel): the
      // fragments of a datagram carry no ports nor inner addresses, and its
      // reassembled packet must reach the shard that holds the rest of its
      // flow.
      size_t s = shard_hash_of(p) % n;
      if (!parts[s]) {
        parts[s] = std::make_shared<packet_batch>();
        parts[s]->owner = batch;
        parts[s]->packets.reserve(batch->packets.size() / n + 8);
      }
      parts[s]->packets.push_back(p);
    }
    for (size_t s = 0; s < n; ++s) {
      if (!parts[s])
        continue;
      gauge->in_flight.fetch_add(1, std::memory_order_relaxed);
      entry->sent();
      self->send(shards[s], packet_batch_ptr(std::move(parts[s])));
    }
  }

  template <class Self>
  void finish(Self* self) {
    if (finished)
      return;
    finished = true;
    report();
    if (group->running.fetch_sub(1) == 1)
      for (auto& s : shards)
        self->send(s, flush_atom::value);
    entry->set_finished();
    self->quit();
  }
};

capture_actor::behavior_type
capture_fn(capture_actor::stateful_pointer<capture_state> self, capture_options opts,
           std::shared_ptr<packet_source> source, size_t index,
           std::shared_ptr<capture_group> group, std::vector<classifier_actor> shards,
           pipeline_gauge_ptr gauge, std::shared_ptr<stage_stats> stats,
           const std::atomic<bool>* stop) {
  auto& st = self->state;
  st.opts = opts;
  st.source = std::move(source);
  st.index = index;
  st.group = std::move(group);
  st.shards = std::move(shards);
  st.gauge = std::move(gauge);
  st.stats = std::move(stats);
  st.stop = stop;
  // messages in: bursts read from the input; out: batches sent to shards
  st.entry = st.group->sources > 1
                ? st.stats->actors().add("capture." + std::to_string(index), "capture",
                                         static_cast<int>(index))
                : st.stats->actors().add("capture", "capture");
  return {
    [self](run_atom) {
      auto& st = self->state;
      if ((st.stop && st.stop->load()) || st.source->eof()) {
        st.finish(self);
        return;
      }
      bool full = st.gauge->in_flight.load(std::memory_order_relaxed) >= st.opts.max_in_flight;
      if (full && !st.opts.live) {
        ++st.backpressure_waits;
        self->delayed_send(self, std::chrono::microseconds(200), run_atom::value);
        return;
      }
      auto batch = std::make_shared<packet_batch>();
      long n = static_cast<long>(st.source->next_batch(*batch, st.opts.batch_size));
      if (n < 0) {
        spdlog::error("capture: read error: {}", st.source->error());
        st.entry->set_error("read error: " + st.source->error());
        st.finish(self);
        return;
      }
      if (n == 0) {
        if (st.source->eof()) {
          st.finish(self);
          return;
        }
        // live input without packets: let the classifiers expire flows
        auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
        for (auto& s : st.shards)
          self->send(s, tick_atom::value, static_cast<uint64_t>(now));
        self->send(self, run_atom::value);
        return;
      }
      st.packets += static_cast<uint64_t>(n);
      note_handled(self, *st.entry);
      if (full) {
        st.dropped_packets += static_cast<uint64_t>(n); // live input: never wait
        st.entry->set_drops(st.dropped_packets);
      } else {
        ++st.batches;
        st.send_batch(self, std::move(batch));
      }
      if (st.batches % 256 == 0 || st.pacer.due())
        st.report();
      self->send(self, run_atom::value);
    },
  };
}

} // namespace

std::vector<capture_actor> spawn_capture(caf::actor_system& sys, capture_options opts,
                                         std::vector<std::unique_ptr<packet_source>> sources,
                                         std::vector<classifier_actor> shards,
                                         pipeline_gauge_ptr gauge,
                                         std::shared_ptr<stage_stats> stats,
                                         const std::atomic<bool>* stop) {
  auto group = std::make_shared<capture_group>();
  group->sources = sources.size();
  group->running = sources.size();
  std::vector<capture_actor> out;
  for (size_t i = 0; i < sources.size(); ++i) {
    std::shared_ptr<packet_source> src(std::move(sources[i]));
    out.push_back(sys.spawn<caf::detached>(capture_fn, opts, std::move(src), i, group, shards,
                                           gauge, stats, stop));
  }
  return out;
}

} // namespace metaprobe
