// SPDX-License-Identifier: Apache-2.0
#include "exporters/text/text_sink.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <system_error>

#include <spdlog/spdlog.h>

namespace metaprobe {

namespace {

std::shared_ptr<spdlog::logger> make_logger() {
  // Named for this component, writing wherever the default logger writes.
  auto def = spdlog::default_logger();
  auto log = std::make_shared<spdlog::logger>("text_sink", def->sinks().begin(), def->sinks().end());
  log->set_level(def->level());
  return log;
}

std::string errno_text(int err) { return std::strerror(err); }

std::string utc_stamp(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return buf;
}

bool exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

std::vector<std::string> split_fields(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t c = s.find(':', start);
    out.push_back(s.substr(start, c == std::string::npos ? std::string::npos : c - start));
    if (c == std::string::npos)
      break;
    start = c + 1;
  }
  return out;
}

std::vector<std::string> default_format(text_kind k) {
  const key_spec* spec = find_key_spec("ajb_save_" + std::string(text_kind_name(k)) + "_format");
  return spec ? split_fields(spec->default_value) : std::vector<std::string>{};
}

class text_file_sink final : public sink {
public:
  explicit text_file_sink(const text_sink_config& cfg)
      : cfg_(cfg),
        formatter_(cfg.kind, cfg.format.empty() ? default_format(cfg.kind) : cfg.format,
                   cfg.ssl_mask),
        log_(make_logger()),
        now_(std::chrono::system_clock::now()) {
    if (cfg_.fsize == 0)
      cfg_.fsize = 1;
    buf_.reserve(static_cast<size_t>(std::min<uint64_t>(cfg_.bufsize, 64 << 20)) + 4096);
  }

  ~text_file_sink() override {
    try {
      flush();
    } catch (...) {
      // flush() reports its own failures; nothing may escape a destructor.
    }
  }

  std::string name() const override {
    return "text:" + std::string(text_kind_name(cfg_.kind)) + ":" + cfg_.path;
  }

  void add(const v1::Record& rec) override {
    line_.clear();
    if (!formatter_.append(rec, line_))
      return;
    if (!ensure_open()) {
      drop(1);
      return;
    }
    uint64_t total = file_bytes_ + buf_.size();
    if (total > 0 && total + line_.size() > cfg_.fsize) {
      finish_file();
      if (!ensure_open()) {
        drop(1);
        return;
      }
    }
    buf_ += line_;
    ++buf_lines_;
    if (buf_.size() >= cfg_.bufsize)
      write_buffer();
    if (fd_ >= 0 && file_bytes_ + buf_.size() >= cfg_.fsize)
      finish_file();
  }

  void tick(std::chrono::system_clock::time_point now) override {
    now_ = now;
    open_blocked_ = false;
    if (fd_ < 0)
      return;
    write_buffer();
    if (fd_ >= 0 && file_bytes_ + buf_.size() > 0 &&
        std::chrono::duration<double>(now_ - opened_at_).count() >= cfg_.ftimeout_s)
      finish_file();
  }

  void flush() override {
    if (fd_ >= 0)
      finish_file();
  }

  uint64_t held_records() const override { return buf_lines_; }

  std::vector<sink_counter> counters() const override {
    std::string label = std::string(text_kind_name(cfg_.kind)) + ":" + cfg_.path;
    return {
        {"records_written", records_written_, label},
        {"records_dropped", records_dropped_, label},
        {"bytes_written", bytes_written_, label},
        {"files_finished", files_finished_, label},
        {"write_errors", write_errors_, label},
    };
  }

private:
  void drop(uint64_t n) {
    records_dropped_ += n;
    episode_drops_ += n;
  }

  // Logs the first error of an episode; later ones are only counted.
  void report_error(const std::string& what, int err) {
    ++write_errors_;
    if (in_episode_)
      return;
    in_episode_ = true;
    log_->error("text {}: {}: {}; records are dropped (counted) until this recovers",
                text_kind_name(cfg_.kind), what, errno_text(err));
  }

  void recovered() {
    if (!in_episode_)
      return;
    log_->info("text {}: writing to {} again; {} records were dropped", text_kind_name(cfg_.kind),
               cfg_.path, episode_drops_);
    in_episode_ = false;
    episode_drops_ = 0;
  }

  bool ensure_open() {
    if (fd_ >= 0)
      return true;
    if (open_blocked_)
      return false;
    std::error_code ec;
    std::filesystem::create_directories(cfg_.path, ec);
    if (ec) {
      open_blocked_ = true;
      report_error("cannot create directory " + cfg_.path, ec.value());
      return false;
    }
    std::string base;
    for (int tries = 0; tries < 1000; ++tries) {
      char seq[16];
      std::snprintf(seq, sizeof seq, "%06llu", static_cast<unsigned long long>(seq_++ % 1000000));
      base = cfg_.path + "/" + std::string(text_kind_name(cfg_.kind)) + "_" + utc_stamp(now_) + "_" +
             std::to_string(cfg_.instance) + "_" + seq + ".txt";
      if (!exists(base))
        break;
    }
    std::string tmp = base + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                    static_cast<mode_t>(cfg_.file_mode));
    if (fd < 0) {
      open_blocked_ = true;
      report_error("cannot create " + tmp, errno);
      return false;
    }
    fd_ = fd;
    final_path_ = base;
    tmp_path_ = tmp;
    file_bytes_ = 0;
    file_lines_ = 0;
    opened_at_ = now_;
    return true;
  }

