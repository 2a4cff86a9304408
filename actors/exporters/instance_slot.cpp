// SPDX-License-Identifier: Apache-2.0
#include "exporters/instance_slot.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <utility>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace metaprobe {

namespace {

std::runtime_error sys_error(const std::string& what, const std::string& path) {
  return std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

// Writes all of `text` at offset 0 and cuts the file there.
bool put_text(int fd, const std::string& text) {
  if (::ftruncate(fd, 0) != 0)
    return false;
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::pwrite(fd, text.data() + done, text.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

} // namespace

std::string instance_slot_path(const std::string& run_dir, const channel& ch, int instance) {
  return run_dir + "/" + ch.name() + "-" + std::to_string(instance) + ".slot";
}

instance_slot instance_slot::claim(const std::string& run_dir, const channel& ch, int limit) {
  for (int i = 0; i < limit; ++i) {
    std::string path = instance_slot_path(run_dir, ch, i);
    bool writable = true;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno == EACCES) {
      // created by another user: locking needs no write access
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      writable = false;
    }
    if (fd < 0)
      throw sys_error("cannot open instance slot", path);
    int rc;
    do {
      rc = ::flock(fd, LOCK_EX | LOCK_NB);
    } while (rc != 0 && errno == EINTR);
    if (rc == 0) {
      if (writable)
        put_text(fd, std::to_string(::getpid()) + "\n"); // informational only
      return instance_slot(fd, i, std::move(path));
    }
    const int err = errno;
    ::close(fd);
    if (err != EWOULDBLOCK) {
      errno = err;
      throw sys_error("cannot lock instance slot", path);
    }
  }
  throw std::runtime_error("every instance slot of channel " + ch.name() + " (0.." +
                           std::to_string(limit - 1) + ") is taken by a running exporter (" +
                           instance_slot_path(run_dir, ch, 0) + " ...)");
}

instance_slot::instance_slot(int fd, int instance, std::string path)
  : fd_(fd), instance_(instance), path_(std::move(path)) {
}

instance_slot::instance_slot(instance_slot&& other) noexcept
  : fd_(std::exchange(other.fd_, -1)), instance_(std::exchange(other.instance_, -1)),
    path_(std::move(other.path_)) {
}

instance_slot& instance_slot::operator=(instance_slot&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = std::exchange(other.fd_, -1);
    instance_ = std::exchange(other.instance_, -1);
    path_ = std::move(other.path_);
  }
  return *this;
}

instance_slot::~instance_slot() {
  release();
}

void instance_slot::release() {
  if (fd_ >= 0)
    ::close(fd_); // the last descriptor of the open file: the lock goes with it
  fd_ = -1;
}

void write_instance_file(const std::string& path, int instance) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0)
    throw sys_error("cannot write instance file", tmp);
  const bool ok = put_text(fd, std::to_string(instance) + "\n");
  const int err = errno;
  if (::close(fd) != 0 || !ok) {
    errno = ok ? errno : err;
    ::unlink(tmp.c_str());
    throw sys_error("cannot write instance file", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int rerr = errno;
    ::unlink(tmp.c_str());
    errno = rerr;
    throw sys_error("cannot rename instance file to", path);
  }
}

} // namespace metaprobe
