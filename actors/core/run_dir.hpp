// SPDX-License-Identifier: Apache-2.0
#pragma once
// The instance's own directory (`run_dir`): pid file, delivery state,
// instance slots and, by default, the ipc:// sockets of the record
// channels and control endpoints. Everything here is owner-only: the
// directory 0700, files 0600, opened O_NOFOLLOW | O_CLOEXEC.
//
// The appliance holds an exclusive flock(2) on <run_dir>/metaprobe.pid
// (its pid inside) for its whole run, before it starts any child: a
// second appliance with the same run_dir (or the same explicit ipc
// channel_endpoint, locked as <path>.lock) finds the lock taken and stops
// with the holder's pid before any of its exporters connects anywhere.
// The kernel drops the lock when the holder exits, however it exits; a
// clean exit also removes the file.
//
// Plain functions and one RAII type; errors are returned as text (no
// exceptions), so the mains decide what to log and how to exit.

#include <string>
#include <vector>
#include <sys/types.h>

#include "core/channels.hpp"

namespace metaprobe {

// Creates `dir` (and missing parents) with mode 0700 for the leaf. Returns
// "" when it is usable; otherwise why not. `warning` is set (and "" is
// returned) when an existing directory is group- or world-accessible.
std::string prepare_run_dir(const std::string& dir, std::string& warning);

// <run_dir>/metaprobe.pid
std::string appliance_lock_path(const std::string& run_dir);

class pid_lock {
public:
  pid_lock() = default;
  ~pid_lock();
  pid_lock(pid_lock&& o) noexcept;
  pid_lock& operator=(pid_lock&& o) noexcept;
  pid_lock(const pid_lock&) = delete;
  pid_lock& operator=(const pid_lock&) = delete;

  // Opens (creates 0600, O_NOFOLLOW | O_CLOEXEC) and flocks `path`
  // without waiting, then writes this process's pid into it. On failure
  // returns a lock that is not held(): holder() is the pid written by
  // the process holding it (0 when unknown) and error() says what
  // happened ("held by pid 1234", or the system error).
  static pid_lock acquire(const std::string& path);

  bool held() const { return fd_ >= 0; }
  // Removes the file and drops the lock (also done by the destructor).
  void release();
  pid_t holder() const { return holder_; }
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }

private:
  int fd_ = -1;
  pid_t holder_ = 0;
  std::string error_;
  std::string path_;
};

// What the appliance claims before it starts any child, in this order:
//   1. the lock <run_dir>/metaprobe.pid;
//   2. for an explicit ipc:// channel base, the lock <PATH>.lock (two
//      appliances with their own run_dir but one channel_endpoint);
//   3. every channel endpoint: an ipc:// path must be free (no running
//      process accepts on it), a tcp:// port must not be bound.
// Returns "" and fills `held` (keep it for the whole run), or the message
// to stop with, naming the other appliance's pid where it is known.
std::string claim_instance(const std::string& run_dir, const std::string& channel_base,
                           const std::vector<channel>& channels, std::vector<pid_lock>& held);

} // namespace metaprobe
