// SPDX-License-Identifier: Apache-2.0
#pragma once
// IPFIX over TCP to one collector (RFC 7011 §10.4). Non-blocking: the
// exporter loop never waits for the collector except in flush() (bounded by
// tcp_flush_timeout_ms).
//
// Each connection is a new transport session: the encoder restarts
// (sequence 0) and the templates lead the stream. Messages wait in a
// buffer bounded by tcp_buffer_bytes and by tcp_buffer_records records:
// while the collector is unreachable (connecting, or waiting to reconnect)
// and while it is connected but does not read (the kernel takes nothing
// more; the message being built may add one message's records to the
// bound). Records beyond either bound are dropped and counted. Reconnects
// back off
// exponentially from tcp_reconnect_min_ms up to tcp_reconnect_max_ms.
//
// Where a record is, at any time (the counters keep this identity):
//   records_in == records_sent + records_dropped + buffered_records
// - buffered: in the encoder's open message, in the queue of finished
//   messages not yet written to the socket (at most tcp_buffer_bytes
//   octets; at most tcp_buffer_records records while the collector is
//   unreachable), or written but not yet acknowledged by the collector.
// - sent: acknowledged by the collector's TCP stack. A message written to
//   the socket is only counted when the send queue (ioctl SIOCOUTQ: octets
//   not yet acknowledged) no longer holds any of it; until then it waits in
//   a list of (end offset in the stream, records).
// - dropped: beyond a buffer bound; not acknowledged when an established
//   connection broke (queued and unacknowledged records of that session);
//   still buffered when flush() gives up (the connection is then aborted,
//   so nothing counted as dropped can arrive later); too large.
// What no exporter can know: records acknowledged by the collector's
// kernel that the collector process never read (it crashed with them in
// its receive buffer) count as sent.

#include <chrono>
#include <deque>
#include <vector>

#include "exporters/ipfix/ipfix_sink_base.hpp"
#include "exporters/ipfix/net_util.hpp"

namespace metaprobe::ipfix {

class ipfix_tcp_sink final : public ipfix_sink_base {
public:
  enum class state : uint8_t { waiting, connecting, connected };

  // Throws std::runtime_error (bad endpoint, unresolvable host, ipfix_dev).
  ipfix_tcp_sink(const ipfix_sink_config& cfg, const std::string& collector);
  ~ipfix_tcp_sink() override;
  ipfix_tcp_sink(const ipfix_tcp_sink&) = delete;
  ipfix_tcp_sink& operator=(const ipfix_tcp_sink&) = delete;

  void tick(std::chrono::system_clock::time_point now) override;
  void flush() override;

  state current_state() const { return state_; }
  // Octets of finished messages not yet written to the socket.
  size_t buffered_octets() const { return buffered_bytes_; }
  // Records in the encoder, the queue and written but unacknowledged.
  uint64_t buffered_records() const {
    return queued_records_ + unacked_records_ + encoder_.pending_records();
  }

protected:
  void deliver(const uint8_t* data, size_t len, uint32_t records) override;
  bool admit() override;
  void extra_counters(std::vector<sink_counter>& out) const override;
  // Records not yet written to the socket (what a crash of this process
  // loses; the kernel still sends what was written).
  uint64_t queued_records() const override { return queued_records_; }

private:
  struct pending {
    std::vector<uint8_t> bytes;
    size_t sent = 0;
    uint32_t records = 0;
  };
  // A message written to the socket, waiting for the collector's ACK.
  struct in_flight {
    uint64_t end = 0; // stream offset just past the message
    size_t octets = 0;
    uint32_t records = 0;
  };
  void start_session();
  void try_connect();
  void connection_failed(const char* what, int err);
  // Advances connect / send without blocking.
  void pump();
  void send_queue();
  void check_peer_closed();
  // Moves acknowledged messages from unacked_ to the sent counters.
  void update_acks();
  // Counts the records of the session still queued or unacknowledged as
  // dropped and forgets them.
  void drop_unconfirmed();
  // Closes the connection with a RST (nothing written is sent any more).
  void abort_connection();
  void log_drop(const char* why); // rate-limited

  ipfix_sink_config cfg_;
  std::string collector_;
  socket_address addr_;
  int fd_ = -1;
  state state_ = state::waiting;
  std::deque<pending> queue_;
  size_t queued_records_ = 0;
  size_t buffered_bytes_ = 0;
  std::deque<in_flight> unacked_;
  uint64_t unacked_records_ = 0;
  uint64_t stream_written_ = 0; // octets written to this connection
  std::chrono::milliseconds backoff_;
  std::chrono::steady_clock::time_point next_attempt_{};
  uint64_t connects_ = 0;
  uint64_t connect_failures_ = 0;
  uint64_t disconnects_ = 0;
  // written, unacknowledged when the connection broke or was aborted
  uint64_t records_lost_in_flight_ = 0;
  std::chrono::steady_clock::time_point last_drop_log_{};
};

} // namespace metaprobe::ipfix
