// SPDX-License-Identifier: Apache-2.0
// metaprobe: the appliance. Reads one configuration, starts one
// metaprobe-exporter per active channel and instance, then
// metaprobe-capture, and supervises them:
//  - capture-file input: capture ends at the end of the file and sends end
//    of stream on every channel; exporters flush and exit; metaprobe exits
//    0 when every child exited 0.
//  - SIGINT/SIGTERM: forwarded to capture, which drains and ends the
//    streams; exporters still running after `shutdown_timeout` get SIGTERM.
//  - a child that fails makes metaprobe log it and exit non-zero.
//  - control endpoint: answers for itself and asks its children (their
//    endpoints follow from the same config, control/control_endpoints.hpp).
//  - children start with SIGINT, SIGTERM and SIGHUP blocked (see spawn()):
//    a stop request sent before a child has installed its handlers waits
//    for them instead of killing it.
// Wiring only: the work happens in the children.

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "control/control_plane.hpp"
#include "service.hpp"

using namespace metaprobe;

namespace {

constexpr const char* process_name = "metaprobe";

struct child {
  std::string name;   // "capture", "exporter clickstream.ipfix#0"
  process_id who;
  pid_t pid = -1;
  int status = -1;    // exit code once finished
  bool running = false;
};

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

// Reaps finished children without blocking; returns how many are running.
int reap(std::vector<child>& children) {
  int running = 0;
  for (auto& c : children) {
    if (!c.running)
      continue;
    int st = 0;
    pid_t r = waitpid(c.pid, &st, WNOHANG);
    if (r == c.pid) {
      c.running = false;
      c.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      if (c.status == 0)
        spdlog::info("{} finished", c.name);
      else if (WIFSIGNALED(st))
        spdlog::error("{} killed by signal {}", c.name, WTERMSIG(st));
      else
        spdlog::error("{} failed with exit code {}", c.name, c.status);
    } else {
      ++running;
    }
  }
  return running;
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
    if (cfg->str("input").empty())
      throw config_error("key 'input': must be set (pcap:PATH or iface:NAME)");
  } catch (const config_error& e) {
    service::fail(process_name, e.what());
    return service::exit_config;
  }
  service::setup_logging(process_name, *cfg);
  const auto& stop = service::install_stop_signals();
  const auto dir = self_dir();
  const auto base = common_args(args);

  std::vector<child> exporters;
  std::vector<child> capture{{"capture", process_id::capture()}};
  // The control thread reads the children; the loops below reap them.
  std::mutex children_mu;
  auto children_now = [&] {
    std::lock_guard<std::mutex> lock(children_mu);
    std::vector<child_state> out;
    for (const auto* list : {&capture, &exporters})
      for (const auto& c : *list)
        out.push_back({c.who, static_cast<int>(c.pid), c.running, c.status});
    return out;
  };
  auto reap_locked = [&](std::vector<child>& list) {
    std::lock_guard<std::mutex> lock(children_mu);
    return reap(list);
  };
  stage_stats stats;
  control_plane control;
  {
    std::string error;
    if (!start_control_plane(control, *cfg, process_id::appliance(), stats,
                             [] { std::raise(SIGTERM); }, children_now, error)) {
      spdlog::error("{}", error);
      return service::exit_failure;
    }
  }

  std::unique_lock<std::mutex> starting(children_mu);
  for (const auto& ch : service::active_channels(*cfg)) {
    int n = service::instances_of(*cfg, ch);
    for (int i = 0; i < n; ++i) {
      auto a = base;
      a.insert(a.end(), {"--channel", ch.name(), "--instance", std::to_string(i)});
      child c{"exporter " + ch.name() + "#" + std::to_string(i), process_id::exporter(ch, i)};
      c.pid = spawn(dir + "/metaprobe-exporter", a);
      c.running = c.pid > 0;
      spdlog::info("started {} (pid {})", c.name, c.pid);
      exporters.push_back(c);
    }
  }
  capture[0].pid = spawn(dir + "/metaprobe-capture", base);
  capture[0].running = capture[0].pid > 0;
  spdlog::info("started capture (pid {})", capture[0].pid);
  starting.unlock();

  bool stop_forwarded = false;
  while (reap_locked(capture) > 0) {
    if (stop.load() && !stop_forwarded) {
      spdlog::info("stopping: draining capture");
      kill(capture[0].pid, SIGTERM);
      stop_forwarded = true;
    }
    // an exporter that dies while capture runs is reported right away
    reap_locked(exporters);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // Capture sent end of stream (or failed): give the exporters time to
  // write everything out, then stop them.
  const auto timeout = std::chrono::seconds(capture[0].status == 0 ? 60 : 5);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool termed = false;
  while (reap_locked(exporters) > 0) {
    if (!termed && (std::chrono::steady_clock::now() > deadline || capture[0].status != 0)) {
      for (auto& e : exporters)
        if (e.running)
          kill(e.pid, SIGTERM);
      termed = true;
      deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    } else if (termed && std::chrono::steady_clock::now() > deadline) {
      for (auto& e : exporters)
        if (e.running) {
          spdlog::error("{} does not stop: killing it", e.name);
          kill(e.pid, SIGKILL);
        }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  control.stop();
  int rc = capture[0].status;
  for (const auto& e : exporters)
    if (rc == 0 && e.status != 0)
      rc = e.status;
  if (rc == 0)
    spdlog::info("all done");
  return rc == 0 ? service::exit_ok : service::exit_failure;
}
