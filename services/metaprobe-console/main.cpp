// SPDX-License-Identifier: Apache-2.0
// metaprobe-console: runtime inspection of a running metaprobe. One-shot
//   metaprobe-console [--config FILE [--process P] | --connect ENDPOINT]
//                     [--secret S] [--json] COMMAND
// or, without COMMAND, an interactive shell (libedit: history in
// ~/.metaprobe_console_history, tab completion of commands). Commands:
// status, actors, flows, exporters, counters, config, top, stop.
// Rendering lives in control/console_view.hpp; wiring only here.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include <editline/readline.h>

#include "control/console_view.hpp"
#include "control/control_client.hpp"
#include "control/control_endpoints.hpp"
#include "service.hpp"

using namespace metaprobe;

namespace {

constexpr const char* process_name = "metaprobe-console";

volatile std::sig_atomic_t interrupted = 0;
void on_sigint(int) {
  interrupted = 1;
}

void usage() {
  std::printf(
    "usage: %s [--config FILE [--set k=v]... [--process P] | --connect ENDPOINT]\n"
    "          [--secret S | --secret-file F] [--curve-keys DIR] [--json] [--timeout MS]\n"
    "          [COMMAND [--interval S] [--count N]]\n"
    "Inspects a running metaprobe (the appliance answers for all its processes).\n"
    "commands: status, actors, flows, exporters, counters, config, top, stop, help\n"
    "Without COMMAND: interactive shell. The endpoint is the one the\n"
    "configuration (control_listen, run_dir) gives the process named by --process:\n"
    "appliance (default), capture or exporter:GROUP.KIND:N (e.g. exporter:dns.ipfix:1),\n"
    "for a capture or exporter started without the appliance.\n"
    "CURVE keys (client.pub, client.key, server.pub) come from the configuration's\n"
    "curve_keys or from --curve-keys DIR (with --connect).\n",
    process_name);
}

struct session {
  std::string endpoint;
  std::string secret;
  std::chrono::milliseconds timeout{3000};
  bool json = false;
  control_client client;

