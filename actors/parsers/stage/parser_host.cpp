// SPDX-License-Identifier: Apache-2.0
#include "parsers/stage/parser_host.hpp"

namespace metaprobe {

parser_host::parser_host(const protocol_entry& entry, const parser_options& opts)
  : entry_(entry), opts_(opts) {
}

uint32_t parser_host::info_index(flow_slot& slot, record_batch& out) {
  if (slot.batch_mark != generation_) {
    slot.batch_mark = generation_;
    slot.out_index = static_cast<uint32_t>(out.infos.size());
    out.infos.push_back(slot.info);
  }
  return slot.out_index;
}

void parser_host::collect(flow_slot& slot, record_batch& out) {
  for (auto& rec : scratch_) {
    if (slot.records >= opts_.max_records_per_flow) {
      ++host_counters_.records_limited;
      continue;
    }
    ++slot.records;
    ++counters_.records;
    out.items.push_back({std::move(rec), info_index(slot, out)});
  }
  scratch_.clear();
}

void parser_host::check_state(flow_slot& slot, parser_state st) {
  if (st == parser_state::violated && !slot.detached) {
    slot.detached = true;
    ++host_counters_.flows_detached;
    ++counters_.violations;
  }
}

void parser_host::process(const stream_batch& in, record_batch& out) {
  ++generation_;
  for (const auto& ev : in.events) {
    if (ev.kind == stream_event_kind::open) {
      auto& slot = flows_[ev.flow_id];
      slot = flow_slot{};
      slot.info = in.infos[ev.info_index];
      if (slot.info.l4_proto == 6 && entry_.make_stream)
        slot.stream = entry_.make_stream(opts_, counters_);
      else if (slot.info.l4_proto != 6 && entry_.make_datagram)
        slot.datagram = entry_.make_datagram(opts_, counters_);
      else
        slot.detached = true; // protocol has no parser for this transport
      ++host_counters_.flows_opened;
      continue;
    }
    auto it = flows_.find(ev.flow_id);
    if (it == flows_.end()) {
      ++host_counters_.events_unknown_flow;
      continue;
    }
    auto& slot = it->second;
    switch (ev.kind) {
      case stream_event_kind::data:
        if (!slot.detached && slot.stream) {
          slot.stream->deliver(ev.dir, in.data_of(ev), ev.len, ev.ts_ns, ev.seq, scratch_);
          check_state(slot, slot.stream->state());
        }
        break;
      case stream_event_kind::gap:
        ++counters_.gaps;
        if (!slot.detached && slot.stream)
          slot.stream->gap(ev.dir, ev.len);
        break;
      case stream_event_kind::datagram:
        if (!slot.detached && slot.datagram) {
          slot.datagram->deliver(ev.dir, in.data_of(ev), ev.len, ev.ts_ns, scratch_);
          check_state(slot, slot.datagram->state());
        }
        break;
      case stream_event_kind::close: {
        flow_summary summary = in.summaries[ev.info_index];
        if (summary.reason == flow_end_reason::active) {
          // Active timeout: counters are reported, the flow goes on.
          if (slot.stream)
            summary.host = slot.stream->flow_host();
          else if (slot.datagram)
            summary.host = slot.datagram->flow_host();
          out.closed.push_back(std::move(summary));
          break;
        }
        if (slot.stream) {
          if (!slot.detached)
            slot.stream->finish(ev.ts_ns, scratch_);
          summary.host = slot.stream->flow_host();
        } else if (slot.datagram) {
          summary.host = slot.datagram->flow_host();
        }
        collect(slot, out);
        out.closed.push_back(std::move(summary));
        ++host_counters_.flows_closed;
        flows_.erase(it);
        continue;
      }
      case stream_event_kind::handover:
        // The flow goes on under another parser: emit what is pending, no
        // summary (the new parser reports the flow when it ends).
        if (slot.stream && !slot.detached)
          slot.stream->finish(ev.ts_ns, scratch_);
        collect(slot, out);
        ++host_counters_.flows_handed_over;
        flows_.erase(it);
        continue;
      case stream_event_kind::open:
        break;
    }
    collect(slot, out);
  }
  for (const auto& s : in.relayed)
    out.closed.push_back(s);
}

} // namespace metaprobe
