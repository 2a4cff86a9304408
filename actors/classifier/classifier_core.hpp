// SPDX-License-Identifier: Apache-2.0
#pragma once
// The logic of one classifier shard (plain C++; classifier_actor wraps it).
//
// Input: decoded packet batches (process), packet-time ticks without packets
// (advance_time) and the end of input (flush_all). Output: appended to a
// classifier_output the caller owns and clears between sends:
//   - per_proto[p] (p = app_protocol value): the stream_batch for the parser
//     of protocol p (only protocols whose registry entry has a parser for
//     the flow's transport get events);
//   - flows.summaries: the flow summaries of flows that have no parser;
//   - flows.raw: raw packet items (see "Raw metadata" below).
//
// Per packet (status ok; other statuses are only counted):
//   1. IP fragments go to IP reassembly; a completed datagram is decoded
//      again (link type RAW) and handled as one packet that counts as all of
//      its fragments (packets, bytes, fragments counters of its direction).
//      Its payload is copied into the output batch (it is not in the packet
//      batch).
//   2. Flow lookup in the flow table (see flow_table.hpp for the key); a new
//      flow is oriented: the sender of a TCP SYN (without ACK) is the
//      client, the receiver of a first-seen SYN/ACK is the client, otherwise
//      the sender of the first packet is. When the table is full the least
//      recently used flow is evicted (summary with reason `evicted`).
//      A SYN (without ACK) on a TCP flow that is closing (both FINs or a RST
//      seen) ends that flow (reason `end`) and starts a new one (port reuse).
//   3. Full-flow counters of the packet's direction (direction_counters).
//   4. Protocol detection, once per flow: the server port (then the client
//      port) in the registry's tcp_ports/udp_ports gives the protocol.
//      Otherwise every registry entry with a probe that can run on the
//      flow's transport (it lists ports or a parser for it) is a candidate,
//      in registry order:
//      - UDP: each datagram is probed alone, until one matches or
//        `max_probe_packets` datagrams were probed;
//      - TCP: the reassembled bytes of both directions are held, in arrival
//        order, in the flow's stream_redetector (parsers/common/redetect.hpp,
//        the same detection the parser stage runs after a hand-over): each
//        direction's accumulated start is probed (again when it doubled, or
//        when the other side starts to send), so a first message split into
//        any number of segments is found like a whole one; and the later
//        pieces of a direction (up to `max_probe_packets`) are probed alone
//        too, for flows picked up in their middle. At most
//        `max_probe_bytes` bytes are held per flow.
//      A flow no probe takes stays `unknown` (full-flow statistics only)
//      and what was held is freed.
//   5. A flow whose protocol has a parser gets an `open` event (flow_info in
//      infos) when the protocol is known, then `data` (TCP in-order bytes),
//      `gap` (lost TCP bytes), `datagram` (UDP payloads) and finally `close`
//      (its flow_summary in summaries). The bytes held while probing are
//      replayed to the parser first, as they came (copied); when the match
//      was on a piece probed alone, the pieces before it are announced as
//      gaps. Data that is in the packet batch is passed
//      by pointer (zero copy: the batch is added to `sources` once per output
//      batch); bytes out of the reassembly buffers or out of IP reassembly are
//      copied into `bytes` (source = own_bytes).
//   6. TCP: per-direction tcp_stream reassembly (tcp_stream.hpp), handshake
//      RTT, FIN/RST tracking; a segment whose payload was already seen
//      counts as a retransmission of its direction. Payload cut by the snap
//      length (IP length on the wire beyond the captured bytes) becomes a
//      gap for the parser.
//
// Raw metadata (template `raw`): every packet (after step 6; an IP-reassembled
// datagram counts as one) of a flow whose protocol is in
// `raw_protocols` gives one raw_packet in flows.raw: DIR_DATA from the flow's
// orientation, TCP flags and sequence, VDPI_PROTO (the flow's protocol) and
// META_PROTO, and the first `raw_max_bytes` captured bytes of its IP packet
// (IP header included). The bytes are referenced in the packet batch (zero
// copy; the batch joins flows.sources) or, for reassembled datagrams, copied
// once into flows.bytes. Packets seen before the flow's protocol was known
// (payload probes) are not exported. Bound: at most `raw_max_packets` items
// per flow (over its whole life, active reports included); later packets are
// counted in raw_dropped, packets cut to raw_max_bytes in raw_truncated.
//
// RTT: rtt_half_ms = (ACK - SYN) / 2 where SYN is the client's SYN, ACK the
// client's first ACK after the server's SYN/ACK: the tap sees the full round
// trip (tap->server->tap plus tap->client->tap). Without that ACK,
// (SYN/ACK - SYN) / 2 is used. Rounded to the nearest ms, at least 1 when
// measured (0 = unknown).
//
// Flow end (see flow_table.hpp for the timers):
//   - idle: no packet for inactive_timeout;
//   - end: both FINs or a RST, then tcp_close_linger of packet time (the
//     final ACK and late retransmissions still count in the flow);
//   - active: every active_timeout the flow reports a summary of the deltas
//     since the previous report and goes on; for a parsed flow this is a
//     `close` event whose summary has reason `active` (the parser stage
//     keeps the flow, see parser_host);
//   - evicted: table full;  forced: flush_all().
// Ending a TCP flow flushes its reassembly (holes become gaps, buffered
// data is delivered) before the close event.
//
// Expiry is driven by packet time: before each packet at most
// `expire_per_packet` due flows are handled, at most `expire_per_call` in
// advance_time(); remaining work continues at the next call.
//
// Memory (core/memory_budget.hpp): with a budget, the shard charges its
// flow-table chunks, the storage of its TCP streams, the bytes held for
// detection and its IP reassembly to it, per packet (a flow's charge is
// recomputed after each of its packets). Under pressure: tight, new flows
// are lean (no out-of-order buffering: a hole is a gap at once; at most
// lean_probe_bytes held for detection; flow_info::lean tells the parser
// host) and no new IP datagrams enter reassembly; critical, no new chunk
// of flow slots (a new flow evicts the oldest unconfirmed one) and before
// each packet up to `evict_per_packet` unconfirmed flows idle for at least
// `min_victim_idle_ns` are evicted, least recently used first; full, the
// least recently used flows are evicted, confirmed or not. A flow is confirmed (flow_table::confirm) by a
// completed TCP handshake or, without one, by payload (UDP: packets) in
// both directions.
//
// Counters: classifier_counters, updated per packet (plain integers, read by
// the owning thread; publish_counters copies them into stage_stats).
//
// Threading: one instance per shard, used by one thread. No allocation per
// packet in steady state (flow slots, reassembly buffers and scratch
// vectors are reused; output vectors grow per batch).

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "classifier/flow_table.hpp"
#include "classifier/ip_reassembly.hpp"
#include "classifier/session_id.hpp"
#include "classifier/tcp_stream.hpp"
#include "capture/decoder.hpp"
#include "core/memory_budget.hpp"
#include "core/stage_stats.hpp"
#include "core/stream.hpp"
#include "parsers/registry.hpp"

