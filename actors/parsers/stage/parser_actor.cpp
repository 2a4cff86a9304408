// SPDX-License-Identifier: Apache-2.0
#include "parsers/stage/parser_actor.hpp"

#include "parsers/stage/parser_host.hpp"

namespace metaprobe {

namespace {

struct parser_actor_state {
  static inline const char* name = "parser";
  std::unique_ptr<parser_host> host;
  correlator_actor corr;
  pipeline_gauge_ptr gauge;
  std::shared_ptr<stage_stats> stats;
  actor_entry_ptr entry;
  report_pacer pacer;
  std::string prefix;
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;

  void report() {
    const auto& c = host->counters();
    const auto& h = host->host_counters();
    stats->set(prefix + "messages", c.messages);
    stats->set(prefix + "records", c.records);
    stats->set(prefix + "violations", c.violations);
    stats->set(prefix + "gaps", c.gaps);
    stats->set(prefix + "limit_hits", c.limit_hits);
    stats->set(prefix + "truncated_fields", c.truncated_fields);
    stats->set(prefix + "bytes_scanned", c.bytes_scanned);
    const auto& names = host->entry().extra_counters;
    for (size_t i = 0; i < names.size() && i < parser_counters::max_extra; ++i)
      stats->set(prefix + names[i], c.extra[i]);
    stats->set(prefix + "flows_opened", h.flows_opened);
    stats->set(prefix + "flows_detached", h.flows_detached);
    for (size_t k = 0; k < handover_kind_count; ++k)
      stats->set(prefix + "handover." + to_string(static_cast<handover_kind>(k)),
                 h.handovers[k]);
    stats->set(prefix + "redetected", h.redetected);
    stats->set(prefix + "redetect_overflow", h.redetect_overflow);
    stats->set(prefix + "redetect_gaps", h.redetect_gaps);
    stats->set(prefix + "redetect_ended", h.redetect_ended);
    stats->set(prefix + "redetect_bytes", h.redetect_bytes);
    stats->set(prefix + "layers_exceeded", h.layers_exceeded);
    stats->set(prefix + "memory_left", h.memory_left);
    stats->set(prefix + "memory.charged_bytes",
               static_cast<uint64_t>(std::max<int64_t>(host->charged_bytes(), 0)));
    for (const auto& [chain, n] : host->chains())
      stats->set(prefix + "chain." + chain, n);
    for (const protocol_entry& e : protocol_registry()) {
      const parser_counters& ic = host->inner_counters(e.id);
      if (ic.messages == 0 && ic.records == 0 && ic.violations == 0)
        continue;
      const std::string ip = prefix + "inner." + e.name + ".";
      stats->set(ip + "messages", ic.messages);
      stats->set(ip + "records", ic.records);
      stats->set(ip + "violations", ic.violations);
      stats->set(ip + "gaps", ic.gaps);
      stats->set(ip + "limit_hits", ic.limit_hits);
      stats->set(ip + "truncated_fields", ic.truncated_fields);
      stats->set(ip + "bytes_scanned", ic.bytes_scanned);
      for (size_t i = 0; i < e.extra_counters.size() && i < parser_counters::max_extra; ++i)
        stats->set(ip + e.extra_counters[i], ic.extra[i]);
    }
    stats->set(prefix + "active_flows", host->active_flows());
    stats->set(prefix + "messages_in", messages_in);
    stats->set(prefix + "messages_out", messages_out);
  }
};

parser_actor::behavior_type
parser_fn(parser_actor::stateful_pointer<parser_actor_state> self, const protocol_entry* entry,
          parser_options opts, int shard, correlator_actor corr, pipeline_gauge_ptr gauge,
          std::shared_ptr<stage_stats> stats) {
  auto& st = self->state;
  st.host = std::make_unique<parser_host>(*entry, opts);
  st.corr = std::move(corr);
  st.gauge = std::move(gauge);
  st.stats = std::move(stats);
  st.prefix = std::string("parser.") + entry->name + "." + std::to_string(shard) + ".";
  st.entry = st.stats->actors().add(std::string("parser:") + entry->name, "parser", shard);
  return {
    [self](stream_batch_ptr& in) {
      auto& st = self->state;
      auto out = std::make_shared<record_batch>();
      st.host->process(*in, *out);
      ++st.messages_in;
      if (!out->items.empty() || !out->closed.empty()) {
        st.gauge->in_flight.fetch_add(1, std::memory_order_relaxed);
        ++st.messages_out;
        st.entry->sent();
        self->send(st.corr, std::move(out));
      }
      st.gauge->in_flight.fetch_sub(1, std::memory_order_relaxed);
      note_handled(self, *st.entry);
      if (st.messages_in % 64 == 0 || st.pacer.due())
        st.report();
    },
    [self](flush_atom) {
      auto& st = self->state;
      st.report();
      self->send(st.corr, flush_atom::value);
      st.entry->set_finished();
      self->quit();
    },
  };
}

} // namespace

parser_actor spawn_parser(caf::actor_system& sys, const protocol_entry& entry,
                          parser_options opts, int shard, correlator_actor corr,
                          pipeline_gauge_ptr gauge, std::shared_ptr<stage_stats> stats) {
  return sys.spawn(parser_fn, &entry, opts, shard, std::move(corr), std::move(gauge),
                   std::move(stats));
}

} // namespace metaprobe
