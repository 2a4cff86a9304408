// SPDX-License-Identifier: Apache-2.0
#include "correlator/correlator_actor.hpp"

namespace metaprobe {

namespace {

struct correlator_state {
  static inline const char* name = "correlator";
  std::unique_ptr<correlator> logic;
  publisher_actor pub;
  int expected_flushes = 0;
  int flushes = 0;
  pipeline_gauge_ptr gauge;
  std::shared_ptr<stage_stats> stats;
  actor_entry_ptr entry;
  report_pacer pacer;
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;

  template <class Self>
  void forward(Self* self, export_batches& out) {
    if (out.size() == 0)
      return;
    gauge->in_flight.fetch_add(1, std::memory_order_relaxed);
    ++messages_out;
    entry->sent();
    self->send(pub, std::make_shared<export_batches>(std::move(out)));
  }
  void report() {
    const auto& c = logic->counters();
    stats->set("correlator.records", c.records);
    stats->set("correlator.fullflow_records", c.fullflow_records);
    stats->set("correlator.fullflow_skipped", c.fullflow_skipped);
    stats->set("correlator.raw_records", c.raw_records);
    stats->set("correlator.logins_attached", c.logins_attached);
    const auto& x = logic->expectations().counters();
    stats->set("correlator.expectations_learned", x.learned);
    stats->set("correlator.expectations_matched", x.matched);
    stats->set("correlator.expectations_expired", x.expired);
    stats->set("correlator.expectations_dropped", x.dropped);
    stats->set("correlator.messages_in", messages_in);
    stats->set("correlator.messages_out", messages_out);
  }
};

correlator_actor::behavior_type
correlator_fn(correlator_actor::stateful_pointer<correlator_state> self, correlator_options opts,
              publisher_actor pub, int expected_flushes, pipeline_gauge_ptr gauge,
              std::shared_ptr<stage_stats> stats) {
  auto& st = self->state;
  st.logic = std::make_unique<correlator>(opts);
  st.pub = std::move(pub);
  st.expected_flushes = expected_flushes;
  st.gauge = std::move(gauge);
  st.stats = std::move(stats);
  st.entry = st.stats->actors().add("correlator", "correlator");
  return {
    [self](record_batch_ptr& in) {
      auto& st = self->state;
      export_batches out;
      st.logic->process(std::move(*in), out);
      st.gauge->in_flight.fetch_sub(1, std::memory_order_relaxed);
      ++st.messages_in;
      st.forward(self, out);
      note_handled(self, *st.entry);
      if (st.pacer.due())
        st.report();
    },
    [self](flow_batch_ptr& in) {
      auto& st = self->state;
      export_batches out;
      st.logic->process(std::move(*in), out);
      st.gauge->in_flight.fetch_sub(1, std::memory_order_relaxed);
      ++st.messages_in;
      st.forward(self, out);
      note_handled(self, *st.entry);
      if (st.pacer.due())
        st.report();
    },
    [self](flush_atom) {
      auto& st = self->state;
      if (++st.flushes < st.expected_flushes)
        return;
      st.report();
      self->send(st.pub, flush_atom::value);
      st.entry->set_finished();
      self->quit();
    },
  };
}

} // namespace

correlator_actor spawn_correlator(caf::actor_system& sys, correlator_options opts,
                                  publisher_actor pub, int expected_flushes,
                                  pipeline_gauge_ptr gauge, std::shared_ptr<stage_stats> stats) {
  return sys.spawn(correlator_fn, opts, std::move(pub), expected_flushes, std::move(gauge),
                   std::move(stats));
}

} // namespace metaprobe
