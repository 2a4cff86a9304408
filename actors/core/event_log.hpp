// SPDX-License-Identifier: Apache-2.0
#pragma once
// Statistics and alert log files (the seeds' fastdpi_stat.log and
// fastdpi_alert.log): whole lines appended to a file in `log_dir`.
//
// Line format: `[TAG     ][YYYY/MM/DD-HH:MM:SS:uuuuuu] text`, the tag
// left-aligned in 8 characters (`[STAT    ]`, `[ALERT   ]`), the time in
// LOCAL time with microseconds (the seed's `[2022/11/20-17:55:03:213770]`).
//
// File names: `<log_dir>/<tag>_stat.log` and `<log_dir>/<tag>_alert.log`
// where `<tag>` names the process, e.g. `exporter-clickstream.ipfix-0` for
// instance 0 of the clickstream IPFIX exporter (see event_log_tag()). Each
// process writes its own files, so the lines of different exporter
// instances stay apart while every line keeps the seed's format.
//
// Several processes may append to one directory: the file is opened with
// O_APPEND and every line goes out in one write() call, so lines are never
// interleaved within a line.
//
// Threading: one event_log is used by one thread. Errors: open() reports
// a problem (directory cannot be created, file cannot be opened) as text;
// a failed append() is counted and returns false, it never throws.

#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

namespace metaprobe {

class event_log {
public:
  event_log() = default;
  ~event_log();
  event_log(event_log&& o) noexcept;
  event_log& operator=(event_log&& o) noexcept;
  event_log(const event_log&) = delete;
  event_log& operator=(const event_log&) = delete;

  // Opens (creates) `path` for appending; the directories above it are
  // created when missing (like mkdir -p). Returns "" on success,
  // else a message naming the path and the reason.
  std::string open(const std::string& path);
  bool is_open() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }

  // Appends `[tag     ][time] text\n` in one write(). False when not open
  // or the write failed (counted in failed_writes()).
  bool append(std::string_view tag, std::chrono::system_clock::time_point t, std::string_view text);
  uint64_t lines() const { return lines_; }
  uint64_t failed_writes() const { return failed_; }

private:
  int fd_ = -1;
  std::string path_;
  uint64_t lines_ = 0;
  uint64_t failed_ = 0;
};

// `YYYY/MM/DD-HH:MM:SS:uuuuuu` of broken-down time `tm` and `usec`
// (0..999999).
std::string format_event_time(const std::tm& tm, uint32_t usec);
// The same for `t` in local time.
std::string format_event_time(std::chrono::system_clock::time_point t);
// One whole line without the newline: `[tag     ][time] text`.
std::string format_event_line(std::string_view tag, std::string_view time, std::string_view text);

// `<role>-<channel>-<instance>`, e.g. ("exporter", "clickstream.ipfix", 0)
// -> "exporter-clickstream.ipfix-0".
std::string event_log_tag(std::string_view role, std::string_view channel, int instance);
// `<log_dir>/<tag>_<kind>.log`, kind "stat" or "alert".
std::string event_log_path(const std::string& log_dir, std::string_view tag, std::string_view kind);

} // namespace metaprobe
