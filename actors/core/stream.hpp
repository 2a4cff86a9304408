// SPDX-License-Identifier: Apache-2.0
#pragma once
// Batches exchanged between the stages of metaprobe-capture:
//   capture --packet_batch--> classifier[shard]
//   classifier --stream_batch--> parser:<proto>[shard]
//   classifier --flow_batch (summaries, raw packets)--> correlator
//   parser --record_batch (records, summaries)--> correlator
// They move between actors as C++ values (never serialised). One message per
// batch, never one per packet.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/packet.hpp"
#include "parsers/parser.hpp"

namespace metaprobe {

// A burst of decoded frames. `packets[i].data` points into `arena` (live
// pcap and pcapng sources copy each frame there once), into `backing`
// (a memory-mapped capture file: no copy at all) or into memory that
// `release` frees (zero-copy sources such as DPDK mbufs).
struct packet_batch {
  std::vector<decoded_packet> packets;
  std::vector<uint8_t> arena;
  std::shared_ptr<const void> backing;
  std::function<void()> release;
  // A shard's share of a larger batch keeps that batch (and its arena)
  // alive through `owner`; its packets point into the owner's memory.
  std::shared_ptr<const packet_batch> owner;
  packet_batch() = default;
  packet_batch(const packet_batch&) = delete;
  packet_batch& operator=(const packet_batch&) = delete;
  ~packet_batch() {
    if (release)
      release();
  }
};
using packet_batch_ptr = std::shared_ptr<const packet_batch>;

// What a flow is, as the parsers and the correlator need it. Oriented:
// `client` opened the flow (TCP SYN sender, else first packet's sender).
struct flow_info {
  uint64_t flow_id = 0;      // unique within the shard
  uint64_t session_id = 0;   // SESSION_ID, unique across shards and restarts
  ip_address client;
  ip_address server;
  uint16_t client_port = 0;
  uint16_t server_port = 0;
  uint8_t l4_proto = 0;
  app_protocol proto = app_protocol::unknown;
  l2_context l2;             // from the flow's first packet
  uint64_t first_ts_ns = 0;
  // Created while memory was short (core/memory_budget.hpp): its parser
  // may buffer at most memory_budget::lean_parser_bytes.
  bool lean = false;
};

// Per-direction full-flow counters.
struct direction_counters {
  uint64_t packets = 0;
  uint64_t bytes = 0;        // IP bytes (IP header included)
  uint64_t first_ts_ns = 0;
  uint64_t last_ts_ns = 0;
  uint8_t tcp_flags = 0;     // OR of all flags seen
  uint8_t tos = 0;           // TOS/traffic class of the first packet
  uint32_t fragments = 0;    // IP fragments
  uint32_t retransmissions = 0;
  l2_context l2;             // L2 context of the first packet in this direction
};

enum class flow_end_reason : uint8_t {
  idle = 1,       // inactive timeout
  active = 2,     // active timeout (flow continues; counters are deltas)
  end = 3,        // TCP FIN/RST
  forced = 4,     // end of input / shutdown
  evicted = 5,    // table full
};

// Emitted when a flow ends (or hits the active timeout): the source of the
// fullflow records. Counters are deltas since the previous summary.
struct flow_summary {
  flow_info info;
  direction_counters dir[2]; // [client_to_server], [server_to_client]
  uint32_t rtt_half_ms = 0;  // RTT/2 from the TCP handshake, 0 if unknown
  flow_end_reason reason = flow_end_reason::idle;
  // Filled by the parser stage when a parser ran on the flow.
  std::string host;          // HTTP Host / SNI / CN
};

enum class stream_event_kind : uint8_t {
  open,      // a new flow for this parser: infos[info_index] describes it
  data,      // in-order stream bytes (TCP) of direction dir
  datagram,  // one complete datagram (UDP, after IP reassembly)
  gap,       // `len` bytes of direction dir are lost
  close,     // the flow ended: summaries[info_index] holds its counters
};

struct stream_event {
  stream_event_kind kind = stream_event_kind::data;
  direction dir = direction::client_to_server;
  uint64_t flow_id = 0;
  uint64_t ts_ns = 0;
  uint32_t seq = 0;          // TCP sequence of the first byte
  uint32_t info_index = 0;   // open: into infos; close: into summaries
  uint16_t source = 0;       // index into sources (keeps ptr alive), or own_bytes
  uint32_t offset = 0;       // byte offset in bytes when source == own_bytes
  const uint8_t* ptr = nullptr; // the bytes, when they live in a packet batch
  uint32_t len = 0;          // bytes (data/datagram) or lost bytes (gap)
  static constexpr uint16_t own_bytes = 0xffff;
};

// Work for one parser:<proto> actor of one shard.
struct stream_batch {
  app_protocol proto = app_protocol::unknown;
  std::vector<flow_info> infos;
  std::vector<flow_summary> summaries;
  std::vector<stream_event> events;
  // Payload bytes: either inside a packet batch (zero copy) or copied into
  // own_bytes (reassembled out-of-order data, IP reassembly results).
  std::vector<packet_batch_ptr> sources;
  std::vector<uint8_t> bytes;
  // Summaries of flows without a parser that this parser stage passes on to
  // the correlator unchanged, after its records (protocol_entry::
  // relays_unparsed_flows): orders them after the announcements they match.
  std::vector<flow_summary> relayed;

