// SPDX-License-Identifier: Apache-2.0
#include "classifier/classifier_actor.hpp"

namespace metaprobe {

namespace {

struct classifier_state {
  static inline const char* name = "classifier";
  std::unique_ptr<classifier_core> core;
  classifier_output out;
  std::vector<parser_actor> parsers;
  correlator_actor corr;
  pipeline_gauge_ptr gauge;
  std::shared_ptr<stage_stats> stats;
  actor_entry_ptr entry;
  report_pacer pacer;
  std::string prefix;
  uint64_t last_ts_ns = 0;
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;

  template <class Self>
  void emit(Self* self) {
    for (size_t p = 0; p < out.per_proto.size() && p < parsers.size(); ++p) {
      auto& sb = out.per_proto[p];
      if (sb.empty() || !parsers[p])
        continue;
      auto msg = std::make_shared<stream_batch>();
      std::swap(*msg, sb);
      sb.proto = msg->proto;
      // The next batch of this protocol starts with room for as many events
      // as this one: one allocation instead of a doubling series.
      sb.events.reserve(msg->events.size());
      gauge->in_flight.fetch_add(1, std::memory_order_relaxed);
      ++messages_out;
      entry->sent();
      self->send(parsers[p], std::move(msg));
    }
    if (!out.flows.empty()) {
      auto msg = std::make_shared<flow_batch>();
      std::swap(*msg, out.flows);
      gauge->in_flight.fetch_add(1, std::memory_order_relaxed);
      ++messages_out;
      entry->sent();
      self->send(corr, std::move(msg));
    }
    out.clear();
  }

  void report() {
    core->publish_counters(*stats, prefix);
    stats->set(prefix + "messages_in", messages_in);
    stats->set(prefix + "messages_out", messages_out);
  }
};

classifier_actor::behavior_type
classifier_fn(classifier_actor::stateful_pointer<classifier_state> self, classifier_options opts,
              int shard, uint64_t boot_seed, std::vector<parser_actor> parsers,
              correlator_actor corr, pipeline_gauge_ptr gauge, std::shared_ptr<stage_stats> stats) {
  auto& st = self->state;
  st.core = std::make_unique<classifier_core>(
    opts, static_cast<uint16_t>(shard),
    session_id_generator(static_cast<uint16_t>(shard), boot_seed));
  st.parsers = std::move(parsers);
  st.corr = std::move(corr);
  st.gauge = std::move(gauge);
  st.stats = std::move(stats);
  st.prefix = "classifier." + std::to_string(shard) + ".";
  st.entry = st.stats->actors().add("classifier", "classifier", shard);
  return {
    [self](packet_batch_ptr& batch) {
      auto& st = self->state;
      if (!batch->packets.empty())
        st.last_ts_ns = std::max(st.last_ts_ns, batch->packets.back().ts_ns);
      st.core->process(batch, st.out);
      ++st.messages_in;
      st.emit(self);
      st.gauge->in_flight.fetch_sub(1, std::memory_order_relaxed);
      note_handled(self, *st.entry);
      if (st.messages_in % 256 == 0 || st.pacer.due())
        st.report();
    },
    [self](tick_atom, uint64_t now_ns) {
      auto& st = self->state;
      st.last_ts_ns = std::max(st.last_ts_ns, now_ns);
      st.core->advance_time(now_ns, st.out);
      st.emit(self);
    },
    [self](flush_atom) {
      auto& st = self->state;
      st.core->flush_all(st.last_ts_ns, st.out);
      st.emit(self);
      st.report();
      for (auto& p : st.parsers)
        if (p)
          self->send(p, flush_atom::value);
      self->send(st.corr, flush_atom::value);
      st.entry->set_finished();
      self->quit();
    },
  };
}

} // namespace

classifier_actor spawn_classifier(caf::actor_system& sys, classifier_options opts, int shard,
                                  uint64_t boot_seed, std::vector<parser_actor> parsers,
                                  correlator_actor corr, pipeline_gauge_ptr gauge,
                                  std::shared_ptr<stage_stats> stats) {
  return sys.spawn(classifier_fn, opts, shard, boot_seed, std::move(parsers), std::move(corr),
                   std::move(gauge), std::move(stats));
}

} // namespace metaprobe
