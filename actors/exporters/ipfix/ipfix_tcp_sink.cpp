// SPDX-License-Identifier: Apache-2.0
#include "exporters/ipfix/ipfix_tcp_sink.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace metaprobe::ipfix {

ipfix_tcp_sink::ipfix_tcp_sink(const ipfix_sink_config& cfg, const std::string& collector)
  : ipfix_sink_base("ipfix:tcp:" + collector, collector, ipfix_kind_mask(cfg),
                    make_encoder_config(cfg, cfg.stream_message_size, cfg.stats_interval_s > 0)),
    cfg_(cfg), collector_(collector), addr_(resolve_endpoint(collector, SOCK_STREAM)),
    backoff_(std::max<uint32_t>(cfg.tcp_reconnect_min_ms, 1)) {
  stats_interval_ = std::chrono::seconds(cfg.stats_interval_s);
  if (!cfg_.device.empty()) {
    // fail now, with a clear error, rather than on every reconnect
    int probe = ::socket(addr_.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) throw std::runtime_error("IPFIX TCP collector " + collector + ": socket: " + std::strerror(errno));
    try {
      bind_to_device(probe, cfg_.device, "IPFIX TCP collector " + collector);
    } catch (...) {
      ::close(probe);
      throw;
    }
    ::close(probe);
  }
  start_session();
  try_connect();
}

ipfix_tcp_sink::~ipfix_tcp_sink() {
  flush(); // everything sent and acknowledged, or dropped and the connection aborted
  if (fd_ >= 0) ::close(fd_);
}

void ipfix_tcp_sink::drop_unconfirmed() {
  c_.records_dropped += queued_records_ + unacked_records_;
  records_lost_in_flight_ += unacked_records_;
  queue_.clear();
  queued_records_ = 0;
  buffered_bytes_ = 0;
  unacked_.clear();
  unacked_records_ = 0;
  stream_written_ = 0;
}

void ipfix_tcp_sink::start_session() {
  const uint32_t discarded = encoder_.reset();
  c_.records_dropped += discarded;
  drop_unconfirmed();
  send_templates(); // first in the new session's stream
}

void ipfix_tcp_sink::update_acks() {
  if (fd_ < 0 || unacked_.empty()) return;
  int outq = 0;
  if (::ioctl(fd_, SIOCOUTQ, &outq) != 0 || outq < 0) return; // nothing learnt
  const uint64_t unacked = std::min<uint64_t>(stream_written_, static_cast<uint64_t>(outq));
  const uint64_t acked = stream_written_ - unacked;
  while (!unacked_.empty() && unacked_.front().end <= acked) {
    const in_flight& m = unacked_.front();
    ++c_.messages_sent;
    c_.octets_sent += m.octets;
    c_.records_sent += m.records;
    unacked_records_ -= m.records;
    unacked_.pop_front();
  }
}

void ipfix_tcp_sink::abort_connection() {
  if (fd_ < 0) return;
  linger lg{1, 0}; // close() sends a RST and discards the send queue
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  ::close(fd_);
  fd_ = -1;
  state_ = state::waiting;
}

void ipfix_tcp_sink::try_connect() {
  next_attempt_ = std::chrono::steady_clock::now() + backoff_;
  fd_ = ::socket(addr_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    connection_failed("socket", errno);
    return;
  }
  try {
    bind_to_device(fd_, cfg_.device, name_);
  } catch (const std::exception& e) {
    spdlog::warn("{}", e.what());
    connection_failed("SO_BINDTODEVICE", EPERM);
    return;
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr_.addr), addr_.len) == 0) {
    state_ = state::connected;
  } else if (errno == EINPROGRESS) {
    state_ = state::connecting;
    return;
  } else {
    connection_failed("connect", errno);
    return;
  }
  ++connects_;
  backoff_ = std::chrono::milliseconds(std::max<uint32_t>(cfg_.tcp_reconnect_min_ms, 1));
  spdlog::info("{}: connected", name_);
}

void ipfix_tcp_sink::connection_failed(const char* what, int err) {
  const bool was_connected = state_ == state::connected;
  // SIOCOUTQ still answers on a reset connection: the last word on what
  // the collector acknowledged before it went away
  if (was_connected) update_acks();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  state_ = state::waiting;
  if (was_connected) {
    ++disconnects_;
    spdlog::warn("[NFLW] {}: connection lost ({}: {}); {} unsent and {} unacknowledged record(s) "
                 "dropped, reconnecting",
                 name_, what, std::strerror(err), queued_records_ + encoder_.pending_records(),
                 unacked_records_);
    start_session(); // what the broken session had not sent or got acknowledged is lost
  } else {
    ++connect_failures_;
    if (connect_failures_ == 1 || backoff_.count() >= static_cast<long>(cfg_.tcp_reconnect_max_ms))
      spdlog::warn("[NFLW] {}: cannot connect ({}: {}); retrying in {} ms", name_, what,
                   std::strerror(err), backoff_.count());
  }
  next_attempt_ = std::chrono::steady_clock::now() + backoff_;
  backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(std::max(cfg_.tcp_reconnect_max_ms,
                                                                       cfg_.tcp_reconnect_min_ms)));
}

void ipfix_tcp_sink::check_peer_closed() {
  if (state_ != state::connected) return;
  uint8_t b;
  const ssize_t n = ::recv(fd_, &b, 1, MSG_DONTWAIT | MSG_PEEK);
  if (n == 0) {
    connection_failed("recv", ECONNRESET);
  } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    connection_failed("recv", errno);
  }
  // a collector sending us data is ignored (bytes stay in the socket buffer)
}