  const uint8_t* data_of(const stream_event& e) const {
    return e.source == stream_event::own_bytes ? bytes.data() + e.offset : e.ptr;
  }
  bool empty() const { return events.empty() && relayed.empty(); }
};

// One packet of a flow whose protocol `raw_meta_protocols` selects, for a
// `raw` record (RAW_DATA = the first bytes of its IP packet, IP header
// included). The bytes are referenced like stream_event's: inside a packet
// batch (zero copy, `source` indexes flow_batch::sources) or copied into
// flow_batch::bytes (source == own_bytes: IP-reassembled datagrams).
struct raw_packet {
  uint32_t info_index = 0;   // into flow_batch::raw_infos
  uint64_t ts_ns = 0;        // capture time of the packet
  direction dir = direction::client_to_server; // DIR_DATA
  uint8_t tcp_flags = 0;     // TCP_FLAGS (0 for UDP)
  uint32_t tcp_seq = 0;      // TCP_SEQUENCE (0 for UDP)
  app_protocol proto = app_protocol::unknown;  // VDPI_PROTO when the packet was seen
  uint16_t meta_proto = 0;   // META_PROTO (core/raw_meta.hpp)
  uint16_t source = 0;       // index into sources, or own_bytes
  uint32_t offset = 0;       // byte offset in bytes when source == own_bytes
  const uint8_t* ptr = nullptr; // the bytes, when they live in a packet batch
  uint32_t len = 0;          // bytes kept (at most raw_meta_max_bytes)
  static constexpr uint16_t own_bytes = 0xffff;
};

// What a classifier shard sends to the correlator itself (one message per
// classifier batch): summaries of flows that have no parser, and the raw
// packets of selected flows with the infos of their flows (one info per
// flow per batch).
struct flow_batch {
  std::vector<flow_summary> summaries;
  std::vector<flow_info> raw_infos;
  std::vector<raw_packet> raw;
  std::vector<packet_batch_ptr> sources;
  std::vector<uint8_t> bytes;

  const uint8_t* data_of(const raw_packet& r) const {
    return r.source == raw_packet::own_bytes ? bytes.data() + r.offset : r.ptr;
  }
  bool empty() const { return summaries.empty() && raw.empty(); }
  void clear() {
    summaries.clear();
    raw_infos.clear();
    raw.clear();
    sources.clear();
    bytes.clear();
  }
};

// Records of one parser stage batch, on their way to the correlator.
struct record_batch {
  struct item {
    parsed_record rec;
    uint32_t info_index;     // into infos
  };
  std::vector<flow_info> infos;
  std::vector<item> items;
  std::vector<flow_summary> closed; // flows ended, for fullflow
};

} // namespace metaprobe