  // Runs one command; returns the exit code (0 ok, 1 failed).
  int run(const std::string& command, double interval, long count) {
    if (command == "help") {
      usage();
      return 0;
    }
    v1::ControlRequest::Kind kind;
    if (!console_command_kind(command, kind)) {
      std::fprintf(stderr, "unknown command '%s' (try help)\n", command.c_str());
      return 1;
    }
    v1::ControlRequest req;
    req.set_kind(kind);
    req.set_secret(secret);
    const bool top = command == "top";
    for (long i = 0; !top || count <= 0 || i < count; ++i) {
      if (i > 0) {
        auto until = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(static_cast<long>(interval * 1000));
        while (!interrupted && std::chrono::steady_clock::now() < until)
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (interrupted)
        break;
      auto r = client.call(endpoint, req, timeout);
      if (!r.ok) {
        std::fprintf(stderr, "%s: %s\n", process_name, r.error.c_str());
        return 1;
      }
      std::string out = json ? render_json(command, r.reply) + "\n" : render_text(command, r.reply);
      if (top && !json && isatty(STDOUT_FILENO))
        std::fputs("\x1b[H\x1b[2J", stdout);
      std::fputs(out.c_str(), stdout);
      std::fflush(stdout);
      if (!r.reply.ok())
        return 1;
      if (!top)
        break;
    }
    interrupted = 0;
    return 0;
  }
};

char* complete_command(const char* text, int state) {
  static size_t index;
  static size_t len;
  if (state == 0) {
    index = 0;
    len = std::strlen(text);
  }
  const char* const* cmds = console_commands();
  while (cmds[index]) {
    const char* c = cmds[index++];
    if (std::strncmp(c, text, len) == 0)
      return strdup(c);
  }
  return nullptr;
}

char** complete(const char* text, int start, int) {
  rl_attempted_completion_over = 1;
  if (start != 0)
    return nullptr;
  return rl_completion_matches(text, complete_command);
}

int interactive(session& s) {
  const char* home = std::getenv("HOME");
  std::string history = home ? std::string(home) + "/.metaprobe_console_history" : "";
  rl_readline_name = "metaprobe-console";
  rl_attempted_completion_function = complete;
  using_history();
  if (!history.empty())
    read_history(history.c_str());
  std::printf("metaprobe-console: %s (help for commands, quit or Ctrl-D to leave)\n",
              s.endpoint.c_str());
  int rc = 0;
  for (;;) {
    char* line = readline("metaprobe> ");
    if (!line)
      break;
    std::string text(line);
    std::free(line);
    std::istringstream in(text);
    std::string cmd;
    in >> cmd;
    if (cmd.empty())
      continue;
    add_history(text.c_str());
    if (cmd == "quit" || cmd == "exit")
      break;
    double interval = 1.0;
    long count = 0;
    std::string opt;
    while (in >> opt) {
      if (opt == "--interval" && (in >> interval)) continue;
      if (opt == "--count" && (in >> count)) continue;
    }
    rc = s.run(cmd, interval, count);
  }
  if (!history.empty())
    write_history(history.c_str());
  return rc;
}

} // namespace

int main(int argc, char** argv) {
  session s;
  std::string command;
  double interval = 1.0;
  long count = 0;
  try {
    auto args = service::parse_cli(
      argc, argv,
      {"connect", "endpoint", "process", "secret", "secret-file", "curve-keys", "timeout",
       "interval", "count"});
    auto has = [&](const char* f) {
      return std::find(args.flags.begin(), args.flags.end(), f) != args.flags.end();
    };
    if (has("help")) {
      usage();
      return service::exit_ok;
    }
    for (const auto& f : args.flags)
      if (f != "json")
        throw config_error("unknown option --" + f + " (see --help)");
    s.json = has("json");
    auto opt = [&](const char* k) {
      auto it = args.options.find(k);
      return it == args.options.end() ? std::string() : it->second;
    };
    s.endpoint = opt("connect").empty() ? opt("endpoint") : opt("connect");
    std::optional<process_id> who = process_id::appliance();
    if (args.options.count("process")) {
      who = parse_process_id(opt("process"));
      if (!who)
        throw config_error("--process " + opt("process") +
                           ": expected appliance, capture or exporter:GROUP.KIND:N "
                           "(GROUP clickstream|meta|dns|fullflow, KIND ipfix|text, N 0..63)");
      if (!s.endpoint.empty())
        throw config_error("--process and --connect exclude each other");
    }
    if (s.endpoint.empty() || !args.config_path.empty()) {
      config cfg = service::load_config(args);
      if (s.endpoint.empty()) {
        s.endpoint = control_endpoint(control_base(cfg), *who);
        if (s.endpoint.empty())
          throw config_error("control_listen is off in this configuration: use --connect");
      }
      s.secret = cfg.str("control_secret");
      s.client.set_curve_keys(curve_keys_from_config(cfg));
    }
    if (!opt("curve-keys").empty()) {
      curve_keys keys;
      if (auto e = load_curve_keys(opt("curve-keys"), keys); !e.empty())
        throw config_error("--curve-keys: " + e);
      s.client.set_curve_keys(std::move(keys));
    }
    if (const char* env = std::getenv("METAPROBE_CONTROL_SECRET"))
      s.secret = env;
    if (!opt("secret-file").empty()) {
      std::ifstream f(opt("secret-file"));
      if (!f)
        throw config_error("--secret-file " + opt("secret-file") + ": cannot read");
      std::getline(f, s.secret);
    }
    if (!opt("secret").empty())
      s.secret = opt("secret");
    if (!opt("timeout").empty())
      s.timeout = std::chrono::milliseconds(std::stol(opt("timeout")));
    if (!opt("interval").empty())
      interval = std::stod(opt("interval"));
    if (!opt("count").empty())
      count = std::stol(opt("count"));
    if (!args.positional.empty())
      command = args.positional.front();
  } catch (const config_error& e) {
    service::fail(process_name, e.what());
    return service::exit_config;
  } catch (const std::exception& e) {
    service::fail(process_name, std::string("bad argument: ") + e.what());
    return service::exit_config;
  }
  std::signal(SIGINT, on_sigint);
  if (command.empty())
    return interactive(s);
  return s.run(command, interval, count) == 0 ? service::exit_ok : service::exit_failure;
}
