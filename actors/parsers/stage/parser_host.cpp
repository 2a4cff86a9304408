// SPDX-License-Identifier: Apache-2.0
#include "parsers/stage/parser_host.hpp"

namespace metaprobe {

parser_host::parser_host(const protocol_entry& entry, const parser_options& opts,
                         const std::vector<protocol_entry>& protocols)
  : entry_(entry), protocols_(protocols),
    redetect_candidates_(stream_redetector::stream_candidates(protocols)), opts_(opts),
    account_(opts.budget) {
}

void parser_host::recharge(flow_slot& slot) {
  // the slot in its hash-map node, roughly
  const size_t base = sizeof(flow_slot) + 4 * sizeof(void*) + slot.chain.capacity();
  size_t now = base;
  if (slot.stream)
    now += slot.stream->memory_bytes();
  for (const auto& o : slot.outer)
    now += o->memory_bytes();
  if (slot.redetect)
    now += slot.redetect->memory_bytes();
  if (slot.datagram)
    now += slot.datagram->memory_bytes();
  if (now > memory_budget::lean_parser_bytes && !slot.detached &&
      (slot.info.lean || account_.pressure() >= memory_pressure::full)) {
    slot.left_host = flow_host(slot);
    slot.stream.reset();
    slot.outer.clear();
    slot.redetect.reset();
    slot.datagram.reset();
    slot.detached = true;
    ++host_counters_.memory_left;
    if (auto* b = account_.budget())
      b->count(memory_reason::parser_left);
    now = base + slot.left_host.capacity();
  }
  account_.add(static_cast<int64_t>(now) - static_cast<int64_t>(slot.charged));
  slot.charged = now;
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

// ---------------------------------------------------------------- hand-overs

void parser_host::deliver(flow_slot& slot, direction dir, const uint8_t* data, size_t len,
                          uint64_t ts_ns, uint32_t seq, uint64_t gap) {
  if (slot.detached || !slot.stream)
    return;
  if (slot.redetect) {
    std::vector<stream_piece> q(1);
    q[0].dir = dir;
    q[0].seq = seq;
    q[0].ts_ns = ts_ns;
    q[0].gap = gap;
    if (!gap)
      q[0].bytes.assign(reinterpret_cast<const char*>(data), len);
    settle(slot, std::move(q));
    return;
  }
  const bool first = slot.first_data && slot.outer.empty();
  slot.first_data = false;
  if (gap) {
    slot.stream->gap(dir, static_cast<size_t>(gap));
  } else {
    slot.stream->deliver(dir, data, len, ts_ns, seq, scratch_);
    if (first && port_mismatch(slot, dir, data, len, ts_ns, seq))
      return;
  }
  check_state(slot, slot.stream->state());
  if (!slot.detached && slot.stream->handing_over()) {
    std::unique_ptr<stream_handover> h = slot.stream->take_handover();
    if (begin_redetect(slot, h->kind, ts_ns))
      settle(slot, std::move(h->pending));
  }
}

bool parser_host::port_mismatch(flow_slot& slot, direction dir, const uint8_t* data, size_t len,
                                uint64_t ts_ns, uint32_t seq) {
  // Only a parser that found nothing of its own in the bytes, and only a
  // probe of another protocol that accepts them (TLS on port 80).
  // Client bytes only: what a server sends first (a capture that starts
  // mid-flow) may be any body.
  if (dir != direction::client_to_server || slot.stream->state() == parser_state::confirmed ||
      slot.stream->handing_over() || !scratch_.empty())
    return false;
  for (const protocol_entry& e : protocols_) {
    if (e.id == entry_.id || !e.probe || !e.make_stream || !e.probe(data, len, dir))
      continue;
    std::vector<stream_piece> q(1);
    q[0].dir = dir;
    q[0].seq = seq;
    q[0].ts_ns = ts_ns;
    q[0].bytes.assign(reinterpret_cast<const char*>(data), len);
    slot.detached = false; // the port's parser may have given up on them
    if (begin_redetect(slot, handover_kind::port, ts_ns))
      settle(slot, std::move(q));
    return true;
  }
  return false;
}

bool parser_host::begin_redetect(flow_slot& slot, handover_kind kind, uint64_t ts_ns) {
  ++host_counters_.handovers[static_cast<size_t>(kind) % handover_kind_count];
  if (slot.outer.size() + 1 >= max_layers) {
    ++host_counters_.layers_exceeded;
    slot.detached = true;
    return false;
  }
  // The old parser has nothing more to say about this stream.
  slot.stream->finish(ts_ns, scratch_);
  if (slot.chain.empty())
    slot.chain = entry_.name;
  slot.redetect = std::make_unique<stream_redetector>(redetect_candidates_, max_redetect_bytes);
  return true;
}

void parser_host::settle(flow_slot& slot, std::vector<stream_piece> queue) {
  size_t next = 0; // queue[next...] still to place, in order
  while (!slot.detached) {
    if (slot.redetect) {
      while (next < queue.size() &&
             slot.redetect->state() == stream_redetector::verdict::pending) {
        host_counters_.redetect_bytes += queue[next].bytes.size();
        slot.redetect->add(std::move(queue[next++]));
      }
      const stream_redetector::verdict v = slot.redetect->state();
      if (v == stream_redetector::verdict::pending)
        return;
      if (v == stream_redetector::verdict::undetected) {
        switch (slot.redetect->reason()) {
        case stream_redetector::give_up::overflow: ++host_counters_.redetect_overflow; break;
        case stream_redetector::give_up::gaps: ++host_counters_.redetect_gaps; break;
        default: ++host_counters_.redetect_ended; break;
        }
        slot.chain += ">unknown";
        slot.redetect.reset();
        slot.detached = true; // the rest of the stream is not parsed (counted)
        return;
      }
      // Found: a parser of that protocol takes what was held, then the rest.
      const protocol_entry& e = *slot.redetect->detected();
      std::vector<stream_piece> held = slot.redetect->take_pieces();
      slot.redetect.reset();
      held.insert(held.end(), std::make_move_iterator(queue.begin() + static_cast<long>(next)),
                  std::make_move_iterator(queue.end()));
      queue = std::move(held);
      next = 0;
      ++host_counters_.redetected;
      slot.chain += ">";
      slot.chain += e.name;
      slot.inner = e.id;
      slot.outer.push_back(std::move(slot.stream));
      slot.stream =
        e.make_stream(opts_, inner_counters_[static_cast<size_t>(e.id) % inner_counters_.size()]);
      continue;
    }
    if (next >= queue.size())
      return;
    stream_piece& p = queue[next++];
    if (p.gap)
      slot.stream->gap(p.dir, static_cast<size_t>(p.gap));
    else
      slot.stream->deliver(p.dir, reinterpret_cast<const uint8_t*>(p.bytes.data()),
                           p.bytes.size(), p.ts_ns, p.seq, scratch_);
    check_state(slot, slot.stream->state());
    if (!slot.detached && slot.stream->handing_over()) {
      // A hand-over inside what was held (CONNECT inside CONNECT): what the
      // parser kept goes first, then the rest of the queue.
      std::unique_ptr<stream_handover> h = slot.stream->take_handover();
      if (!begin_redetect(slot, h->kind, p.ts_ns))
        return;
      h->pending.insert(h->pending.end(),
                        std::make_move_iterator(queue.begin() + static_cast<long>(next)),
                        std::make_move_iterator(queue.end()));
      queue = std::move(h->pending);
      next = 0;
    }
  }
}

std::string parser_host::flow_host(const flow_slot& slot) const {
  if (!slot.left_host.empty())
    return slot.left_host;
  if (slot.datagram)
    return slot.datagram->flow_host();
  if (slot.stream) {
    std::string h = slot.stream->flow_host();
    if (!h.empty())
      return h;
  }
  for (auto it = slot.outer.rbegin(); it != slot.outer.rend(); ++it) {
    std::string h = (*it)->flow_host();
    if (!h.empty())
      return h;
  }
  return {};
}

void parser_host::end_flow(flow_slot& slot, flow_summary& summary, uint64_t ts_ns) {
  if (slot.redetect && !slot.detached) {
    slot.redetect->finish();
    settle(slot, {});
  }
  if (slot.stream && !slot.detached)
    slot.stream->finish(ts_ns, scratch_);
  summary.host = flow_host(slot);
  if (slot.inner != app_protocol::unknown)
    summary.info.proto = slot.inner;
  if (!slot.chain.empty())
    ++chains_[slot.chain];
}

// ---------------------------------------------------------------- events

void parser_host::process(const stream_batch& in, record_batch& out) {
  ++generation_;
  for (const auto& ev : in.events) {
    if (ev.kind == stream_event_kind::open) {
      auto& slot = flows_[ev.flow_id];
      account_.add(-static_cast<int64_t>(slot.charged));
      slot = flow_slot{};
      slot.info = in.infos[ev.info_index];
      if (slot.info.l4_proto == 6 && entry_.make_stream)
        slot.stream = entry_.make_stream(opts_, counters_);
      else if (slot.info.l4_proto != 6 && entry_.make_datagram)
        slot.datagram = entry_.make_datagram(opts_, counters_);
      else
        slot.detached = true; // protocol has no parser for this transport
      ++host_counters_.flows_opened;
      if (account_.budget())
        recharge(slot);
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
        deliver(slot, ev.dir, in.data_of(ev), ev.len, ev.ts_ns, ev.seq, 0);
        break;
      case stream_event_kind::gap:
        ++counters_.gaps;
        deliver(slot, ev.dir, nullptr, 0, ev.ts_ns, ev.seq, ev.len ? ev.len : 1);
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
          summary.host = flow_host(slot);
          if (slot.inner != app_protocol::unknown)
            summary.info.proto = slot.inner;
          out.closed.push_back(std::move(summary));
          break;
        }
        end_flow(slot, summary, ev.ts_ns);
        collect(slot, out);
        out.closed.push_back(std::move(summary));
        ++host_counters_.flows_closed;
        account_.add(-static_cast<int64_t>(slot.charged));
        flows_.erase(it);
        continue;
      }
      case stream_event_kind::open:
        break;
    }
    collect(slot, out);
    if (account_.budget())
      recharge(slot);
  }
  for (const auto& s : in.relayed)
    out.closed.push_back(s);
  account_.flush();
}

} // namespace metaprobe
