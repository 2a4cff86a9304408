// SPDX-License-Identifier: Apache-2.0
#pragma once
// The logic of one parser:<proto> actor: owns the parser instance of every
// flow of its protocol in one shard, feeds them the classifier's stream
// events and collects their records.
//
// Threading: used by one actor only. Ownership: parser instances live here
// from the flow's `open` event to its `close` event.

#include <cstdint>
#include <memory>
#include <unordered_map>

#include "core/stream.hpp"
#include "parsers/registry.hpp"

namespace metaprobe {

struct parser_host_counters {
  uint64_t flows_opened = 0;
  uint64_t flows_closed = 0;
  uint64_t flows_detached = 0;      // parser reported a violation
  uint64_t flows_handed_over = 0;   // flows that left for another protocol's parser (STARTTLS)
  uint64_t events_unknown_flow = 0; // event for a flow never opened (counted, ignored)
  uint64_t records_limited = 0;     // records over max_records_per_flow
};

class parser_host {
public:
  parser_host(const protocol_entry& entry, const parser_options& opts);

  // Runs every event of `in`; appends records and closed-flow summaries to
  // `out` (which the caller clears between batches).
  void process(const stream_batch& in, record_batch& out);

  const protocol_entry& entry() const { return entry_; }
  const parser_counters& counters() const { return counters_; }
  const parser_host_counters& host_counters() const { return host_counters_; }
  size_t active_flows() const { return flows_.size(); }

private:
  struct flow_slot {
    flow_info info;
    std::unique_ptr<stream_parser> stream;
    std::unique_ptr<datagram_parser> datagram;
    uint64_t records = 0;
    uint64_t batch_mark = 0;   // generation in which out_index is valid
    uint32_t out_index = 0;    // index of info in the current out.infos
    bool detached = false;
  };

  uint32_t info_index(flow_slot& slot, record_batch& out);
  void collect(flow_slot& slot, record_batch& out);
  void check_state(flow_slot& slot, parser_state st);

  const protocol_entry& entry_;
  parser_options opts_;
  parser_counters counters_;
  parser_host_counters host_counters_;
  std::unordered_map<uint64_t, flow_slot> flows_;
  record_sink scratch_;
  uint64_t generation_ = 0;
};

} // namespace metaprobe
