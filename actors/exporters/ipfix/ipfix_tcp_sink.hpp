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
// bound). Records beyond either bound are dropped and counted. When an
// established connection breaks, what it had not sent is dropped (counted)
// and a new session starts. Reconnects back off
// exponentially from tcp_reconnect_min_ms up to tcp_reconnect_max_ms.

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
  size_t buffered_octets() const { return buffered_bytes_; }

protected:
  void deliver(const uint8_t* data, size_t len, uint32_t records) override;
  bool admit() override;
  void extra_counters(std::vector<sink_counter>& out) const override;
  uint64_t queued_records() const override { return buffered_records_; }

private:
  struct pending {
    std::vector<uint8_t> bytes;
    size_t sent = 0;
    uint32_t records = 0;
  };
  void start_session();
  void try_connect();
  void connection_failed(const char* what, int err);
  // Advances connect / send without blocking.
  void pump();
  void send_queue();
  void check_peer_closed();
  void log_drop(const char* why); // rate-limited

  ipfix_sink_config cfg_;
  std::string collector_;
  socket_address addr_;
  int fd_ = -1;
  state state_ = state::waiting;
  std::deque<pending> queue_;
  size_t buffered_records_ = 0;
  size_t buffered_bytes_ = 0;
  std::chrono::milliseconds backoff_;
  std::chrono::steady_clock::time_point next_attempt_{};
  uint64_t connects_ = 0;
  uint64_t connect_failures_ = 0;
  uint64_t disconnects_ = 0;
  std::chrono::steady_clock::time_point last_drop_log_{};
};

} // namespace metaprobe::ipfix
