// SPDX-License-Identifier: Apache-2.0
#pragma once
// Flow table of one classifier shard: bidirectional flows, bounded, with
// incremental timeouts.
//
// Key: the canonical 5-tuple (address family, both addresses, both ports,
// IP protocol), lower endpoint first, where endpoints (address bytes, then
// port) compare lexicographically; both directions of a flow give the same
// key. VLAN/MPLS tags and MAC addresses are NOT part of the key (a flow seen
// on two VLANs is one flow; its L2 context is that of its first packet).
// Lookups hash with decoded_packet::flow_hash (symmetric, computed once by
// the decoder), remixed so that the low bits the sharding used do not matter.
//
// Storage: flow slots are allocated in chunks of `chunk_size` on demand, up
// to `max_flows`, and never freed before the table; released slots go to a
// free list and are reused (no allocation per packet or per flow in steady
// state). Buckets (chained through slot indices) are sized at construction
// to the power of two >= max_flows. Slot addresses are stable. A slot is
// about 700 bytes (plus out-of-order buffers while a TCP direction has
// some), so the default 2^18 flows use up to ~180 MB per shard.
//
// Timeouts are driven by packet time, never by scanning the table. Each flow
// is in up to three intrusive lists, each kept in time order because time
// only moves forward (slightly out-of-order timestamps only delay an expiry
// until the flows before it are due):
//   - LRU list by last packet time: idle when last + inactive_timeout <= now.
//   - unconfirmed list: the flows not confirmed yet (confirm(): a completed
//     TCP handshake or a reply), by last packet time. Its head (else the
//     LRU head) is the flow evicted when the table is full or memory is
//     short (core/memory_budget.hpp), so a flood of spoofed flows evicts
//     itself before it evicts real conversations.
//   - active list by last report time (first packet, then each active
//     report): due when report + active_timeout <= now (0 disables).
//   - closing list (TCP flows after both FINs or a RST) by closing time: ends
//     when close + tcp_close_linger <= now, so the last ACK and late
//     retransmissions still count in the flow.
// next_due() hands out one due flow at a time (O(1) each); the caller
// decides how much work it does per call. inactive_timeout 0 disables idle
// expiry.
//
// Threading: one shard, one thread.

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "classifier/tcp_stream.hpp"
#include "core/stream.hpp"
#include "parsers/common/redetect.hpp"

namespace metaprobe {

struct flow_key {
  std::array<uint8_t, 16> lo_addr{};
  std::array<uint8_t, 16> hi_addr{};
  uint16_t lo_port = 0;
  uint16_t hi_port = 0;
  uint8_t family = 0;
  uint8_t proto = 0;
  uint8_t pad[2] = {};
  uint64_t tunnel = 0;  // tunnel_context::id: 0 outside tunnels

  // Canonical key of a packet; `src_is_lo` tells whether the packet's
  // source is the key's lower endpoint.
  static flow_key of(const decoded_packet& p, bool& src_is_lo);
  bool operator==(const flow_key& o) const;
  bool operator!=(const flow_key& o) const { return !(*this == o); }
};

// Per-flow state the classifier keeps (reset on reuse).
struct flow_state {
  flow_info info;
  direction_counters dir[2];   // deltas since the last report
  bool client_is_lo = true;    // the client is the key's lower endpoint
  bool has_parser = false;     // open event emitted; events go to a parser
  bool probing = false;        // protocol still being looked for by probes
  bool is_tcp = false;
  uint8_t fin_seen = 0;        // bit per direction (1 << direction)
  uint8_t payload_dirs = 0;    // bit per direction that sent TCP payload
  bool rst_seen = false;
  uint16_t probe_packets = 0;  // UDP datagrams probed so far
  uint32_t rtt_half_ms = 0;
  uint8_t handshake = 0;       // 1: client SYN seen, 2: + SYN/ACK, 3: + ACK
  uint64_t syn_ts_ns = 0;      // client SYN
  uint64_t synack_ts_ns = 0;   // server SYN/ACK
  // TCP bytes held while the protocol is looked for by content (both
  // directions, in arrival order; classifier_core.hpp step 4). Only while
  // probing; nullptr otherwise.
  std::unique_ptr<stream_redetector> detect;
  uint32_t raw_packets = 0;    // raw metadata items emitted for this flow
  uint32_t raw_info = 0;       // index of its info in the output's raw_infos
};

struct flow_entry {
  // ---- table bookkeeping (owned by flow_table) ----
  flow_key key;
  uint32_t hash = 0;
  uint32_t index = 0;          // slot number
  uint32_t bucket_next = 0;
  uint32_t lru_prev = 0, lru_next = 0;
  uint32_t unc_prev = 0, unc_next = 0;   // unconfirmed list (while !confirmed)
  uint32_t act_prev = 0, act_next = 0;
  uint32_t close_prev = 0, close_next = 0;
  uint64_t last_ts_ns = 0;     // last packet
  uint64_t report_ts_ns = 0;   // first packet or last active report
  uint64_t close_ts_ns = 0;    // when closing began
  bool in_use = false;
  bool closing = false;
  bool confirmed = false;      // out of the unconfirmed list
  // ---- memory charged for the slot's buffers (owned by the classifier;
  // kept across reuse, since the slot keeps small buffers' storage) ----
  uint32_t charged = 0;
  // ---- flow state (owned by the classifier) ----
  flow_state s;
  tcp_stream stream[2];        // [client_to_server], [server_to_client]
};

struct flow_table_options {
  uint32_t max_flows = 1u << 18;
  uint64_t inactive_timeout_ns = 30'000'000'000ull;
  uint64_t active_timeout_ns = 300'000'000'000ull;
  uint64_t tcp_close_linger_ns = 2'000'000'000ull;
};

// Flow slots per worker that `share_percent` of a memory budget holds, over
// `workers` shards: a slot, its bucket and the parser host's slot of the
// flow (about flow_cost_bytes), bounded to [4096, 1048576] (about the fixed
// default of earlier versions; set flow_max for more).
inline constexpr size_t flow_cost_bytes = sizeof(flow_entry) + 2 * sizeof(uint32_t) + 512;
uint32_t flow_slots_for(uint64_t budget_bytes, int workers, unsigned share_percent = 40);

class flow_table {
public:
  static constexpr uint32_t none = 0xffffffffu;
  static constexpr uint32_t chunk_size = 4096;

