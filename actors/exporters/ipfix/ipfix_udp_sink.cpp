// SPDX-License-Identifier: Apache-2.0
#include "exporters/ipfix/ipfix_udp_sink.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "exporters/ipfix/net_util.hpp"

namespace metaprobe::ipfix {

ipfix_udp_sink::ipfix_udp_sink(const ipfix_sink_config& cfg, const std::string& collector)
  : ipfix_sink_base("ipfix:udp:" + collector, collector, ipfix_kind_mask(cfg),
                    make_encoder_config(cfg, cfg.mtu, cfg.stats_interval_s > 0)),
    refresh_(cfg.template_refresh_s) {
  stats_interval_ = std::chrono::seconds(cfg.stats_interval_s);
  const std::string what = "IPFIX UDP collector " + collector;
  socket_address sa = resolve_endpoint(collector, SOCK_DGRAM);
  fd_ = ::socket(sa.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error(what + ": socket: " + std::strerror(errno));
  try {
    bind_to_device(fd_, cfg.device, what);
    int sndbuf = static_cast<int>(cfg.udp_send_buffer);
    if (sndbuf > 0) setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf); // best effort
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&sa.addr), sa.len) != 0)
      throw std::runtime_error(what + ": connect: " + std::strerror(errno));
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

ipfix_udp_sink::~ipfix_udp_sink() {
  flush();
  if (fd_ >= 0) ::close(fd_);
}

void ipfix_udp_sink::refresh_templates(std::chrono::system_clock::time_point now) {
  encoder_.flush(); // templates lead a message
  send_templates();
  templates_sent_ = true;
  last_templates_ = now;
}

bool ipfix_udp_sink::admit() {
  if (!templates_sent_) refresh_templates(std::chrono::system_clock::now());
  return true;
}

void ipfix_udp_sink::tick(std::chrono::system_clock::time_point now) {
  if (!templates_sent_ || (refresh_.count() > 0 && now - last_templates_ >= refresh_))
    refresh_templates(now);
  periodic_stats(now);
  encoder_.flush();
}

void ipfix_udp_sink::flush() { encoder_.flush(); }

void ipfix_udp_sink::deliver(const uint8_t* data, size_t len, uint32_t records) {
  const ssize_t n = ::send(fd_, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n == static_cast<ssize_t>(len)) {
    ++c_.messages_sent;
    c_.octets_sent += len;
    c_.records_sent += records;
    return;
  }
  const int e = n < 0 ? errno : EMSGSIZE;
  ++c_.send_errors;
  c_.records_dropped += records;
  const auto now = std::chrono::steady_clock::now();
  if (e != last_errno_ || now - last_error_log_ >= std::chrono::seconds(10)) {
    if (e == EAGAIN || e == EWOULDBLOCK)
      spdlog::warn("[NFLW] very long operation: {} not ready, message skipped ({} record(s) dropped, "
                   "{} send error(s) so far)",
                   name_, records, c_.send_errors);
    else
      spdlog::warn("[NFLW] {}: send failed: {} ({} record(s) dropped, {} send error(s) so far)", name_,
                   std::strerror(e), records, c_.send_errors);
    last_errno_ = e;
    last_error_log_ = now;
  }
}

} // namespace metaprobe::ipfix
