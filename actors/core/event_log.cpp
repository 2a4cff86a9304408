// SPDX-License-Identifier: Apache-2.0
#include "core/event_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace metaprobe {

event_log::~event_log() {
  if (fd_ >= 0) ::close(fd_);
}

event_log::event_log(event_log&& o) noexcept
  : fd_(o.fd_), path_(std::move(o.path_)), lines_(o.lines_), failed_(o.failed_) {
  o.fd_ = -1;
}

event_log& event_log::operator=(event_log&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    lines_ = o.lines_;
    failed_ = o.failed_;
    o.fd_ = -1;
  }
  return *this;
}

std::string event_log::open(const std::string& path) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  path_ = path;
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return "log directory " + dir.string() + ": cannot create: " + ec.message();
  }
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) return "log file " + path + ": cannot open: " + std::strerror(errno);
  return {};
}

bool event_log::append(std::string_view tag, std::chrono::system_clock::time_point t,
                       std::string_view text) {
  if (fd_ < 0) return false;
  std::string line = format_event_line(tag, format_event_time(t), text);
  line.push_back('\n');
  ssize_t n;
  do {
    n = ::write(fd_, line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(line.size())) {
    ++failed_;
    return false;
  }
  ++lines_;
  return true;
}

std::string format_event_time(const std::tm& tm, uint32_t usec) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d/%02d/%02d-%02d:%02d:%02d:%06u", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec % 1000000u);
  return buf;
}

std::string format_event_time(std::chrono::system_clock::time_point t) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1000000);
  long long frac = us % 1000000;
  if (frac < 0) { // before 1970: floor division
    frac += 1000000;
    --secs;
  }
  std::tm tm{};
  localtime_r(&secs, &tm);
  return format_event_time(tm, static_cast<uint32_t>(frac));
}

std::string format_event_line(std::string_view tag, std::string_view time, std::string_view text) {
  std::string out;
  out.reserve(12 + time.size() + text.size() + tag.size());
  out += '[';
  out += tag;
  if (tag.size() < 8) out.append(8 - tag.size(), ' ');
  out += "][";
  out += time;
  out += "] ";
  out += text;
  return out;
}

std::string event_log_tag(std::string_view role, std::string_view channel, int instance) {
  std::string out(role);
  out += '-';
  out += channel;
  out += '-';
  out += std::to_string(instance);
  return out;
}

std::string event_log_path(const std::string& log_dir, std::string_view tag, std::string_view kind) {
  std::string out = log_dir.empty() ? std::string(".") : log_dir;
  if (out.back() != '/') out += '/';
  out += tag;
  out += '_';
  out += kind;
  out += ".log";
  return out;
}

} // namespace metaprobe