  explicit flow_table(const flow_table_options& opts);
  flow_table(const flow_table&) = delete;
  flow_table& operator=(const flow_table&) = delete;

  // The flow with this key, or nullptr.
  flow_entry* find(const flow_key& key, uint32_t hash);

  bool full() const { return size_ >= max_flows_; }
  // create() would allocate a new chunk of slots (no free slot left).
  bool needs_chunk() const { return free_head_ == none && next_unused_ >= allocated(); }
  // Bytes of one chunk of slots.
  static constexpr size_t chunk_bytes = sizeof(flow_entry) * chunk_size;
  size_t size() const { return size_; }
  size_t max_flows() const { return max_flows_; }
  // Slots allocated so far (memory in use), <= max_flows rounded up to a chunk.
  size_t allocated() const { return chunks_.size() * size_t{chunk_size}; }

  // A new flow (requires !full()); table fields set, `s` reset, streams
  // reset. It enters the LRU and active lists at `ts_ns`.
  flow_entry* create(const flow_key& key, uint32_t hash, uint64_t ts_ns);

  // A packet of `f` at `ts_ns`: most recently used.
  void touch(flow_entry& f, uint64_t ts_ns);
  // `f` starts closing at `ts_ns` (no-op if already closing).
  void mark_closing(flow_entry& f, uint64_t ts_ns);
  // After an active report at `now_ns`: next report one timeout later.
  void rearm_active(flow_entry& f, uint64_t now_ns);
  // Removes `f` from the table; its slot is reused later (keeping small
  // buffers' storage for the next flow unless !keep_storage).
  void release(flow_entry& f, bool keep_storage = true);

  // `f` is a real conversation (handshake completed or a reply seen): it
  // leaves the unconfirmed list. No-op when already confirmed.
  void confirm(flow_entry& f);

  // The eviction victim: the least recently used unconfirmed flow, else
  // the least recently used confirmed one; nullptr when empty.
  flow_entry* oldest();
  size_t unconfirmed() const { return size_ - confirmed_; }

  // A flow whose timer is due at `now_ns`, with why; nullptr when none. The
  // caller must release() it (end, idle) or rearm_active() it (active)
  // before asking again, or it is returned again.
  flow_entry* next_due(uint64_t now_ns, flow_end_reason& why);

  // Visits every flow, least recently used first. `fn` may not release.
  template <class Fn>
  void for_each(Fn&& fn) {
    for (uint32_t i = lru_.head; i != none; i = slot(i).lru_next)
      fn(slot(i));
  }

  const flow_table_options& options() const { return opts_; }
  // Bytes of the bucket array (allocated at construction).
  size_t bucket_bytes() const { return buckets_.capacity() * sizeof(uint32_t); }

private:
  struct list {
    uint32_t head = none;
    uint32_t tail = none;
  };
  flow_entry& slot(uint32_t i) { return chunks_[i / chunk_size][i % chunk_size]; }
  uint32_t bucket_of(uint32_t hash) const {
    return static_cast<uint32_t>((hash * 0x9E3779B97F4A7C15ull) >> bucket_shift_);
  }
  template <uint32_t flow_entry::*Prev, uint32_t flow_entry::*Next>
  void unlink(list& l, flow_entry& f);
  template <uint32_t flow_entry::*Prev, uint32_t flow_entry::*Next>
  void push_back(list& l, flow_entry& f);

  flow_table_options opts_;
  uint32_t max_flows_;
  unsigned bucket_shift_;
  std::vector<uint32_t> buckets_;
  std::vector<std::unique_ptr<flow_entry[]>> chunks_;
  uint32_t free_head_ = none;   // free list through bucket_next
  uint32_t next_unused_ = 0;    // slots [next_unused_, allocated()) never used
  size_t size_ = 0;
  list lru_;
  list unconfirmed_;
  size_t confirmed_ = 0;
  list active_;
  list closing_;
};

} // namespace metaprobe
