// SPDX-License-Identifier: Apache-2.0
#pragma once
// IPFIX over UDP to one collector (RFC 7011 §10.3). Own socket, own
// session. Templates go out before the first data record and again every
// template_refresh_s. Sends are non-blocking: a message the kernel does not
// take (full socket buffer, ICMP unreachable reported) is dropped and its
// records counted, never waited for. tick() sends any partly filled message.

#include <chrono>

#include "exporters/ipfix/ipfix_sink_base.hpp"

namespace metaprobe::ipfix {

class ipfix_udp_sink final : public ipfix_sink_base {
public:
  // Throws std::runtime_error (bad endpoint, socket, ipfix_dev).
  ipfix_udp_sink(const ipfix_sink_config& cfg, const std::string& collector);
  ~ipfix_udp_sink() override;
  ipfix_udp_sink(const ipfix_udp_sink&) = delete;
  ipfix_udp_sink& operator=(const ipfix_udp_sink&) = delete;

  void tick(std::chrono::system_clock::time_point now) override;
  void flush() override;

protected:
  void deliver(const uint8_t* data, size_t len, uint32_t records) override;
  bool admit() override;

private:
  void refresh_templates(std::chrono::system_clock::time_point now);

  int fd_ = -1;
  std::chrono::seconds refresh_;
  bool templates_sent_ = false;
  std::chrono::system_clock::time_point last_templates_{};
  int last_errno_ = 0;
  std::chrono::steady_clock::time_point last_error_log_{};
};

} // namespace metaprobe::ipfix