namespace metaprobe {

struct classifier_options {
  uint32_t max_flows = 1u << 18;                       // flow table size per shard
  uint64_t inactive_timeout_ns = 30'000'000'000ull;    // idle flows end (0 = never)
  uint64_t active_timeout_ns = 300'000'000'000ull;     // long flows report (0 = never)
  uint64_t tcp_close_linger_ns = 2'000'000'000ull;     // after both FINs / RST
  uint32_t max_ooo_bytes = 64 * 1024;                  // TCP out-of-order bytes per direction
  uint32_t max_ooo_segments = 64;                      // TCP out-of-order pieces per direction
  // IP reassembly (ip_reassembly.hpp)
  uint32_t frag_max_datagrams = 4096;                  // datagrams in reassembly at once
  uint32_t frag_max_fragments = 64;                    // fragments per datagram
  uint64_t frag_timeout_ns = 30'000'000'000ull;        // incomplete datagram dropped after
  uint64_t frag_max_buffered_bytes = 32u << 20;        // fragment bytes held per shard
  uint32_t max_probe_packets = 8;                      // UDP datagrams / TCP pieces probed alone
  uint32_t max_probe_bytes = 4096;                     // TCP bytes held per flow while probing
  uint32_t expire_per_packet = 8;                      // due flows handled before each packet
  uint32_t expire_per_call = 1u << 16;                 // due flows handled per advance_time()
  // Raw metadata (see above): protocols whose packets are exported (empty:
  // none), bytes of each IP packet kept, items per flow (0: no bound).
  std::vector<app_protocol> raw_protocols;
  uint32_t raw_max_bytes = 1024;
  uint32_t raw_max_packets = 512;
  // Tunnels opened in reassembled datagrams (the capture's `decap` keys).
  decode_options decode;
  // Shared memory budget of the process (nullptr: nothing charged, no
  // pressure); must outlive the classifier.
  memory_budget* budget = nullptr;
  uint32_t evict_per_packet = 2;                       // flows evicted per packet at critical
  uint64_t min_victim_idle_ns = 100'000'000;           // ... only when idle this long (until full)
};

// What one classifier shard did; every value counts since construction.
struct classifier_counters {
  uint64_t packets = 0;                                 // packets given to process()
  std::array<uint64_t, decode_status_count> by_status{}; // by decoded_packet::status
  uint64_t non_tcp_udp = 0;       // ok packets of other IP protocols (flows with ports 0)
  uint64_t fragments = 0;         // IP fragments given to reassembly
  uint64_t reassembled = 0;       // datagrams completed by IP reassembly
  uint64_t reassembled_bad = 0;   // completed datagrams that did not decode
  uint64_t reassembled_tunnels = 0; // completed datagrams that opened a tunnel
  std::array<uint64_t, decap_kind_count> decap{}; // ... their layers, by decap_kind
  uint64_t flows_created = 0;
  std::array<uint64_t, 6> flows_ended{}; // by flow_end_reason value (active = reports)
  uint64_t evictions = 0;         // flows ended because the table was full
  uint64_t table_full = 0;        // new flows that found the table full
  uint64_t port_reuse = 0;        // SYN on a closing flow ended it early
  uint64_t detected_port = 0;     // flows whose protocol came from a port
  uint64_t detected_probe = 0;    // ... from a payload probe
  uint64_t undetected = 0;        // flows that gave up probing
  uint64_t detected_midstream = 0; // ... TCP, on a piece probed alone (earlier bytes: gaps)
  uint64_t probe_bytes = 0;       // TCP bytes held while probing
  uint64_t probe_overflow = 0;    // TCP flows given up at max_probe_bytes
  uint64_t probe_gaps = 0;        // TCP flows given up: both starts lost to gaps
  uint64_t parser_flows = 0;      // open events emitted
  uint64_t events = 0;            // stream events emitted
  uint64_t bytes_zero_copy = 0;   // payload bytes passed by pointer
  uint64_t bytes_copied = 0;      // payload bytes copied into output batches
  uint64_t frag_tally_collisions = 0; // fragment accounting slot reused before completion
  uint64_t raw_packets = 0;       // raw items emitted
  uint64_t raw_bytes = 0;         // IP bytes they carry
  uint64_t raw_truncated = 0;     // items cut to raw_max_bytes
  uint64_t raw_dropped = 0;       // packets over raw_max_packets of their flow
  uint64_t confirmed = 0;         // flows confirmed (handshake or two-way traffic)
  uint64_t lean_flows = 0;        // flows created lean (memory pressure)
  uint64_t memory_evictions = 0;  // flows evicted for memory (of which confirmed:)
  uint64_t memory_evictions_confirmed = 0;
  uint64_t chunk_refused = 0;     // new flows that took an evicted flow's slot for memory
  tcp_stream_counters tcp;
};

// Output of a shard, appended to by process()/advance_time()/flush_all().
struct classifier_output {
  // Indexed by app_protocol value; the classifier sizes it and sets each
  // batch's proto. Only protocols with a registered parser get events.
  std::vector<stream_batch> per_proto;
  // For the correlator: summaries of flows without a parser (ended or
  // active reports) and raw packet items.
  flow_batch flows;

