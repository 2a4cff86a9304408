// SPDX-License-Identifier: Apache-2.0
#include "publisher/publisher_actor.hpp"

#include "correlator/correlator.hpp"

namespace metaprobe {

namespace {

constexpr auto tick_period = std::chrono::seconds(1);

std::string stat_prefix(const channel& ch) {
  return "publisher." + ch.name() + ".";
}

struct publisher_state {
  static inline const char* name = "publisher";
  std::shared_ptr<publisher> pub;
  caf::actor waiter;
  pipeline_gauge_ptr gauge;
  std::shared_ptr<stage_stats> stats;
  actor_entry_ptr entry;
  report_pacer pacer;
  uint64_t batches = 0;

  void report() {
    for (const auto& ch : pub->options().channels) {
      const auto& c = pub->counters(ch);
      const std::string p = stat_prefix(ch);
      stats->set(p + "batches_sent", c.batches_sent);
      stats->set(p + "records_sent", c.records_sent);
      stats->set(p + "batches_dropped", c.batches_dropped);
      stats->set(p + "records_dropped", c.records_dropped);
      stats->set(p + "bytes_sent", c.bytes_sent);
    }
    stats->set("publisher.messages_in", batches);
    if (pub->options().keys.on())
      stats->set("publisher.handshakes_denied", pub->handshakes_denied());
    report_exporters_connected(*pub, *stats);
  }

  // Batches sent and records dropped over every channel, into the entry.
  void note_channels() {
    uint64_t sent = 0, dropped = 0;
    for (const auto& ch : pub->options().channels) {
      const auto& c = pub->counters(ch);
      sent += c.batches_sent;
      dropped += c.records_dropped;
    }
    entry->set_sent_total(sent);
    entry->set_drops(dropped);
  }
};

publisher_actor::behavior_type
publisher_fn(publisher_actor::stateful_pointer<publisher_state> self,
             std::shared_ptr<publisher> pub, caf::actor waiter, pipeline_gauge_ptr gauge,
             std::shared_ptr<stage_stats> stats) {
  auto& st = self->state;
  st.pub = std::move(pub);
  st.waiter = std::move(waiter);
  st.gauge = std::move(gauge);
  st.stats = std::move(stats);
  st.entry = st.stats->actors().add("publisher", "publisher");
  self->delayed_send(self, tick_period, tick_atom::value);
  return {
    [self](export_batches_ptr& batches) {
      auto& st = self->state;
      for (int g = 0; g < sink_group_count; ++g)
        if (!batches->groups[g].empty())
          st.pub->publish(static_cast<sink_group>(g), std::move(batches->groups[g]));
      st.gauge->in_flight.fetch_sub(1, std::memory_order_relaxed);
      st.note_channels();
      note_handled(self, *st.entry);
      if (++st.batches % 64 == 0 || st.pacer.due())
        st.report();
    },
    [self](tick_atom) {
      auto& st = self->state;
      st.pub->poll_events();
      st.report();
      self->delayed_send(self, tick_period, tick_atom::value);
    },
    [self](flush_atom) {
      auto& st = self->state;
      st.pub->finish();
      st.report();
      st.note_channels();
      st.entry->set_finished();
      caf::anon_send(st.waiter, done_atom::value);
      self->quit();
    },
  };
}

} // namespace

void report_exporters_connected(const publisher& pub, stage_stats& stats) {
  for (const auto& ch : pub.options().channels)
    stats.set(stat_prefix(ch) + "exporters_connected", pub.counters(ch).exporters_connected);
}

publisher_actor spawn_publisher(caf::actor_system& sys, std::shared_ptr<publisher> pub,
                                caf::actor waiter, pipeline_gauge_ptr gauge,
                                std::shared_ptr<stage_stats> stats) {
  return sys.spawn<caf::detached>(publisher_fn, std::move(pub), std::move(waiter),
                                  std::move(gauge), std::move(stats));
}

} // namespace metaprobe
