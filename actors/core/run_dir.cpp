// SPDX-License-Identifier: Apache-2.0
#include "core/run_dir.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/ipc_path.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace metaprobe {

std::string prepare_run_dir(const std::string& dir, std::string& warning) {
  warning.clear();
  if (dir.empty())
    return "run_dir is empty";
  std::error_code ec;
  const auto parent = std::filesystem::path(dir).parent_path();
  if (!parent.empty())
    std::filesystem::create_directories(parent, ec); // mkdir below reports failures
  if (::mkdir(dir.c_str(), 0700) == 0)
    return {};
  if (errno != EEXIST)
    return "cannot create run_dir " + dir + ": " + std::strerror(errno);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    return "cannot use run_dir " + dir + ": " + std::strerror(errno);
  if (!S_ISDIR(st.st_mode))
    return "run_dir " + dir + " exists and is not a directory";
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    warning = "run_dir " + dir + " is accessible to other users (mode " + mode +
              "): its sockets and state files are 0600, but chmod 0700 it";
  }
  return {};
}

std::string appliance_lock_path(const std::string& run_dir) {
  return run_dir + "/metaprobe.pid";
}

pid_lock::~pid_lock() {
  release();
}

void pid_lock::release() {
  if (fd_ < 0)
    return;
  // Unlinked while still locked: a process that opened the file meanwhile
  // finds, once it has the lock, that the path no longer names its file,
  // and tries again (acquire()).
  ::unlink(path_.c_str());
  ::close(fd_);
  fd_ = -1;
}

pid_lock::pid_lock(pid_lock&& o) noexcept
  : fd_(o.fd_), holder_(o.holder_), error_(std::move(o.error_)), path_(std::move(o.path_)) {
  o.fd_ = -1;
}

pid_lock& pid_lock::operator=(pid_lock&& o) noexcept {
  if (this != &o) {
    release();
    fd_ = o.fd_;
    holder_ = o.holder_;
    error_ = std::move(o.error_);
    path_ = std::move(o.path_);
    o.fd_ = -1;
  }
  return *this;
}

pid_lock pid_lock::acquire(const std::string& path) {
  pid_lock l;
  l.path_ = path;
  int fd = -1;
  int rc = 0;
  for (int attempt = 0;; ++attempt) {
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
      l.error_ = "cannot open " + path + ": " + std::strerror(errno);
      return l;
    }
    do {
      rc = ::flock(fd, LOCK_EX | LOCK_NB);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0)
      break;
    // locked: is it still the file at `path` (the holder unlinks it on
    // release, see release())?
    struct stat at_path {}, ours {};
    if (::stat(path.c_str(), &at_path) == 0 && ::fstat(fd, &ours) == 0 &&
        at_path.st_dev == ours.st_dev && at_path.st_ino == ours.st_ino)
      break;
    ::close(fd);
    if (attempt == 10) {
      l.error_ = "cannot lock " + path + ": it keeps being replaced";
      return l;
    }
  }
  if (rc != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      char buf[32] = {};
      ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
      l.holder_ = n > 0 ? static_cast<pid_t>(std::strtol(buf, nullptr, 10)) : 0;
      l.error_ = l.holder_ > 0 ? "held by pid " + std::to_string(l.holder_)
                               : std::string("held by another process");
    } else {
      l.error_ = "cannot lock " + path + ": " + std::strerror(err);
    }
    ::close(fd);
    return l;
  }
  const std::string text = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, text.data(), text.size(), 0) !=
                                   static_cast<ssize_t>(text.size())) {
    l.error_ = "cannot write " + path + ": " + std::strerror(errno);
    ::close(fd);
    return l;
  }
  l.fd_ = fd;
  return l;
}

namespace {

std::string holder_text(const pid_lock& l) {
  return l.holder() > 0 ? "metaprobe pid " + std::to_string(l.holder()) : "another metaprobe";
}

} // namespace

std::string claim_instance(const std::string& run_dir, const std::string& channel_base,
                           const std::vector<channel>& channels, std::vector<pid_lock>& held) {
  held.clear();
  pid_lock own = pid_lock::acquire(appliance_lock_path(run_dir));
  if (!own.held()) {
    if (own.holder() > 0 || own.error().rfind("held", 0) == 0)
      return "run_dir " + run_dir + " is in use by " + holder_text(own) +
             " (another appliance); give this one its own run_dir";
    return own.error();
  }
  held.push_back(std::move(own));
  const std::string base_file = ipc_file(channel_base);
  const std::string auto_file = run_dir + "/channel";
  if (!base_file.empty() && base_file != auto_file) {
    std::error_code ec;
    const auto parent = std::filesystem::path(base_file).parent_path();
    if (!parent.empty())
      std::filesystem::create_directories(parent, ec);
    pid_lock l = pid_lock::acquire(base_file + ".lock");
    if (!l.held()) {
      if (l.holder() > 0 || l.error().rfind("held", 0) == 0)
        return "channel_endpoint " + channel_base + " is in use by " + holder_text(l) +
               " (another appliance, lock " + l.path() + "); give this one its own "
               "channel_endpoint";
      return l.error();
    }
    held.push_back(std::move(l));
  }
  for (const auto& ch : channels) {
    const std::string ep = channel_endpoint(channel_base, ch);
    const std::string path = ipc_file(ep);
    std::string problem = path.empty() ? tcp_port_problem(ep) : ipc_path_problem(path);
    if (!problem.empty()) {
      held.clear();
      return "channel " + ch.name() + " (" + ep + "): " + problem +
             "; give this appliance its own channel_endpoint";
    }
  }
  return {};
}

} // namespace metaprobe
