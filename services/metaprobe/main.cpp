// SPDX-License-Identifier: Apache-2.0
// metaprobe: the appliance. Reads one configuration, starts one
// metaprobe-exporter per active channel and instance, then
// metaprobe-capture, and supervises them:
//  - capture-file input: capture ends at the end of the file and sends end
//    of stream on every channel; exporters flush and exit; metaprobe exits
//    0 when every child exited 0.
//  - SIGINT/SIGTERM: forwarded to capture, which drains and ends the
//    streams; exporters still running after `shutdown_timeout` get SIGTERM.
//  - an exporter that crashes (signal, non-zero exit) while capture runs
//    is restarted with backoff (supervisor.hpp); capture keeps running.
//    At the end the loss of every channel is summed from the exporters'
//    delivery state files (exporters/delivery_state.hpp) and logged.
//  - capture failing, or an exporter failing once capture has ended, makes
//    metaprobe log it, stop the rest and exit non-zero.
//  - SIGHUP is forwarded to every child (reload, see docs/operations.md).
//  - control endpoint: answers for itself and asks its children (their
//    endpoints follow from the same config, control/control_endpoints.hpp).
//  - instance isolation (core/run_dir.hpp): before any child starts, the
//    appliance locks <run_dir>/metaprobe.pid (and <PATH>.lock for an
//    explicit ipc channel_endpoint) and checks every channel endpoint is
//    free; another appliance there makes it exit 1 naming that one's pid.
//    It draws a random instance id and passes it as --producer to capture
//    (stamped on every batch) and to every exporter (which drops and
//    counts batches of any other producer).
//  - children start with SIGINT, SIGTERM and SIGHUP blocked (see spawn()):
//    a stop request sent before a child has installed its handlers waits
//    for them instead of killing it.
// Wiring only: the work happens in the children.

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "control/control_plane.hpp"
#include "core/run_dir.hpp"
#include "exporters/delivery_state.hpp"
#include "security/curve_keys.hpp"
#include "service.hpp"
#include "supervisor.hpp"

using namespace metaprobe;

namespace {

constexpr const char* process_name = "metaprobe";

std::string self_dir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0)
    return ".";
  std::string p(buf, static_cast<size_t>(n));
  return p.substr(0, p.rfind('/'));
}

pid_t spawn(const std::string& exe, const std::vector<std::string>& argv_s) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (const auto& a : argv_s)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // The child inherits the stop signals blocked, across exec, until
  // service::install_stop_signals() has installed its handlers and unblocks
  // them: a SIGTERM sent early (e.g. right after a failed capture) stays
  // pending and becomes a clean stop instead of "killed by signal 15".
  // Blocked here, before fork, so there is no window in the child at all.
  sigset_t stops, old;
  sigemptyset(&stops);
  sigaddset(&stops, SIGINT);
  sigaddset(&stops, SIGTERM);
  sigaddset(&stops, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stops, &old);
  pid_t pid = fork();
  if (pid == 0) {
    // default dispositions (exec resets caught signals anyway; SIGPIPE is
    // ignored here and would stay ignored)
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    std::signal(SIGHUP, SIG_DFL);
    std::signal(SIGPIPE, SIG_DFL);
    execv(exe.c_str(), argv.data());
    std::fprintf(stderr, "metaprobe: cannot start %s: %s\n", exe.c_str(), std::strerror(errno));
    _exit(127);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr); // a stop meanwhile is delivered now
  return pid;
}

std::vector<std::string> common_args(const service::cli& args) {
  std::vector<std::string> out;
  if (!args.config_path.empty()) {
    out.push_back("--config");
    out.push_back(args.config_path);
  }
  for (const auto& o : args.overrides) {
    out.push_back("--set");
    out.push_back(o);
  }
  return out;
}

// One child process of the appliance: how to start it.
struct launch {
  std::string exe;
  std::vector<std::string> args;
};

// Reaps every finished child without blocking and applies the
// supervisor's decision (logged). `restarts_allowed`: capture is running
// and no stop was requested.
void reap(supervisor& sup, bool restarts_allowed) {
  const auto now = supervisor::clock::now();
  for (size_t id = 0; id < sup.size(); ++id) {
    const auto& c = sup.at(id);
    if (c.state != supervisor::phase::running)
      continue;
    int st = 0;
    if (waitpid(c.pid, &st, WNOHANG) != c.pid)
      continue;
    auto d = sup.exited(id, st, restarts_allowed, now);
    switch (d.what) {
      case supervisor::decision::finished:
        spdlog::info("{} finished", c.name);
        break;
      case supervisor::decision::restart:
        spdlog::error("{} {}: restart {} in {:.1f} s", c.name, d.cause, c.starts,
                      std::chrono::duration<double>(d.delay).count());
        break;
      case supervisor::decision::failed:
        spdlog::error("{} failed: {}", c.name, d.cause);
        break;
    }
  }
}

