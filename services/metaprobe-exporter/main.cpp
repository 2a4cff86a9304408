// SPDX-License-Identifier: Apache-2.0
// metaprobe-exporter: one instance of one export channel. Pulls record
// batches from metaprobe-capture and writes them to its sinks: IPFIX
// collectors/files (channel <group>.ipfix) or text files (<group>.text).
// Wiring only.

#include <spdlog/spdlog.h>

#include "core/event_log.hpp"
#include "core/stage_stats.hpp"
#include "exporters/exporter.hpp"
#include "exporters/ipfix/ipfix_sinks.hpp"
#include "exporters/text/text_sink.hpp"
#include "service.hpp"

using namespace metaprobe;

namespace {

constexpr const char* process_name = "metaprobe-exporter";

// dbg_log_mask bit of the `Statistics on NFLW_export` stat line.
constexpr int64_t log_mask_export_stats = 0x80;

// The text kinds that belong to a sink group.
bool text_kind_in_group(text_kind k, sink_group g) {
  switch (k) {
    case text_kind::url:
    case text_kind::ssl:
      return g == sink_group::clickstream;
    case text_kind::sip:
      return g == sink_group::meta;
    case text_kind::dns:
      return g == sink_group::dns;
  }
  return false;
}

std::vector<std::unique_ptr<sink>> make_sinks(const config& cfg, const channel& ch, int instance) {
  std::vector<std::unique_ptr<sink>> sinks;
  if (ch.kind == sink_kind::ipfix) {
    auto sc = ipfix_sink_config_from(cfg, ch.group, instance);
    return make_ipfix_sinks(sc);
  }
  for (auto tc : text_sinks_from_config(cfg)) {
    if (!text_kind_in_group(tc.kind, ch.group))
      continue;
    auto problem = prepare_text_dir(tc.path);
    if (!problem.empty())
      throw config_error(problem);
    tc.instance = static_cast<uint32_t>(instance);
    sinks.push_back(make_text_sink(tc));
  }
  return sinks;
}

// Opens <log_dir>/<tag>_<kind>.log; a problem is logged (the exporter
// runs on without that file). An empty log_dir turns the files off.
bool open_event_log(event_log& log, const config& cfg, const std::string& tag, const char* kind) {
  const std::string dir = cfg.str("log_dir");
  if (dir.empty())
    return false;
  const std::string problem = log.open(event_log_path(dir, tag, kind));
  if (!problem.empty()) {
    spdlog::error("{}; {} lines are not written", problem, kind);
    return false;
  }
  return true;
}

} // namespace

int main(int argc, char** argv) {
  service::cli args;
  std::optional<config> cfg;
  channel ch;
  int instance = 0;
  std::vector<std::unique_ptr<sink>> sinks;
  try {
    args = service::parse_cli(argc, argv, {"channel", "instance"});
    if (std::find(args.flags.begin(), args.flags.end(), "help") != args.flags.end()) {
      std::printf("usage: %s --config FILE --channel GROUP.KIND [--instance N] [--set k=v]...\n"
                  "channels: clickstream|meta|dns|fullflow . ipfix|text\n",
                  process_name);
      return service::exit_ok;
    }
    cfg.emplace(service::load_config(args));
    auto it = args.options.find("channel");
    if (it == args.options.end())
      throw config_error("--channel is required (e.g. --channel clickstream.ipfix)");
    auto parsed = parse_channel(it->second);
    if (!parsed)
      throw config_error("--channel " + it->second + ": unknown channel");
    ch = *parsed;
    if (auto in = args.options.find("instance"); in != args.options.end()) {
      try {
        instance = std::stoi(in->second);
      } catch (const std::exception&) {
        throw config_error("--instance " + in->second + ": expected a number");
      }
    }
    sinks = make_sinks(*cfg, ch, instance);
  } catch (const config_error& e) {
    service::fail(process_name, e.what());
    return service::exit_config;
  } catch (const std::exception& e) {
    service::fail(process_name, e.what());
    return service::exit_failure;
  }
  service::setup_logging(process_name + std::string(" ") + ch.name() + "#" +
                           std::to_string(instance),
                         *cfg);
  const auto& stop = service::install_stop_signals();
  if (sinks.empty())
    spdlog::warn("channel {} has no sink configured: records are counted only", ch.name());

  const std::string log_tag = event_log_tag("exporter", ch.name(), instance);
  event_log alert_log;
  event_log stat_log;
  const bool alerts = open_event_log(alert_log, *cfg, log_tag, "alert");
  const bool stats_on = (cfg->integer("dbg_log_mask") & log_mask_export_stats) != 0 &&
                        open_event_log(stat_log, *cfg, log_tag, "stat");

  exporter_options opts;
  opts.endpoint = channel_endpoint(cfg->str("channel_endpoint"), ch);
  opts.ch = ch;
  opts.instance = instance;
  opts.stats_period = std::chrono::milliseconds(
    static_cast<int64_t>(cfg->seconds("netflow_timeout") * 1000.0 + 0.5));
  opts.alert_log = alerts ? &alert_log : nullptr;
  opts.stat_log = stats_on ? &stat_log : nullptr;
  exporter ex(opts, std::move(sinks));
  std::string error;
  if (!ex.run(stop, error)) {
    spdlog::error("{}", error);
    return service::exit_failure;
  }
  stage_stats stats;
  ex.publish_counters(stats);
  for (const auto& [name, value] : stats.snapshot())
    spdlog::info("{} = {}", name, value);
  const auto& c = ex.counters();
  if (c.sequence_gaps || c.upstream_dropped)
    spdlog::warn("loss upstream: {} batch(es) missing, {} record(s) dropped by the publisher",
                 c.sequence_gaps, c.upstream_dropped);
  return service::exit_ok;
}
