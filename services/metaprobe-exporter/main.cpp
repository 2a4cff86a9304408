// SPDX-License-Identifier: Apache-2.0
// metaprobe-exporter: one instance of one export channel. Pulls record
// batches from metaprobe-capture and writes them to its sinks: IPFIX
// collectors/files (channel <group>.ipfix) or text files (<group>.text).
// Wiring only.

#include <csignal>

#include <spdlog/spdlog.h>

#include "control/control_plane.hpp"
#include "control/exporter_tap.hpp"
#include "core/stage_stats.hpp"
#include "exporters/exporter.hpp"
#include "exporters/ipfix/ipfix_sinks.hpp"
#include "exporters/text/text_sink.hpp"
#include "service.hpp"

using namespace metaprobe;

namespace {

constexpr const char* process_name = "metaprobe-exporter";

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

  // Inspection: the tap copies the loop's counters for the control
  // endpoint and /metrics (control/exporter_tap.hpp).
  stage_stats stats;
  auto tap = std::make_unique<exporter_tap>(
    stats, stats.actors().add("exporter:" + ch.name(), "exporter", instance));
  exporter_tap* tap_ptr = tap.get();
  sinks.push_back(std::move(tap));

  exporter_options opts;
  opts.endpoint = channel_endpoint(cfg->str("channel_endpoint"), ch);
  opts.ch = ch;
  opts.instance = instance;
  exporter ex(opts, std::move(sinks));
  tap_ptr->attach(&ex);
  std::string error;
  control_plane control;
  if (!start_control_plane(control, *cfg, process_id::exporter(ch, instance), stats,
                           [] { std::raise(SIGTERM); }, {}, error)) {
    spdlog::error("{}", error);
    return service::exit_failure;
  }
  if (!ex.run(stop, error)) {
    spdlog::error("{}", error);
    return service::exit_failure;
  }
  control.stop();
  ex.publish_counters(stats);
  for (const auto& [name, value] : stats.snapshot())
    spdlog::info("{} = {}", name, value);
  const auto& c = ex.counters();
  if (c.sequence_gaps || c.upstream_dropped)
    spdlog::warn("loss upstream: {} batch(es) missing, {} record(s) dropped by the publisher",
                 c.sequence_gaps, c.upstream_dropped);
  return service::exit_ok;
}
