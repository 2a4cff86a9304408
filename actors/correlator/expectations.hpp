// SPDX-License-Identifier: Apache-2.0
#pragma once
// Expected connections: the correlator's table of data connections that a
// control flow announced (FTP PORT/EPRT, 227/229 replies; see
// parsed_record::expect), so that the data flow shares the control flow's
// SESSION_ID.
//
// An expectation maps the data flow's server endpoint (address, port) to the
// control flow's SESSION_ID. Passive mode: the data flow's server is the FTP
// server's announced endpoint; active mode: the FTP server connects to the
// client's announced endpoint, so that endpoint is the data flow's server.
//
// Matching (session_for): a TCP flow whose (server, server_port) has an
// expectation learned at or before the flow's first packet and at most
// `window_ns` before it takes the control SESSION_ID. A match consumes the
// expectation (RFC 959: each PORT/PASV announces one data connection; a
// client sends a new one per transfer) and binds the data flow's own
// SESSION_ID to the control one, so that its later records and summaries
// (active-timeout reports, the final summary) carry the same id; the
// binding ends with the flow's final summary (release).
//
// Clock: packet time, the largest timestamp the correlator has seen
// (advance). An unmatched expectation is kept for `window_ns + hold_ns`
// after it was learned: a flow reaches the correlator only when it ends or
// reports (a record, an active-timeout summary), up to `hold_ns` after its
// first packet, and it may still match then. A newer announcement of the
// same endpoint replaces the older one (counted as expired).
//
// Limits: at most `capacity` expectations and `capacity` bindings; a new
// one beyond that is not kept (counted in `dropped`). Memory is O(capacity).
//
// Threading: owned by the correlator (one actor). No I/O.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_map>

#include "core/packet.hpp"

namespace metaprobe {

struct expectation_options {
  uint64_t window_ns = 120ull * 1000000000ull; // announcement -> data flow start
  uint64_t hold_ns = 332ull * 1000000000ull;   // flow start -> first sight (set from the flow timeouts)
  size_t capacity = 4096;
};

struct expectation_counters {
  uint64_t learned = 0; // expectations added
  uint64_t matched = 0; // flows that took a control SESSION_ID
  uint64_t expired = 0; // unmatched expectations removed (too old, or replaced)
  uint64_t dropped = 0; // expectations or bindings not kept: table full
};

class expectation_table {
public:
  explicit expectation_table(expectation_options opts = {}) : opts_(opts) {}

  // The packet-time clock moves to `now_ns` (never backwards); expectations
  // too old to match any flow that can still arrive are removed.
  void advance(uint64_t now_ns);

  // A control flow (SESSION_ID `control_session`) announced at `ts_ns` that
  // a TCP connection to (server, port) follows. mode: 0 active, 1 passive
  // (informational). Ignored when server.family is 0 or port is 0.
  void learn(const ip_address& server, uint16_t port, uint8_t mode, uint64_t control_session,
             uint64_t ts_ns);

  // The SESSION_ID the flow's records carry: the control flow's when the
  // flow matches (or already matched) an expectation, else `own_session`.
  uint64_t session_for(uint64_t own_session, uint8_t l4_proto, const ip_address& server,
                       uint16_t server_port, uint64_t first_ts_ns);

  // The flow with SESSION_ID `own_session` has ended: forget its binding.
  void release(uint64_t own_session);

  bool empty() const { return expected_.empty() && bound_.empty(); }
  size_t expectations() const { return expected_.size(); }
  size_t bindings() const { return bound_.size(); }
  const expectation_counters& counters() const { return counters_; }

private:
  struct key {
    ip_address addr;
    uint16_t port = 0;
    bool operator==(const key& o) const { return port == o.port && addr == o.addr; }
  };
  struct key_hash {
    size_t operator()(const key& k) const;
  };
  struct entry {
    uint64_t control_session = 0;
    uint64_t learned_ns = 0;
    uint64_t seq = 0; // tells a live entry from a stale FIFO item
    uint8_t mode = 0;
  };
  struct fifo_item {
    key k;
    uint64_t seq = 0;
  };

  void purge();
  void compact();

  expectation_options opts_;
  expectation_counters counters_;
  uint64_t now_ns_ = 0;
  uint64_t next_seq_ = 1;
  std::unordered_map<key, entry, key_hash> expected_;
  std::deque<fifo_item> order_;                     // learning order, for expiry
  std::unordered_map<uint64_t, uint64_t> bound_;    // data SESSION_ID -> control SESSION_ID
};

} // namespace metaprobe
