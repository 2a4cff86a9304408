// SPDX-License-Identifier: Apache-2.0
#pragma once
// The appliance's child table and restart policy, without processes: the
// caller spawns and reaps (services/metaprobe/main.cpp) and reports what
// happened; the supervisor decides what comes next and keeps the counts.
//
// Policy (docs/operations.md "Supervision"):
// - a restartable child (an exporter) that exits with a non-zero code or is
//   killed by a signal while restarts are allowed (capture still running,
//   no stop requested) is started again after a delay: `restart_min`, then
//   doubling per consecutive failure up to `restart_max`. A child that ran
//   at least `restart_max` (and at least 10 s) before it failed counts as
//   having been stable: its next delay starts from `restart_min` again.
// - exit code 0 is a normal end (end of stream, stop request): no restart.
// - a child that is not restartable (capture), or any child when restarts
//   are not allowed, has simply failed; the caller decides (the appliance
//   stops everything and exits non-zero when capture fails).
//
// Threading: one thread (the appliance's main loop). Errors: none; ids
// out of range are a programming error (std::out_of_range from at()).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace metaprobe {

struct restart_policy {
  std::chrono::milliseconds min{500};
  std::chrono::milliseconds max{30000};
};

// The delays of one child.
class restart_backoff {
public:
  using clock = std::chrono::steady_clock;
  explicit restart_backoff(restart_policy p) : p_(p) {}
  void started(clock::time_point t) { started_ = t; }
  // The child failed at `t`: the delay before its next start.
  std::chrono::milliseconds failed(clock::time_point t);
  int consecutive_failures() const { return failures_; }
  // How long a child must run to reset the backoff.
  std::chrono::milliseconds stable_after() const;

private:
  restart_policy p_;
  clock::time_point started_{};
  int failures_ = 0;
};

// "killed by signal 9 (SIGKILL)", "exit code 3", "exit code 0".
std::string describe_wait_status(int wait_status);

class supervisor {
public:
  using clock = std::chrono::steady_clock;
  enum class phase : uint8_t { starting, running, waiting_restart, finished, failed };
  struct child {
    std::string name;
    bool restartable = false;
    phase state = phase::starting;
    int pid = -1;
    int exit_code = -1;          // 0..255, or 128 + signal; -1 while none
    uint64_t starts = 0;
    uint64_t crashes = 0;        // abnormal ends (signal or non-zero exit)
    clock::time_point restart_at{};
    restart_backoff backoff;
  };
  // What exited() decided.
  struct decision {
    enum kind : uint8_t { finished, restart, failed } what = finished;
    std::chrono::milliseconds delay{0}; // restart: after this long
    std::string cause;                  // describe_wait_status()
  };

  explicit supervisor(restart_policy p) : policy_(p) {}

  size_t add(std::string name, bool restartable);
  // The caller spawned child `id` (again) as `pid`.
  void started(size_t id, int pid, clock::time_point now);
  // Child `id` ended with `wait_status` (as from waitpid()).
  decision exited(size_t id, int wait_status, bool restarts_allowed, clock::time_point now);
  // Children waiting for a restart whose time has come.
  std::vector<size_t> due(clock::time_point now) const;
  // A waiting child that will not be restarted after all (stop, capture
  // ended): it counts as failed with its last cause.
  void give_up(size_t id);

  const child& at(size_t id) const { return children_.at(id); }
  size_t size() const { return children_.size(); }
  // Children with a process now (starting or running).
  int alive() const;
  bool any_waiting() const;
  uint64_t restarts() const;   // starts beyond the first, all children

private:
  restart_policy policy_;
  std::vector<child> children_;
};

} // namespace metaprobe
