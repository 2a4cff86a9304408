// SPDX-License-Identifier: Apache-2.0
#include "service.hpp"

#include <csignal>
#include <random>
#include <cstdio>

#include <pthread.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace metaprobe::service {

namespace {

std::atomic<bool> stop_flag{false};
std::atomic<bool> hup_flag{false};

extern "C" void on_stop(int) {
  stop_flag.store(true);
}
extern "C" void on_hup(int) {
  hup_flag.store(true);
}

bool endpoints_set(const config& cfg, const std::string& udp, const std::string& tcp,
                   const std::string& file) {
  return !cfg.endpoints(udp).empty() || !cfg.endpoints(tcp).empty() || !cfg.str(file).empty();
}

} // namespace

cli parse_cli(int argc, char** argv, const std::vector<std::string>& valued) {
  cli out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto need_value = [&](const std::string& name) -> std::string {
      if (i + 1 >= argc)
        throw config_error("option " + name + " needs a value");
      return argv[++i];
    };
    if (a.rfind("--", 0) == 0) {
      std::string name = a.substr(2);
      std::string inline_value;
      bool has_inline = false;
      auto eq = name.find('=');
      if (eq != std::string::npos && name != "set") {
        inline_value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_inline = true;
      }
      if (name == "config" || name == "c") {
        out.config_path = has_inline ? inline_value : need_value(a);
      } else if (name == "set") {
        out.overrides.push_back(need_value(a));
      } else if (std::find(valued.begin(), valued.end(), name) != valued.end()) {
        out.options[name] = has_inline ? inline_value : need_value(a);
      } else {
        out.flags.push_back(name);
      }
    } else if (a == "-c") {
      out.config_path = need_value(a);
    } else {
      out.positional.push_back(a);
    }
  }
  return out;
}

config load_config(const cli& args) {
  if (args.config_path.empty())
    return config::from_overrides(args.overrides);
  return config::load(args.config_path, args.overrides);
}

void require_input(const config& cfg) {
  if (cfg.str("input").empty())
    throw config_error("key 'input': must be set (pcap:PATH, iface:NAME, afpacket:NAME or dpdk)");
}

void setup_logging(const std::string& process, const config& cfg) {
  auto logger = spdlog::stderr_color_mt(process);
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %n[%P] %^%l%$: %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(cfg.str("log_level")));
}

const std::atomic<bool>& install_stop_signals() {
  std::signal(SIGINT, on_stop);
  std::signal(SIGTERM, on_stop);
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGHUP, on_hup);
  sigset_t stops;
  sigemptyset(&stops);
  sigaddset(&stops, SIGINT);
  sigaddset(&stops, SIGTERM);
  sigaddset(&stops, SIGHUP);
  pthread_sigmask(SIG_UNBLOCK, &stops, nullptr); // pending ones run the handlers now
  return stop_flag;
}

const std::atomic<bool>& hangup_flag() {
  return hup_flag;
}

bool take_hangup() {
  return hup_flag.exchange(false);
}

std::vector<channel> active_channels(const config& cfg) {
  std::vector<channel> out;
  if (endpoints_set(cfg, "ipfix_udp_collectors", "ipfix_tcp_collectors", "ipfix_file"))
    out.push_back({sink_group::clickstream, sink_kind::ipfix});
  if (cfg.integer("ajb_save_url") != 0 || cfg.integer("ajb_save_ssl") != 0)
    out.push_back({sink_group::clickstream, sink_kind::text});
  if (endpoints_set(cfg, "ipfix_meta_udp_collectors", "ipfix_meta_tcp_collectors",
                    "ipfix_meta_file"))
    out.push_back({sink_group::meta, sink_kind::ipfix});
  if (cfg.integer("ajb_save_sip") != 0)
    out.push_back({sink_group::meta, sink_kind::text});
  if (endpoints_set(cfg, "ipfix_dns_udp_collectors", "ipfix_dns_tcp_collectors",
                    "ipfix_dns_file"))
    out.push_back({sink_group::dns, sink_kind::ipfix});
  if (cfg.integer("ajb_save_dns") != 0)
    out.push_back({sink_group::dns, sink_kind::text});
  if (endpoints_set(cfg, "ipfix_full_udp_collectors", "ipfix_full_tcp_collectors",
                    "ipfix_full_file"))
    out.push_back({sink_group::fullflow, sink_kind::ipfix});
  return out;
}

int instances_of(const config& cfg, const channel& ch) {
  std::string key = "exporter_instances.";
  key += ch.kind == sink_kind::text ? std::string("text")
                                    : std::string(sink_group_names[static_cast<int>(ch.group)]);
  return static_cast<int>(cfg.integer(key));
}

void fail(const std::string& process, const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", process.c_str(), message.c_str());
}

uint64_t new_instance_id() {
  std::random_device rd;
  uint64_t id = 0;
  while (id == 0)
    id = (static_cast<uint64_t>(rd()) << 32) | rd();
  return id;
}

std::string producer_text(uint64_t id) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(id));
  return buf;
}

uint64_t producer_option(const cli& args) {
  auto it = args.options.find("producer");
  if (it == args.options.end())
    return 0;
  const std::string& v = it->second;
  char* end = nullptr;
  const uint64_t id = v.empty() || v.size() > 16 ? 0 : std::strtoull(v.c_str(), &end, 16);
  if (id == 0 || (end && *end != '\0'))
    throw config_error("--producer " + v + ": expected the instance id, 1 to 16 hex digits, not 0");
  return id;
}

} // namespace metaprobe::service
