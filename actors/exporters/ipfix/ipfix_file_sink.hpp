// SPDX-License-Identifier: Apache-2.0
#pragma once
// IPFIX file (RFC 5655): a stream of IPFIX messages, templates at the start
// of the file. Messages may be up to stream_message_size octets (default
// 65535), so a record up to ~65 KB fits. The file is created (truncated)
// at construction, or continued (file_append, after a crash). With
// stats_interval_s > 0 an exporter statistics options record (RFC 7011
// section 4.3, template 1100) is written every stats_interval_s (the same
// rule as the UDP and TCP sinks: the first tick starts the interval) and
// once more when the sink is destroyed (file closed), so a finished file
// ends with the final figures.
//
// Honest accounting on storage faults: finished messages are held in the
// sink's own buffer (at most write_buffer_bytes) and written with write(2)
// on tick(), flush() or when the buffer is full. A record counts as sent
// only when all bytes of its message were written. When a write fails
// (ENOSPC, EIO, EDQUOT, ...) the file is truncated back to the end of the
// last whole message (no torn message is left), the message and every one
// still held are dropped (records_dropped, send_errors; an error is logged
// once per episode), and the next tick tries again with new messages; if
// the templates at the start did not reach the file they are written
// before the first message that does, so the file always decodes. The
// sequence numbers still count the dropped records: a reader sees the gap.
// A file that cannot be truncated any more (the file system refuses even
// that) keeps its torn tail and says so in the log.
//
// Files are created with mode file_mode (0640) and O_NOFOLLOW: a symbolic
// link in place of the file is refused.

#include <cstdint>
#include <vector>

#include "exporters/ipfix/ipfix_sink_base.hpp"

namespace metaprobe::ipfix {

class ipfix_file_sink final : public ipfix_sink_base {
public:
  static constexpr size_t write_buffer_bytes = 1u << 20;

  // Throws std::runtime_error when the file cannot be created.
  explicit ipfix_file_sink(const ipfix_sink_config& cfg);
  ~ipfix_file_sink() override;
  ipfix_file_sink(const ipfix_file_sink&) = delete;
  ipfix_file_sink& operator=(const ipfix_file_sink&) = delete;

  void tick(std::chrono::system_clock::time_point now) override;
  void flush() override;

protected:
  void deliver(const uint8_t* data, size_t len, uint32_t records) override;
  uint64_t queued_records() const override { return held_records_; }
  void extra_counters(std::vector<sink_counter>& out) const override;

private:
  struct held_message {
    size_t len;
    uint32_t records;
  };
  // Writes what is held; on a failure truncates and drops (see above).
  void write_out();
  // All of data[0..len) at the end of the file; false (errno set) if not.
  bool write_all(const uint8_t* data, size_t len);
  void fail(int err, size_t from_message);

  int fd_ = -1;
  std::string path_;
  uint64_t file_end_ = 0;           // the end of the last whole message in the file
  bool capturing_templates_ = false;
  std::vector<uint8_t> templates_;  // the template message written at the start
  bool templates_in_file_ = false;
  std::vector<uint8_t> held_;       // finished messages not yet written
  std::vector<held_message> held_msgs_;
  uint64_t held_records_ = 0;
  bool failing_ = false;            // in a write-failure episode
  uint64_t episode_dropped_ = 0;    // records dropped in the current episode
  uint64_t write_failures_ = 0;     // episodes
  uint64_t truncations_ = 0;        // torn tails cut back to a message boundary
};

} // namespace metaprobe::ipfix
