// SPDX-License-Identifier: Apache-2.0
#pragma once
// The logic of one parser:<proto> actor: owns the parser instance of every
// flow of its protocol in one shard, feeds them the classifier's stream
// events and collects their records.
//
// Hand-overs (parser.hpp handover_kind): when a stream parser hands its
// flow over (CONNECT 2xx, 101, STARTTLS), the rest of the stream goes
// through stream_redetector (redetect.hpp) and then to a new parser of the
// protocol it found, in this same host: the flow keeps its flow_info
// (SESSION_ID, LOGIN, addresses), its records and its summary. Hand-overs
// nest (CONNECT inside CONNECT, STARTTLS inside a tunnel) up to
// max_layers parsers per flow. The same path takes a port-detected flow
// whose first bytes are not its port's protocol but another's (TLS on
// port 80): kind `port`. A flow's protocol chain (e.g. "http>tls") is
// counted per chain; its summary names the innermost protocol found.
//
// Memory (core/memory_budget.hpp): every flow's parsers, re-detector and
// slot are charged to the budget after each of its events
// (stream_parser::memory_bytes and the rest). A flow created lean, or any
// flow while the budget is full, whose parsers hold more than
// memory_budget::lean_parser_bytes is left: its parsers are freed, its
// records so far stay, its summary keeps the host found so far (counted
// in memory_left).
//
// Threading: used by one actor only. Ownership: parser instances live here
// from the flow's `open` event to its `close` event.

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/memory_budget.hpp"
#include "core/stream.hpp"
#include "parsers/registry.hpp"
#include "parsers/common/redetect.hpp"

namespace metaprobe {

struct parser_host_counters {
  uint64_t flows_opened = 0;
  uint64_t flows_closed = 0;
  uint64_t flows_detached = 0;      // parser reported a violation
  uint64_t events_unknown_flow = 0; // event for a flow never opened (counted, ignored)
  uint64_t records_limited = 0;     // records over max_records_per_flow
  // In-band hand-overs, by handover_kind.
  std::array<uint64_t, handover_kind_count> handovers{};
  uint64_t redetected = 0;          // hand-overs whose new protocol was found
  uint64_t redetect_overflow = 0;   // ... given up: max_redetect_bytes held, no probe accepted
  uint64_t redetect_gaps = 0;       // ... given up: both directions' starts lost
  uint64_t redetect_ended = 0;      // ... the flow ended before a probe accepted
  uint64_t redetect_bytes = 0;      // bytes held for re-detection (replayed or dropped)
  uint64_t layers_exceeded = 0;     // hand-overs beyond max_layers (the flow is left)
  uint64_t memory_left = 0;         // flows left for memory (see above)
};

class parser_host {
public:
  static constexpr size_t max_layers = 4;            // parsers per flow, outer one included
  static constexpr size_t max_redetect_bytes = 16384; // held per handed-over flow

  parser_host(const protocol_entry& entry, const parser_options& opts,
              const std::vector<protocol_entry>& protocols = protocol_registry());

  // Runs every event of `in`; appends records and closed-flow summaries to
  // `out` (which the caller clears between batches).
  void process(const stream_batch& in, record_batch& out);

  const protocol_entry& entry() const { return entry_; }
  const parser_counters& counters() const { return counters_; }
  const parser_host_counters& host_counters() const { return host_counters_; }
  // Counters of the parsers that ran inside handed-over flows, by
  // app_protocol value (entries of protocols no flow reached stay 0).
  const parser_counters& inner_counters(app_protocol p) const {
    return inner_counters_[static_cast<size_t>(p) % inner_counters_.size()];
  }
  // Flows per protocol chain ("http>tls"), counted when the flow ends.
  const std::map<std::string, uint64_t>& chains() const { return chains_; }
  size_t active_flows() const { return flows_.size(); }
  // Bytes this host has charged to the memory budget.
  int64_t charged_bytes() const { return account_.total(); }

private:
  struct flow_slot {
    flow_info info;
    std::unique_ptr<stream_parser> stream;                // the innermost parser
    std::vector<std::unique_ptr<stream_parser>> outer;    // handed over, outermost first
    std::unique_ptr<stream_redetector> redetect;          // between a hand-over and a verdict
    std::unique_ptr<datagram_parser> datagram;
    std::string chain;                                    // "" until a hand-over
    app_protocol inner = app_protocol::unknown;           // innermost protocol found
    uint64_t records = 0;
    uint64_t batch_mark = 0;   // generation in which out_index is valid
    uint32_t out_index = 0;    // index of info in the current out.infos
    bool detached = false;
    bool first_data = true;    // no data delivered yet (port hand-over check)
    size_t charged = 0;        // bytes charged to the memory budget
    std::string left_host;     // flow_host() when the flow was left for memory
  };

  uint32_t info_index(flow_slot& slot, record_batch& out);
  void collect(flow_slot& slot, record_batch& out);
  void check_state(flow_slot& slot, parser_state st);
  // Stream bytes (or a gap: gap > 0) of the flow, through re-detection while
  // one is pending.
  void deliver(flow_slot& slot, direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
               uint32_t seq, uint64_t gap);
  // A port-detected flow's first bytes that another protocol's probe takes.
  bool port_mismatch(flow_slot& slot, direction dir, const uint8_t* data, size_t len,
                     uint64_t ts_ns, uint32_t seq);
  // The parser handed over: it finishes, a re-detector takes the stream.
  // False when the flow has max_layers parsers already (it is left).
  bool begin_redetect(flow_slot& slot, handover_kind kind, uint64_t ts_ns);
  // Places `queue` (in order) into the re-detector or the parser, and acts
  // on each verdict: a new parser replays what was held, then the rest.
  void settle(flow_slot& slot, std::vector<stream_piece> queue);
  std::string flow_host(const flow_slot& slot) const;
  void end_flow(flow_slot& slot, flow_summary& summary, uint64_t ts_ns);
  // The slot's charge brought up to date; leaves the flow when it holds
  // more than it may (see above).
  void recharge(flow_slot& slot);

  const protocol_entry& entry_;
  const std::vector<protocol_entry>& protocols_;
  stream_redetector::candidates redetect_candidates_; // probe + stream parser
  parser_options opts_;
  parser_counters counters_;
  parser_host_counters host_counters_;
  std::array<parser_counters, 16> inner_counters_{};
  std::map<std::string, uint64_t> chains_;
  std::unordered_map<uint64_t, flow_slot> flows_;
  record_sink scratch_;
  uint64_t generation_ = 0;
  memory_account account_;
};

} // namespace metaprobe