// Starts the children whose restart delay has passed.
void restart_due(supervisor& sup, const std::vector<launch>& how) {
  const auto now = supervisor::clock::now();
  for (size_t id : sup.due(now)) {
    pid_t pid = spawn(how[id].exe, how[id].args);
    sup.started(id, pid, now);
    spdlog::warn("restarted {} (pid {}), start {}", sup.at(id).name, pid, sup.at(id).starts);
  }
}

void signal_running(const supervisor& sup, int sig, size_t skip = SIZE_MAX) {
  for (size_t id = 0; id < sup.size(); ++id)
    if (id != skip && sup.at(id).state == supervisor::phase::running)
      kill(sup.at(id).pid, sig);
}

// The loss of every channel over its exporter instances and restarts.
void log_channel_loss(const config& cfg) {
  for (const auto& ch : service::active_channels(cfg)) {
    std::vector<delivery_record> recs;
    for (int i = 0; i < service::instances_of(cfg, ch); ++i)
      if (auto r = read_delivery_state(delivery_state_path(cfg.str("run_dir"), ch, i)))
        recs.push_back(*r);
    if (recs.empty())
      continue;
    auto l = sum_channel_loss(recs);
    if (!l.complete) {
      spdlog::warn("channel {}: {} record(s) received by exporters, {} lost inside crashed "
                   "exporters; no end of stream arrived, loss in transit unknown",
                   ch.name(), l.received, l.lost_in_process);
      continue;
    }
    auto level = l.lost() || l.publisher_dropped || l.sink_dropped ? spdlog::level::warn
                                                                   : spdlog::level::info;
    spdlog::log(level,
                "channel {}: {} record(s) offered, {} dropped by the publisher, {} received by "
                "exporters, {} lost in transit to crashed exporters, {} lost inside them "
                "({} crash(es)), {} dropped by their sinks (full disk, collector down)",
                ch.name(), l.offered, l.publisher_dropped, l.received, l.lost_in_transit,
                l.lost_in_process, l.crashes, l.sink_dropped);
  }
}

} // namespace

