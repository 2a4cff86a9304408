// SPDX-License-Identifier: Apache-2.0
#include "exporters/ipfix/ipfix_file_sink.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace metaprobe::ipfix {

ipfix_file_sink::ipfix_file_sink(const ipfix_sink_config& cfg)
  : ipfix_sink_base("ipfix:file:" + cfg.file_path, cfg.file_path, ipfix_kind_mask(cfg),
                    make_encoder_config(cfg, cfg.stream_message_size, cfg.stats_interval_s > 0)),
    path_(cfg.file_path) {
  stats_interval_ = std::chrono::seconds(cfg.stats_interval_s);
  // its folder is made as for the text files (a fresh output volume)
  std::error_code ec;
  const auto folder = std::filesystem::path(cfg.file_path).parent_path();
  if (!folder.empty())
    std::filesystem::create_directories(folder, ec); // open reports what fails
  const int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW |
                    (cfg.file_append ? 0 : O_TRUNC);
  fd_ = ::open(cfg.file_path.c_str(), flags, cfg.file_mode);
  if (fd_ < 0)
    throw std::runtime_error("IPFIX file " + cfg.file_path + ": cannot create: " +
                             std::strerror(errno) +
                             (errno == ELOOP ? " (a symbolic link: refused)" : ""));
  struct stat st {};
  if (::fstat(fd_, &st) == 0)
    file_end_ = static_cast<uint64_t>(st.st_size);
  // After a crash the restarted exporter continues the file: the new
  // session starts again with templates at sequence 0, which a file
  // reader handles like a new transport session.
  if (file_end_ > 0)
    spdlog::warn("{}: continuing the file of the crashed exporter", name_);
  // The templates as a message of their own, kept: they go first into the
  // file, and again before the first message written after they were lost.
  capturing_templates_ = true;
  send_templates();
  encoder_.flush();
  capturing_templates_ = false;
  write_out();
}

ipfix_file_sink::~ipfix_file_sink() {
  // The final figures close the file; they count what was written before.
  flush(); // writes what is held, or drops and counts it
  if (stats_interval_.count() > 0) {
    send_stats();
    flush();
  }
  if (fd_ >= 0) ::close(fd_);
}

void ipfix_file_sink::deliver(const uint8_t* data, size_t len, uint32_t records) {
  if (capturing_templates_) {
    templates_.insert(templates_.end(), data, data + len);
    return;
  }
  held_.insert(held_.end(), data, data + len);
  held_msgs_.push_back({len, records});
  held_records_ += records;
  if (held_.size() >= write_buffer_bytes)
    write_out();
}

bool ipfix_file_sink::write_all(const uint8_t* data, size_t len) {
  size_t done = 0;
  while (done < len) {
    const ssize_t n = ::write(fd_, data + done, len - done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    if (n == 0) { // no progress: treat as a full device
      errno = ENOSPC;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

void ipfix_file_sink::write_out() {
  if (held_msgs_.empty() && templates_in_file_)
    return;
  if (!templates_in_file_) {
    if (!write_all(templates_.data(), templates_.size())) {
      fail(errno, 0);
      return;
    }
    templates_in_file_ = true;
    file_end_ += templates_.size();
    ++c_.messages_sent;
    c_.octets_sent += templates_.size();
  }
  size_t off = 0;
  for (size_t i = 0; i < held_msgs_.size(); ++i) {
    const held_message& m = held_msgs_[i];
    if (!write_all(held_.data() + off, m.len)) {
      fail(errno, i);
      return;
    }
    off += m.len;
    file_end_ += m.len;
    ++c_.messages_sent;
    c_.octets_sent += m.len;
    c_.records_sent += m.records;
    held_records_ -= m.records;
  }
  held_.clear();
  held_msgs_.clear();
  if (failing_) {
    spdlog::info("{}: writes resumed; {} records were dropped while they failed", name_,
                 episode_dropped_);
    failing_ = false;
    episode_dropped_ = 0;
  }
}

void ipfix_file_sink::fail(int err, size_t from_message) {
  ++c_.send_errors;
  // No torn message: back to the end of the last whole one.
  if (::ftruncate(fd_, static_cast<off_t>(file_end_)) == 0) {
    ++truncations_;
  } else {
    spdlog::error("{}: cannot truncate the torn message after a failed write ({}): the file "
                  "ends with a partial message",
                  name_, std::strerror(errno));
  }
  if (file_end_ == 0)
    templates_in_file_ = false; // the templates go first again
  uint64_t dropped = 0;
  for (size_t i = from_message; i < held_msgs_.size(); ++i)
    dropped += held_msgs_[i].records;
  c_.records_dropped += dropped;
  held_.clear();
  held_msgs_.clear();
  held_records_ = 0;
  episode_dropped_ += dropped;
  if (!failing_) {
    ++write_failures_;
    spdlog::error("{}: write failed: {}; {} records dropped, the file is cut back to its last "
                  "whole message; retrying every tick",
                  name_, std::strerror(err), dropped);
  }
  failing_ = true;
}

void ipfix_file_sink::tick(std::chrono::system_clock::time_point now) {
  flush(); // a statistics record counts the records written before it
  periodic_stats(now);
  flush();
}

void ipfix_file_sink::flush() {
  encoder_.flush();
  write_out();
}

void ipfix_file_sink::extra_counters(std::vector<sink_counter>& out) const {
  out.push_back({"write_failures", write_failures_, label_});
  out.push_back({"truncations", truncations_, label_});
  out.push_back({"held_records", held_records_, label_});
}

} // namespace metaprobe::ipfix
