// SPDX-License-Identifier: Apache-2.0
#pragma once
// Checks classifier output for invariants that hold on any input: every
// event belongs to an opened flow, a flow opens once, each TCP direction is
// a contiguous run of data and gaps, summaries are accounted.

#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "classifier/classifier_core.hpp"

namespace metaprobe::test {

struct checker {
  // (flow id, protocol): a flow handed over (STARTTLS) is open at two parsers
  // for a moment, each in its own batch.
  std::set<std::pair<uint64_t, app_protocol>> open_flows;
  std::map<std::tuple<uint64_t, int, int>, uint32_t> next_seq; // (flow, proto, dir) -> seq
  uint64_t summary_packets = 0;
  uint64_t summary_fragments = 0;
  uint64_t final_summaries = 0;
  uint64_t opens = 0;
  uint64_t opens_http = 0;
  uint64_t stream_bytes = 0;
  int errors = 0;

  void summary(const flow_summary& s) {
    for (const auto& d : s.dir) {
      summary_packets += d.packets;
      summary_fragments += d.fragments;
    }
    if (s.reason != flow_end_reason::active)
      ++final_summaries;
  }

  void take(classifier_output& out) {
    for (auto& b : out.per_proto) {
      for (const auto& e : b.events) {
        if (e.kind == stream_event_kind::open) {
          ++opens;
          opens_http += b.proto == app_protocol::http;
          if (!open_flows.insert({e.flow_id, b.proto}).second)
            ++errors; // opened twice
          if (e.info_index >= b.infos.size() || b.infos[e.info_index].flow_id != e.flow_id)
            ++errors;
          continue;
        }
        if (!open_flows.count({e.flow_id, b.proto})) {
          ++errors; // event of a flow never opened
          continue;
        }
        switch (e.kind) {
          case stream_event_kind::data:
          case stream_event_kind::gap: {
            // per parser: a flow handed over (STARTTLS) continues at the new one
            auto key = std::make_tuple(e.flow_id, static_cast<int>(b.proto), static_cast<int>(e.dir));
            auto it = next_seq.find(key);
            if (it != next_seq.end() && it->second != e.seq)
              ++errors; // not contiguous
            next_seq[key] = e.seq + e.len;
            if (e.kind == stream_event_kind::data) {
              stream_bytes += e.len;
              if (!b.data_of(e) || e.len == 0)
                ++errors;
            }
            break;
          }
          case stream_event_kind::datagram:
            if (!b.data_of(e))
              ++errors;
            break;
          case stream_event_kind::close:
            if (e.info_index >= b.summaries.size()) {
              ++errors;
              break;
            }
            summary(b.summaries[e.info_index]);
            if (b.summaries[e.info_index].reason != flow_end_reason::active)
              open_flows.erase({e.flow_id, b.proto});
            break;
          case stream_event_kind::open:
            break;
        }
      }
    }
    for (const auto& b : out.per_proto)
      for (const auto& s : b.relayed)
        summary(s);
    for (const auto& s : out.flows.summaries)
      summary(s);
    out.clear();
  }
};


} // namespace metaprobe::test