int main(int argc, char** argv) {
  service::cli args;
  std::optional<config> cfg;
  try {
    args = service::parse_cli(argc, argv, {});
    if (std::find(args.flags.begin(), args.flags.end(), "help") != args.flags.end()) {
      std::printf("usage: %s --config FILE [--set key=value]...\n", process_name);
      return service::exit_ok;
    }
    cfg.emplace(service::load_config(args));
    service::require_input(*cfg);
    (void)curve_keys_from_config(*cfg); // bad keys stop start-up here, with exit 2
  } catch (const config_error& e) {
    service::fail(process_name, e.what());
    return service::exit_config;
  }
  service::setup_logging(process_name, *cfg);
  const auto& stop = service::install_stop_signals();
  const auto dir = self_dir();

  const std::string run_dir = cfg->str("run_dir");
  {
    std::string warning;
    if (auto problem = prepare_run_dir(run_dir, warning); !problem.empty()) {
      spdlog::error("{}", problem);
      return service::exit_failure;
    }
    if (!warning.empty())
      spdlog::warn("{}", warning);
  }
  // This instance's run_dir and channels, before any exporter connects.
  std::vector<pid_lock> claimed;
  if (auto problem = claim_instance(run_dir, channel_base(*cfg), service::active_channels(*cfg),
                                    claimed);
      !problem.empty()) {
    spdlog::error("{}", problem);
    return service::exit_failure;
  }
  const std::string producer = service::producer_text(service::new_instance_id());
  spdlog::info("instance {} (run_dir {}, channels {})", producer, run_dir, channel_base(*cfg));
  auto base = common_args(args);
  base.insert(base.end(), {"--producer", producer});

  // A fresh run: loss counting starts at zero.
  std::error_code ec;
  for (const auto& ch : service::active_channels(*cfg))
    for (int i = 0; i < service::instances_of(*cfg, ch); ++i)
      std::filesystem::remove(delivery_state_path(run_dir, ch, i), ec);

  restart_policy policy;
  policy.min = std::chrono::milliseconds(
    static_cast<int64_t>(cfg->seconds("exporter_restart_min") * 1000));
  policy.max = std::chrono::milliseconds(
    static_cast<int64_t>(cfg->seconds("exporter_restart_max") * 1000));
  policy.max = std::max(policy.max, policy.min);
  supervisor sup(policy);
  std::vector<launch> how;
  std::vector<process_id> who; // per supervisor id, for the control endpoint
  // The control thread reads the children; this thread changes them.
  std::mutex children_mu;
  stage_stats stats;
  auto children_now = [&] {
    std::lock_guard<std::mutex> lock(children_mu);
    std::vector<child_state> out;
    for (size_t id = 0; id < sup.size(); ++id) {
      const auto& c = sup.at(id);
      out.push_back({who[id], c.pid, c.state == supervisor::phase::running, c.exit_code});
    }
    return out;
  };
  control_plane control;
  {
    std::string error;
    if (!start_control_plane(control, *cfg, process_id::appliance(), stats,
                             [] { std::raise(SIGTERM); }, children_now, error)) {
      spdlog::error("{}", error);
      return service::exit_failure;
    }
  }
  auto supervise = [&](bool restarts_allowed) {
    std::lock_guard<std::mutex> lock(children_mu);
    reap(sup, restarts_allowed);
    if (restarts_allowed)
      restart_due(sup, how);
    stats.set("appliance.exporter_restarts", sup.restarts());
    stats.set("appliance.children_alive", sup.alive());
  };

  std::unique_lock<std::mutex> starting(children_mu);
  for (const auto& ch : service::active_channels(*cfg)) {
    int n = service::instances_of(*cfg, ch);
    for (int i = 0; i < n; ++i) {
      auto a = base;
      a.insert(a.end(), {"--channel", ch.name(), "--instance", std::to_string(i)});
      size_t id = sup.add("exporter " + ch.name() + "#" + std::to_string(i), true);
      how.push_back({dir + "/metaprobe-exporter", a});
      who.push_back(process_id::exporter(ch, i));
      pid_t pid = spawn(how[id].exe, how[id].args);
      sup.started(id, pid, supervisor::clock::now());
      spdlog::info("started {} (pid {})", sup.at(id).name, pid);
    }
  }
  const size_t cap = sup.add("capture", false);
  how.push_back({dir + "/metaprobe-capture", base});
  who.push_back(process_id::capture());
  {
    pid_t pid = spawn(how[cap].exe, how[cap].args);
    sup.started(cap, pid, supervisor::clock::now());
    spdlog::info("started capture (pid {})", pid);
  }
  starting.unlock();

  bool stop_forwarded = false;
  while (sup.at(cap).state == supervisor::phase::running) {
    if (stop.load() && !stop_forwarded) {
      spdlog::info("stopping: draining capture");
      kill(sup.at(cap).pid, SIGTERM);
      stop_forwarded = true;
    }
    if (service::take_hangup()) {
      spdlog::info("SIGHUP: children reload their configuration");
      signal_running(sup, SIGHUP);
    }
    // an exporter that dies while capture runs is restarted (with backoff)
    supervise(!stop.load());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const bool capture_ok = sup.at(cap).exit_code == 0;
  {
    std::lock_guard<std::mutex> lock(children_mu);
    for (size_t id = 0; id < sup.size(); ++id)
      if (sup.at(id).state == supervisor::phase::waiting_restart) {
        spdlog::error("{} is not restarted: capture has ended", sup.at(id).name);
        sup.give_up(id);
      }
  }
  // Capture sent end of stream (or failed): give the exporters time to
  // write everything out, then stop them.
  const auto timeout = std::chrono::seconds(capture_ok ? 60 : 5);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool termed = false;
  for (;;) {
    supervise(false);
    if (sup.alive() == 0)
      break;
    if (!termed && (std::chrono::steady_clock::now() > deadline || !capture_ok)) {
      signal_running(sup, SIGTERM);
      termed = true;
      deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    } else if (termed && std::chrono::steady_clock::now() > deadline) {
      for (size_t id = 0; id < sup.size(); ++id)
        if (sup.at(id).state == supervisor::phase::running) {
          spdlog::error("{} does not stop: killing it", sup.at(id).name);
          kill(sup.at(id).pid, SIGKILL);
        }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  control.stop();
  log_channel_loss(*cfg);
  if (sup.restarts())
    spdlog::warn("{} exporter restart(s) during the run", sup.restarts());
  int rc = 0;
  for (size_t id = 0; id < sup.size(); ++id)
    if (sup.at(id).state != supervisor::phase::finished)
      rc = 1;
  if (rc == 0)
    spdlog::info("all done");
  return rc == 0 ? service::exit_ok : service::exit_failure;
}
