// SPDX-License-Identifier: Apache-2.0
#pragma once
// The publisher's logic: serialises export records into RecordBatch
// messages and pushes them on the ZeroMQ channels of their sink group (see
// core/channels.hpp for the contract).
//
// Never blocks capture on live input: a send that would block is a counted
// drop (records, batches), reported to the exporter in the next batch's
// `dropped_records`. On finite input (capture files) `block_ms` > 0 applies
// backpressure instead: a send waits up to block_ms before it counts as a
// drop.
//
// ipc:// channels: the socket file is removed again when the channel is
// closed (finish() or destruction; libzmq 4.3 leaves it behind), but only
// while it is still the file this publisher bound. A socket file left by a
// process that died is replaced at start-up (nobody accepts on it); a path
// that a running process is listening on, or that is not a socket at all,
// makes the constructor throw instead of silently taking it over (ZeroMQ's
// own bind would unlink whatever is there).
//
// Positions: every batch carries `records_before` (records offered on its
// channel before it, sent or dropped) and `dropped_before` (records dropped
// on the channel before it). Together they let an exporter that restarted
// count exactly what was sent to its dead predecessor and never received
// (exporters/delivery_state.hpp).
//
// Connected exporters: a ZeroMQ socket monitor on every channel's PUSH
// socket (set up before the bind) reports accepted connections, finished
// handshakes and disconnects; poll_events() drains those reports without
// waiting and keeps `exporters_connected` per channel up to date. The
// publisher actor calls it once a second, wait_for_exporters() and finish()
// call it too; publish() does not (nothing on the send path needs the
// count, so batches do not pay for it). The count is exact whenever no
// connection is half open (accepted, handshake not done); while one is, it
// may count one too many, never too few (a disconnect of a connection that
// never finished its handshake cannot be told apart from one that did).
//
// CURVE (`keys` on): every channel is a CURVE server with server.key; the
// context's ZAP handler (security/zap_handler.hpp), started before the
// first bind, admits only client.pub, so a PULL peer without the client
// key never completes a handshake and never gets a batch; its attempts
// count in handshakes_denied(). ipc:// socket files are made 0600 after
// bind (their directory, run_dir by default, is 0700 already).
//
// Threading: one thread at a time (the publisher actor, or the pipeline
// before it spawns that actor). Owns its ZeroMQ context and sockets.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "core/channels.hpp"
#include "core/ipc_path.hpp"
#include "metaprobe/v1/envelope.pb.h"
#include "security/curve_keys.hpp"
#include "security/zap_handler.hpp"

namespace metaprobe {

struct publisher_options {
  std::string endpoint_base;          // channel_endpoint config key
  std::vector<channel> channels;      // active channels
  std::array<int, 2 * sink_group_count> instances{}; // exporter instances per channel index
  int hwm = 1000;                     // batches queued per channel
  int block_ms = 0;                   // 0 = never block; -1 = block forever
  int linger_ms = 30000;              // how long close waits for queued batches
  uint64_t producer_id = 0;
  curve_keys keys;                    // off: plain ZeroMQ
};

struct channel_counters {
  uint64_t batches_sent = 0;
  uint64_t records_sent = 0;
  uint64_t batches_dropped = 0;
  uint64_t records_dropped = 0;
  uint64_t bytes_sent = 0;
  uint64_t exporters_connected = 0; // a level, not a count (see above)
};

// The `records` field (4) of a v1::RecordBatch in wire format: appended to
// an envelope serialised without records it makes the whole message, the
// same as if every record had been copied into it (and without the copy).
void encode_batch_records(const std::vector<v1::Record>& records, std::string& out);

class publisher {
public:
  // Binds every channel; throws std::runtime_error naming the endpoint on
  // failure (address in use, ipc path in use by a running process or not a
  // socket, bad path).
  explicit publisher(publisher_options opts);
  ~publisher();

  // Sends the records of one group to every channel of that group.
  void publish(sink_group group, std::vector<v1::Record>&& records);
  // End of a finite input: sends end-of-stream to every instance of every
  // channel (max(configured instances, exporters connected now), so an
  // instance started beyond the configured count ends too), then closes the
  // sockets (waiting up to linger_ms).
  void finish();

  // Drains the socket monitors' pending reports (never waits) and updates
  // the connected counts. Cheap when nothing happened.
  void poll_events();
  // Waits until every channel has its configured instances (at least 1)
  // connected, until `deadline`, or until `stop` turns true (checked every
  // 50 ms). Returns the channels still short of their count (empty: all
  // there).
  std::vector<channel> wait_for_exporters(std::chrono::steady_clock::time_point deadline,
                                          const std::atomic<bool>& stop);
  // The instances a channel is configured for (at least 1).
  int expected_exporters(const channel& ch) const;
  // CURVE handshakes the ZAP handler refused (0 without keys).
  uint64_t handshakes_denied() const { return zap_ ? zap_->counters().denied.load() : 0; }

  const channel_counters& counters(const channel& ch) const { return counters_[ch.index()]; }
  // The endpoint a channel is bound to (ZMQ_LAST_ENDPOINT: tcp port 0
  // resolved to the port the kernel chose); "" for a channel not published.
  std::string bound_endpoint(const channel& ch) const;
  const publisher_options& options() const { return opts_; }

private:
  struct slot {
    channel ch;
    std::unique_ptr<zmq::socket_t> sock;
    std::string endpoint;
    uint64_t sequence = 0;
    uint64_t pending_drops = 0;
    uint64_t position = 0;      // records offered on this channel so far
    uint64_t dropped_total = 0; // ... of which dropped
    ipc_file_id ipc;        // socket file of an ipc:// endpoint once bound
    std::unique_ptr<zmq::socket_t> monitor; // PAIR end of the socket monitor
    uint64_t accepted_open = 0; // accepted connections not disconnected yet
  };
  bool send(slot& s, const std::string& bytes);
  // Reads one slot's pending monitor reports into its counters.
  void drain_monitor(slot& s);
  // Closes the socket and removes its ipc socket file if it is still ours.
  static void close_slot(slot& s);

  publisher_options opts_;
  zmq::context_t ctx_;
  std::unique_ptr<zap_handler> zap_; // with keys; stopped before ctx_ ends
  std::vector<slot> slots_;
  std::array<channel_counters, 2 * sink_group_count> counters_{};
  std::string buffer_;
  std::string records_wire_; // the current group's records, encoded once
  bool finished_ = false;
};

} // namespace metaprobe
