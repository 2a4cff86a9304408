// SPDX-License-Identifier: Apache-2.0
#include "supervisor.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <csignal>
#include <cstring>

namespace metaprobe {

std::chrono::milliseconds restart_backoff::stable_after() const {
  return std::max(p_.max, std::chrono::milliseconds(10000));
}

std::chrono::milliseconds restart_backoff::failed(clock::time_point t) {
  if (started_ != clock::time_point{} && t - started_ >= stable_after())
    failures_ = 0; // it had been running fine: start the backoff over
  ++failures_;
  auto delay = p_.min;
  for (int i = 1; i < failures_ && delay < p_.max; ++i)
    delay *= 2;
  return std::min(delay, p_.max);
}

std::string describe_wait_status(int wait_status) {
  if (WIFSIGNALED(wait_status)) {
    int sig = WTERMSIG(wait_status);
    const char* abbrev = sigabbrev_np(sig);
    return "killed by signal " + std::to_string(sig) +
           (abbrev ? " (SIG" + std::string(abbrev) + ")" : std::string());
  }
  if (WIFEXITED(wait_status))
    return "exit code " + std::to_string(WEXITSTATUS(wait_status));
  return "ended with status " + std::to_string(wait_status);
}

size_t supervisor::add(std::string name, bool restartable) {
  children_.push_back(child{std::move(name), restartable, phase::starting, -1, -1, 0, 0, {},
                            restart_backoff(policy_)});
  return children_.size() - 1;
}

void supervisor::started(size_t id, int pid, clock::time_point now) {
  auto& c = children_.at(id);
  c.pid = pid;
  c.state = phase::running;
  c.exit_code = -1;
  ++c.starts;
  c.backoff.started(now);
}

supervisor::decision supervisor::exited(size_t id, int wait_status, bool restarts_allowed,
                                        clock::time_point now) {
  auto& c = children_.at(id);
  decision d;
  d.cause = describe_wait_status(wait_status);
  c.pid = -1;
  c.exit_code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status)
              : WIFSIGNALED(wait_status) ? 128 + WTERMSIG(wait_status)
                                         : 255;
  if (c.exit_code == 0) {
    c.state = phase::finished;
    d.what = decision::finished;
    return d;
  }
  ++c.crashes;
  if (c.restartable && restarts_allowed) {
    d.what = decision::restart;
    d.delay = c.backoff.failed(now);
    c.state = phase::waiting_restart;
    c.restart_at = now + d.delay;
    return d;
  }
  c.state = phase::failed;
  d.what = decision::failed;
  return d;
}

std::vector<size_t> supervisor::due(clock::time_point now) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < children_.size(); ++i)
    if (children_[i].state == phase::waiting_restart && now >= children_[i].restart_at)
      out.push_back(i);
  return out;
}

void supervisor::give_up(size_t id) {
  auto& c = children_.at(id);
  if (c.state == phase::waiting_restart)
    c.state = phase::failed;
}

int supervisor::alive() const {
  return static_cast<int>(std::count_if(children_.begin(), children_.end(), [](const child& c) {
    return c.state == phase::starting || c.state == phase::running;
  }));
}

bool supervisor::any_waiting() const {
  return std::any_of(children_.begin(), children_.end(),
                     [](const child& c) { return c.state == phase::waiting_restart; });
}

uint64_t supervisor::restarts() const {
  uint64_t n = 0;
  for (const auto& c : children_)
    n += c.starts > 1 ? c.starts - 1 : 0;
  return n;
}

} // namespace metaprobe