  // Empties every batch (keeps per_proto's size and protos).
  void clear();
  bool empty() const;
};

class classifier_core {
public:
  // `protocols` must outlive the classifier (the default registry is static).
  classifier_core(const classifier_options& opts, uint16_t shard, session_id_generator ids,
                  const std::vector<protocol_entry>& protocols = protocol_registry());
  classifier_core(const classifier_core&) = delete;
  classifier_core& operator=(const classifier_core&) = delete;

  // Every packet of `batch`, in order.
  void process(const packet_batch_ptr& batch, classifier_output& out);
  // Packet time moved to `now_ns` without packets: expire what is due.
  void advance_time(uint64_t now_ns, classifier_output& out);
  // End of input: every flow ends with reason `forced` (reassembly flushed).
  void flush_all(uint64_t now_ns, classifier_output& out);

  const classifier_counters& counters() const { return counters_; }
  const ip_reassembly_counters& reassembly_counters() const { return reasm_.counters(); }
  // Writes the counters as `<prefix><name>` into `stats`.
  void publish_counters(stage_stats& stats, const std::string& prefix) const;

  size_t active_flows() const { return table_.size(); }
  uint16_t shard() const { return shard_; }
  // Packet time as the shard sees it (highest timestamp so far).
  uint64_t now() const { return clock_; }
  const flow_table& table() const { return table_; }

private:
  struct proto_slot {
    const protocol_entry* entry = nullptr;
    bool tcp_parser = false;
    bool udp_parser = false;
  };
  // How the packet's bytes and counts enter the flow.
  struct packet_ctx {
    bool ephemeral = false;     // payload not inside the packet batch: copy it
    uint32_t packets = 1;       // wire packets it stands for
    uint64_t bytes = 0;         // their IP bytes
    uint32_t fragments = 0;     // of which IP fragments
  };
  class stream_sink final : public tcp_stream_sink {
  public:
    classifier_core* core = nullptr;
    flow_entry* flow = nullptr;
    direction dir = direction::client_to_server;
    uint64_t ts_ns = 0;
    bool ephemeral = false;
    void on_data(uint32_t seq, const uint8_t* data, uint32_t len, bool buffered) override;
    void on_gap(uint32_t seq, uint32_t len) override;
  };
  // Packets and bytes of the fragments of datagrams in reassembly, so a
  // completed datagram counts as all its fragments. Direct-mapped by
  // (addresses, id); a colliding datagram takes the slot over (counted).
  struct frag_tally {
    ip_address src, dst;
    uint32_t id = 0;
    bool used = false;
    uint32_t packets = 0;
    uint64_t bytes = 0;
  };

