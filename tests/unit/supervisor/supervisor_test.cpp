// SPDX-License-Identifier: Apache-2.0
// The appliance's restart policy and child table, without processes: exit
// statuses are built as waitpid() reports them.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <csignal>

#include "supervisor.hpp"

using namespace metaprobe;
using namespace std::chrono_literals;

namespace {

// wait statuses as waitpid() fills them (Linux encoding)
int exited_with(int code) { return (code & 0xff) << 8; }
int killed_by(int sig) { return sig & 0x7f; }

const supervisor::clock::time_point t0 = supervisor::clock::time_point{} + 1000s;

} // namespace

TEST_CASE("wait statuses are described with the signal or exit code") {
  REQUIRE(WIFEXITED(exited_with(3)));
  REQUIRE(WIFSIGNALED(killed_by(SIGKILL)));
  CHECK(describe_wait_status(killed_by(SIGKILL)) == "killed by signal 9 (SIGKILL)");
  CHECK(describe_wait_status(killed_by(SIGSEGV)) == "killed by signal 11 (SIGSEGV)");
  CHECK(describe_wait_status(exited_with(3)) == "exit code 3");
  CHECK(describe_wait_status(exited_with(0)) == "exit code 0");
}

TEST_CASE("backoff doubles from min up to max per consecutive failure") {
  restart_backoff b({500ms, 4000ms});
  auto t = t0;
  b.started(t);
  CHECK(b.failed(t + 1s) == 500ms);
  b.started(t + 2s);
  CHECK(b.failed(t + 3s) == 1000ms);
  b.started(t + 4s);
  CHECK(b.failed(t + 5s) == 2000ms);
  b.started(t + 6s);
  CHECK(b.failed(t + 7s) == 4000ms);
  b.started(t + 8s);
  CHECK(b.failed(t + 9s) == 4000ms); // capped
  CHECK(b.consecutive_failures() == 5);
}

TEST_CASE("a child that ran stably before it failed starts the backoff over") {
  restart_backoff b({500ms, 30000ms});
  CHECK(b.stable_after() == 30000ms);
  b.started(t0);
  CHECK(b.failed(t0 + 1s) == 500ms);
  b.started(t0 + 2s);
  CHECK(b.failed(t0 + 3s) == 1000ms);
  b.started(t0 + 4s);
  CHECK(b.failed(t0 + 4s + 29s) == 2000ms); // not yet stable
  b.started(t0 + 40s);
  CHECK(b.failed(t0 + 40s + 30s) == 500ms); // ran 30 s: reset
  CHECK(b.consecutive_failures() == 1);
  // a short max still needs 10 s of running to count as stable
  restart_backoff s({100ms, 1000ms});
  CHECK(s.stable_after() == 10000ms);
  s.started(t0);
  CHECK(s.failed(t0 + 5s) == 100ms);
  s.started(t0 + 6s);
  CHECK(s.failed(t0 + 11s) == 200ms);
  s.started(t0 + 12s);
  CHECK(s.failed(t0 + 22s) == 100ms);
}

TEST_CASE("a crashed exporter is scheduled for restart, due after the delay") {
  supervisor sup({500ms, 30000ms});
  size_t ex = sup.add("exporter clickstream.ipfix#0", true);
  size_t cap = sup.add("capture", false);
  sup.started(ex, 100, t0);
  sup.started(cap, 101, t0);
  CHECK(sup.alive() == 2);

  auto d = sup.exited(ex, killed_by(SIGKILL), true, t0 + 1s);
  CHECK(d.what == supervisor::decision::restart);
  CHECK(d.delay == 500ms);
  CHECK(d.cause == "killed by signal 9 (SIGKILL)");
  CHECK(sup.at(ex).state == supervisor::phase::waiting_restart);
  CHECK(sup.at(ex).exit_code == 128 + SIGKILL);
  CHECK(sup.at(ex).crashes == 1);
  CHECK(sup.alive() == 1);
  CHECK(sup.any_waiting());
  CHECK(sup.due(t0 + 1s + 499ms).empty());
  REQUIRE(sup.due(t0 + 1s + 500ms) == std::vector<size_t>{ex});

  sup.started(ex, 102, t0 + 1500ms);
  CHECK(sup.at(ex).pid == 102);
  CHECK(sup.at(ex).starts == 2);
  CHECK(sup.restarts() == 1);
  CHECK_FALSE(sup.any_waiting());
  // crashes again quickly: the delay doubles
  d = sup.exited(ex, exited_with(1), true, t0 + 2s);
  CHECK(d.what == supervisor::decision::restart);
  CHECK(d.delay == 1000ms);
  CHECK(d.cause == "exit code 1");
}

TEST_CASE("exit 0 is a normal end; capture and late failures are not restarted") {
  supervisor sup({500ms, 30000ms});
  size_t ex = sup.add("exporter dns.ipfix#0", true);
  size_t ex2 = sup.add("exporter dns.ipfix#1", true);
  size_t cap = sup.add("capture", false);
  sup.started(ex, 1, t0);
  sup.started(ex2, 2, t0);
  sup.started(cap, 3, t0);

  auto d = sup.exited(ex, exited_with(0), true, t0 + 1s);
  CHECK(d.what == supervisor::decision::finished);
  CHECK(sup.at(ex).state == supervisor::phase::finished);
  CHECK(sup.at(ex).crashes == 0);

  d = sup.exited(cap, killed_by(SIGSEGV), true, t0 + 1s);
  CHECK(d.what == supervisor::decision::failed);
  CHECK(sup.at(cap).state == supervisor::phase::failed);

  // restarts no longer allowed (capture ended, or stopping)
  d = sup.exited(ex2, killed_by(SIGKILL), false, t0 + 2s);
  CHECK(d.what == supervisor::decision::failed);
  CHECK(sup.due(t0 + 100s).empty());
  CHECK(sup.alive() == 0);
}

TEST_CASE("a waiting child can be given up") {
  supervisor sup({500ms, 30000ms});
  size_t ex = sup.add("exporter meta.ipfix#0", true);
  sup.started(ex, 1, t0);
  sup.exited(ex, killed_by(SIGKILL), true, t0 + 1s);
  sup.give_up(ex);
  CHECK(sup.at(ex).state == supervisor::phase::failed);
  CHECK(sup.due(t0 + 100s).empty());
  CHECK_FALSE(sup.any_waiting());
}