  // Writes the buffered whole lines; on failure cuts the file back to its
  // last whole line and counts the buffered records as dropped.
  bool write_buffer() {
    if (buf_.empty())
      return true;
    if (fd_ < 0) {
      drop(buf_lines_);
      buf_.clear();
      buf_lines_ = 0;
      return false;
    }
    size_t off = 0;
    while (off < buf_.size()) {
      ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        int err = n < 0 ? errno : ENOSPC;
        report_error("cannot write " + tmp_path_, err);
        drop(buf_lines_);
        buf_.clear();
        buf_lines_ = 0;
        if (off > 0 && ::ftruncate(fd_, static_cast<off_t>(file_bytes_)) != 0) {
          // The file may now end in a partial line: give it up rather than
          // publish it.
          abandon_file(errno);
        } else if (off > 0 && ::lseek(fd_, static_cast<off_t>(file_bytes_), SEEK_SET) < 0) {
          abandon_file(errno);
        }
        return false;
      }
      off += static_cast<size_t>(n);
    }
    file_bytes_ += buf_.size();
    bytes_written_ += buf_.size();
    records_written_ += buf_lines_;
    file_lines_ += buf_lines_;
    buf_.clear();
    buf_lines_ = 0;
    recovered();
    return true;
  }

  void abandon_file(int err) {
    log_->error("text {}: cannot cut {} back to whole lines ({}); removing it, {} records lost",
                text_kind_name(cfg_.kind), tmp_path_, errno_text(err), file_lines_);
    drop(file_lines_);
    ::close(fd_);
    ::unlink(tmp_path_.c_str());
    fd_ = -1;
    file_bytes_ = 0;
    file_lines_ = 0;
  }

  void finish_file() {
    if (fd_ < 0)
      return;
    write_buffer();
    if (fd_ < 0)
      return;
    if (file_bytes_ == 0) {
      // Every write failed: publish nothing.
      ::close(fd_);
      ::unlink(tmp_path_.c_str());
      fd_ = -1;
      return;
    }
    if (cfg_.fsync && ::fdatasync(fd_) != 0)
      report_error("cannot sync " + tmp_path_, errno);
    if (::close(fd_) != 0)
      report_error("error closing " + tmp_path_, errno);
    fd_ = -1;
    if (::rename(tmp_path_.c_str(), final_path_.c_str()) != 0) {
      // The lines are on disk under the .tmp name; say where.
      report_error("cannot rename " + tmp_path_ + " to " + final_path_, errno);
      return;
    }
    ++files_finished_;
    file_bytes_ = 0;
    file_lines_ = 0;
  }

  text_sink_config cfg_;
  text_line_formatter formatter_;
  std::shared_ptr<spdlog::logger> log_;

  std::chrono::system_clock::time_point now_;
  std::chrono::system_clock::time_point opened_at_;
  int fd_ = -1;
  std::string tmp_path_;
  std::string final_path_;
  uint64_t seq_ = 0;
  uint64_t file_bytes_ = 0; // bytes written to the open file
  uint64_t file_lines_ = 0; // lines written to the open file
  std::string buf_;         // whole lines not yet written
  uint64_t buf_lines_ = 0;
  std::string line_;        // scratch
  bool open_blocked_ = false; // opening failed; retry at the next tick
  bool in_episode_ = false;
  uint64_t episode_drops_ = 0;

  uint64_t records_written_ = 0;
  uint64_t records_dropped_ = 0;
  uint64_t bytes_written_ = 0;
  uint64_t files_finished_ = 0;
  uint64_t write_errors_ = 0;
};

} // namespace

std::unique_ptr<sink> make_text_sink(const text_sink_config& cfg) {
  return std::make_unique<text_file_sink>(cfg);
}

std::vector<text_sink_config> text_sinks_from_config(const config& cfg) {
  std::vector<text_sink_config> out;
  for (text_kind k : {text_kind::url, text_kind::ssl, text_kind::sip, text_kind::dns}) {
    std::string kind(text_kind_name(k));
    int64_t save = cfg.integer("ajb_save_" + kind);
    bool on = k == text_kind::dns ? (save == 1 || save == 2) : save != 0;
    if (!on)
      continue;
    text_sink_config c;
    c.kind = k;
    c.path = cfg.str("ajb_" + kind + "_path");
    c.format = cfg.fields("ajb_save_" + kind + "_format");
    c.fsize = cfg.size("ajb_" + kind + "_fsize");
    c.ftimeout_s = cfg.seconds("ajb_" + kind + "_ftimeout");
    c.bufsize = cfg.size("ajb_" + kind + "_bufsize");
    c.ssl_mask = k == text_kind::ssl ? save : -1;
    c.file_mode = static_cast<uint32_t>(std::stoul(cfg.str("output_mode"), nullptr, 8));
    out.push_back(std::move(c));
  }
  return out;
}

std::string prepare_text_dir(const std::string& dir) {
  if (dir.empty())
    return "text export directory is empty";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return "cannot create directory '" + dir + "': " + ec.message();
  if (!std::filesystem::is_directory(dir, ec))
    return "'" + dir + "' is not a directory";
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    return "cannot write to directory '" + dir + "': " + errno_text(errno);
  return {};
}

} // namespace metaprobe