  void prepare(classifier_output& out);
  void expire(uint32_t budget);
  void handle_packet(const decoded_packet& p, const packet_ctx& ctx);
  // nested: the fragment came out of a reassembled tunnel packet (handled
  // once more, not again).
  void handle_fragment(const decoded_packet& p, bool nested = false);
  flow_entry* new_flow(const decoded_packet& p, const flow_key& key, bool src_is_lo);
  void detect_by_port(flow_entry& f, uint64_t ts_ns);
  // UDP: runs the probes on a datagram; true when the flow got a protocol.
  bool probe_datagram(flow_entry& f, direction dir, const uint8_t* data, uint32_t len,
                      uint64_t ts_ns);
  // TCP: holds a piece of the stream in the flow's detector and acts on
  // its verdict (settle_probe: the protocol set and every held byte
  // replayed to its parser, or probing given up).
  void probe_stream(flow_entry& f, stream_piece piece, uint64_t ts_ns);
  void settle_probe(flow_entry& f, stream_redetector::verdict v, uint64_t ts_ns);
  void stop_probing(flow_entry& f);
  void set_protocol(flow_entry& f, size_t slot_index, uint64_t ts_ns);
  void open(flow_entry& f, uint64_t ts_ns);
  void handle_tcp(flow_entry& f, direction dir, const decoded_packet& p, const packet_ctx& ctx);
  void handle_udp(flow_entry& f, direction dir, const decoded_packet& p, const packet_ctx& ctx);
  // A raw item for the packet when the flow's protocol is selected.
  void raw_item(flow_entry& f, direction dir, const decoded_packet& p, const packet_ctx& ctx);
  void end_flow(flow_entry& f, flow_end_reason why, uint64_t now_ns);
  // Memory: `f`'s charge brought up to date; flows evicted while the
  // budget is critical.
  void recharge(flow_entry& f);
  void recharge_reassembly();
  void evict_for_memory(uint32_t n);
  // Ends `victim` (reason evicted), counted as an eviction for memory.
  void evict_for_memory(flow_entry& victim);
  void confirm(flow_entry& f);
  void tcp_data(flow_entry& f, direction dir, uint32_t seq, const uint8_t* data, uint32_t len,
                bool copy, uint64_t ts_ns);
  void tcp_gap(flow_entry& f, direction dir, uint32_t seq, uint32_t len, uint64_t ts_ns);
  stream_batch& batch_of(const flow_entry& f) {
    return out_->per_proto[static_cast<size_t>(f.s.info.proto)];
  }
  // Puts the bytes into `b`: by pointer when possible, else copied.
  void place(stream_batch& b, stream_event& ev, const uint8_t* data, uint32_t len, bool copy);

  classifier_options opts_;
  uint16_t shard_;
  session_id_generator ids_;
  const std::vector<protocol_entry>& protocols_;
  std::vector<proto_slot> slots_;          // by registry index
  size_t per_proto_size_ = 0;              // max app_protocol value + 1
  std::vector<uint8_t> tcp_port_;          // port -> registry index + 1
  std::vector<uint8_t> udp_port_;
  bool any_tcp_probe_ = false;
  stream_redetector::candidates tcp_candidates_; // probes that may take a TCP flow
  bool any_udp_probe_ = false;
  int relay_proto_ = -1;                   // app_protocol whose parser relays unparsed flows' summaries
  std::vector<uint16_t> raw_meta_;         // by app_protocol value: META_PROTO, 0 = not selected

  memory_account account_;
  flow_table table_;
  size_t charged_chunks_ = 0;
  size_t reasm_charged_ = 0;
  tcp_stream_options tcp_opts_;
  tcp_stream_options lean_tcp_opts_;       // no out-of-order buffering
  ip_reassembler reasm_;
  std::vector<uint8_t> reasm_buf_;
  std::vector<uint8_t> reasm_outer_buf_; // a reassembled tunnel packet holding a fragment
  std::vector<frag_tally> tallies_;
  decoded_packet reasm_pkt_;
  static constexpr size_t tally_slots = 1024;

  classifier_counters counters_;
  uint64_t clock_ = 0;
  uint64_t next_flow_id_ = 0;
  classifier_output* out_ = nullptr;       // during a call
  const packet_batch_ptr* batch_ = nullptr; // during process()
  stream_sink sink_;
};

} // namespace metaprobe
