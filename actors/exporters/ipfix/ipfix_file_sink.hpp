// SPDX-License-Identifier: Apache-2.0
#pragma once
// IPFIX file (RFC 5655): a stream of IPFIX messages, templates at the start
// of the file. Messages may be up to stream_message_size octets (default
// 65535), so a record up to ~65 KB fits. The file is created (truncated)
// at construction; tick() and flush() push buffered messages to the file.
// With stats_interval_s > 0 an exporter statistics options record (RFC 7011
// section 4.3, template 1100) is written every stats_interval_s (the same
// rule as the UDP and TCP sinks: the first tick starts the interval) and
// once more when the sink is destroyed (file closed), so a finished file
// ends with the final figures.

#include <cstdio>

#include "exporters/ipfix/ipfix_sink_base.hpp"

namespace metaprobe::ipfix {

class ipfix_file_sink final : public ipfix_sink_base {
public:
  // Throws std::runtime_error when the file cannot be created.
  explicit ipfix_file_sink(const ipfix_sink_config& cfg);
  ~ipfix_file_sink() override;
  ipfix_file_sink(const ipfix_file_sink&) = delete;
  ipfix_file_sink& operator=(const ipfix_file_sink&) = delete;

  void tick(std::chrono::system_clock::time_point now) override;
  void flush() override;

protected:
  void deliver(const uint8_t* data, size_t len, uint32_t records) override;

private:
  std::FILE* f_ = nullptr;
  bool write_failed_ = false;
};

} // namespace metaprobe::ipfix
