// SPDX-License-Identifier: Apache-2.0
#pragma once
// `metaprobe-exporter --instance auto`: an exporter started without an
// instance number (N identical containers, systemd template units, ...)
// claims the lowest free instance of its channel by locking the file
//   <run_dir>/<group>.<kind>-<N>.slot        (N = 0..63)
// with flock(LOCK_EX | LOCK_NB). The lock is held as long as the
// instance_slot lives and the kernel drops it when the process ends in any
// way (exit, crash, SIGKILL), so the number is free again at once. flock
// locks the inode: processes in different containers that share run_dir
// (one host) see each other's claims; across hosts they do not.
//
// The slot files stay in place (removing a lock file races with a process
// about to lock it); a claimed file holds the claimer's pid and a newline,
// for people looking.
//
// Errors: claim() throws std::runtime_error when every slot is taken or a
// slot file cannot be opened (message names the path). write_instance_file
// throws std::runtime_error naming the path.
//
// Threading: plain value type; no shared state.

#include <string>

#include "core/channels.hpp"

namespace metaprobe {

// <run_dir>/<group>.<kind>-<instance>.slot
std::string instance_slot_path(const std::string& run_dir, const channel& ch, int instance);

class instance_slot {
public:
  // Locks the lowest free slot 0..limit-1 of `ch` under `run_dir` (which
  // must exist).
  static instance_slot claim(const std::string& run_dir, const channel& ch,
                             int limit = max_channel_instances);

  instance_slot(instance_slot&& other) noexcept;
  instance_slot& operator=(instance_slot&& other) noexcept;
  instance_slot(const instance_slot&) = delete;
  instance_slot& operator=(const instance_slot&) = delete;
  ~instance_slot(); // releases the slot

  int instance() const { return instance_; }
  const std::string& path() const { return path_; }

private:
  instance_slot(int fd, int instance, std::string path);
  void release();

  int fd_ = -1;
  int instance_ = -1;
  std::string path_;
};

// Writes "<instance>\n" to `path` atomically (a temporary file in the same
// folder, then rename), for healthchecks that need the claimed number.
void write_instance_file(const std::string& path, int instance);

} // namespace metaprobe