void ipfix_tcp_sink::send_queue() {
  while (state_ == state::connected && !queue_.empty()) {
    pending& p = queue_.front();
    const ssize_t n = ::send(fd_, p.bytes.data() + p.sent, p.bytes.size() - p.sent,
                             MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      ++c_.send_errors;
      connection_failed("send", errno);
      return;
    }
    p.sent += static_cast<size_t>(n);
    stream_written_ += static_cast<uint64_t>(n);
    if (p.sent < p.bytes.size()) return;
    unacked_.push_back({stream_written_, p.bytes.size(), p.records});
    unacked_records_ += p.records;
    queued_records_ -= p.records;
    buffered_bytes_ -= p.bytes.size();
    queue_.pop_front();
  }
}

void ipfix_tcp_sink::pump() {
  if (state_ == state::waiting && std::chrono::steady_clock::now() >= next_attempt_) try_connect();
  if (state_ == state::connecting) {
    pollfd pfd{fd_, POLLOUT, 0};
    const int r = ::poll(&pfd, 1, 0);
    if (r > 0) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        connection_failed("connect", err);
        return;
      }
      state_ = state::connected;
      ++connects_;
      backoff_ = std::chrono::milliseconds(std::max<uint32_t>(cfg_.tcp_reconnect_min_ms, 1));
      spdlog::info("{}: connected", name_);
    }
  }
  if (state_ == state::connected) send_queue();
  if (state_ == state::connected) update_acks();
}

bool ipfix_tcp_sink::admit() {
  // At most tcp_buffer_records records wait in this process: while the
  // collector is unreachable (with the message being built), and while it
  // is connected but does not read (messages the kernel has not taken).
  // The octet bound is checked in deliver().
  if (state_ == state::connected) {
    if (queued_records_ < cfg_.tcp_buffer_records) return true;
    log_drop("collector not reading, send buffer full");
    return false;
  }
  if (queued_records_ + encoder_.pending_records() < cfg_.tcp_buffer_records) return true;
  log_drop("collector unreachable and buffer full");
  return false;
}

void ipfix_tcp_sink::log_drop(const char* why) {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_drop_log_ < std::chrono::seconds(10)) return;
  last_drop_log_ = now;
  spdlog::warn("[NFLW] very long operation: {}: {}, records dropped ({} so far)", name_, why,
               c_.records_dropped + 1);
}

void ipfix_tcp_sink::deliver(const uint8_t* data, size_t len, uint32_t records) {
  if (buffered_bytes_ + len > cfg_.tcp_buffer_bytes) {
    log_drop("collector too slow, send buffer full");
    c_.records_dropped += records;
    return;
  }
  pending p;
  p.bytes.assign(data, data + len);
  p.records = records;
  queue_.push_back(std::move(p));
  queued_records_ += records;
  buffered_bytes_ += len;
  pump();
}

void ipfix_tcp_sink::tick(std::chrono::system_clock::time_point now) {
  check_peer_closed();
  periodic_stats(now);
  encoder_.flush(); // goes through deliver() -> pump()
  pump();
}

void ipfix_tcp_sink::flush() {
  encoder_.flush();
  const auto deadline =
    std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg_.tcp_flush_timeout_ms);
  for (;;) {
    pump();
    // done: every record written and acknowledged (templates alone waiting
    // for a collector that is not there are no reason to wait)
    if (queued_records_ == 0 && unacked_records_ == 0) return;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (state_ == state::waiting) {
      if (next_attempt_ >= deadline) break;
      wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_attempt_ - now) +
             std::chrono::milliseconds(1);
      ::usleep(static_cast<useconds_t>(std::min<long>(wait.count(), 1000) * 1000));
      continue;
    }
    if (state_ == state::connected && queue_.empty()) {
      // only acknowledgements missing: nothing to poll for, look again soon
      ::usleep(static_cast<useconds_t>(std::min<long>(wait.count(), 5) * 1000));
      continue;
    }
    pollfd pfd{fd_, POLLOUT, 0};
    ::poll(&pfd, 1, static_cast<int>(std::min<long>(wait.count(), 100)));
  }
  // Gave up. Records still buffered are dropped; a connection that holds
  // some of them unacknowledged is aborted so none of them arrives later
  // (the next add() starts a new session and connection).
  update_acks();
  const uint64_t left = queued_records_ + unacked_records_;
  if (left == 0) return;
  spdlog::warn("[NFLW] {}: flush timed out, {} record(s) not acknowledged dropped", name_, left);
  abort_connection();
  start_session();
  next_attempt_ = std::chrono::steady_clock::now() + backoff_;
}

void ipfix_tcp_sink::extra_counters(std::vector<sink_counter>& out) const {
  out.push_back({"connects", connects_, label_});
  out.push_back({"connect_failures", connect_failures_, label_});
  out.push_back({"disconnects", disconnects_, label_});
  out.push_back({"buffered_records", buffered_records(), label_});
  out.push_back({"unacked_records", unacked_records_, label_});
  out.push_back({"records_lost_in_flight", records_lost_in_flight_, label_});
  out.push_back({"connected", state_ == state::connected ? 1u : 0u, label_});
}

} // namespace metaprobe::ipfix
