// SPDX-License-Identifier: Apache-2.0
// metaprobe-exporter: one instance of one export channel. Pulls record
// batches from metaprobe-capture and writes them to its sinks: IPFIX
// collectors/files (channel <group>.ipfix) or text files (<group>.text).
// `--instance auto` claims the lowest free instance of the channel
// (exporters/instance_slot.hpp) for processes started without a
// coordinator. Wiring only.

#include <csignal>
#include <filesystem>
#include <optional>

#include <spdlog/spdlog.h>

#include "control/control_plane.hpp"
#include "control/exporter_tap.hpp"
#include "core/event_log.hpp"
#include "core/stage_stats.hpp"
#include "exporters/channel_sinks.hpp"
#include "exporters/delivery_state.hpp"
#include "exporters/exporter.hpp"
#include "exporters/instance_slot.hpp"
#include "exporters/sink_reload.hpp"
#include "core/run_dir.hpp"
#include "service.hpp"

using namespace metaprobe;

namespace {

constexpr const char* process_name = "metaprobe-exporter";

// dbg_log_mask bit of the `Statistics on NFLW_export` stat line.
constexpr int64_t log_mask_export_stats = 0x80;

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
  std::optional<instance_slot> slot; // --instance auto: held until exit
  std::string instance_file;
  std::vector<std::unique_ptr<sink>> sinks;
  uint64_t producer = 0;
  curve_keys keys;
  try {
    args = service::parse_cli(argc, argv, {"channel", "instance", "instance-file", "producer"});
    if (std::find(args.flags.begin(), args.flags.end(), "help") != args.flags.end()) {
      std::printf("usage: %s --config FILE --channel GROUP.KIND [--instance N|auto]\n"
                  "          [--instance-file PATH] [--producer HEX] [--set k=v]...\n"
                  "channels: clickstream|meta|dns|fullflow . ipfix|text\n"
                  "--instance auto claims the lowest free instance 0..63 of the channel\n"
                  "(lock files in run_dir); --instance-file writes the instance number there.\n"
                  "--producer accepts batches of that capture instance only (the appliance\n"
                  "passes its capture's); without it every producer is accepted.\n",
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
    producer = service::producer_option(args);
    keys = curve_keys_from_config(*cfg);
    std::string warning;
    if (auto problem = prepare_run_dir(cfg->str("run_dir"), warning); !problem.empty())
      throw std::runtime_error(problem);
    if (!warning.empty())
      service::fail(process_name, "warning: " + warning);
    if (auto in = args.options.find("instance"); in != args.options.end()) {
      if (in->second == "auto") {
        slot.emplace(instance_slot::claim(cfg->str("run_dir"), ch));
        instance = slot->instance();
      } else {
        try {
          instance = std::stoi(in->second);
        } catch (const std::exception&) {
          throw config_error("--instance " + in->second + ": expected a number or auto");
        }
      }
    }
    if (auto f = args.options.find("instance-file"); f != args.options.end())
      instance_file = f->second;
    // a previous incarnation of this instance that is still marked running
    // crashed: continue its IPFIX files (exporters/delivery_state.hpp)
    const auto prev =
      read_delivery_state(delivery_state_path(cfg->str("run_dir"), ch, instance));
    sinks = make_channel_sinks(*cfg, ch, instance, {}, nullptr, prev && prev->running != 0);
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
  if (slot)
    spdlog::info("claimed instance {} of {} ({})", instance, ch.name(), slot->path());
  if (sinks.empty())
    spdlog::warn("channel {} has no sink configured: records are counted only", ch.name());

  // Inspection: the tap copies the loop's counters for the control
  // endpoint and /metrics (control/exporter_tap.hpp).
  stage_stats stats;
  exporter_tap tap(stats, stats.actors().add("exporter:" + ch.name(), "exporter", instance));
  const std::string log_tag = event_log_tag("exporter", ch.name(), instance);
  event_log alert_log;
  event_log stat_log;
  const bool alerts = open_event_log(alert_log, *cfg, log_tag, "alert");
  const bool stats_on = (cfg->integer("dbg_log_mask") & log_mask_export_stats) != 0 &&
                        open_event_log(stat_log, *cfg, log_tag, "stat");

  exporter_options opts;
  opts.endpoint = channel_endpoint(channel_base(*cfg), ch);
  opts.ch = ch;
  opts.instance = instance;
  opts.producer = producer;
  opts.keys = std::move(keys);
  if (producer)
    spdlog::info("accepting batches of capture instance {} only", service::producer_text(producer));
  // Loss across a crash of this instance: see exporters/delivery_state.hpp.
  std::unique_ptr<delivery_state> delivery;
  try {
    // an auto instance may share its channel with others whatever the
    // configuration says: positions are then not contiguous
    delivery = delivery_state::open(delivery_state_path(cfg->str("run_dir"), ch, instance),
                                    !slot && service::instances_of(*cfg, ch) == 1);
    if (uint64_t lost = delivery->start())
      spdlog::warn("the previous {}#{} died holding {} record(s): counted lost", ch.name(),
                   instance, lost);
    opts.delivery = delivery.get();
  } catch (const std::exception& e) {
    spdlog::warn("{}: loss across restarts is not counted", e.what());
  }
  // SIGHUP: re-read the configuration, rebuild only the sinks that changed
  opts.on_tick = [&](std::vector<std::unique_ptr<sink>>& live) {
    tap.publish();
    if (!service::take_hangup())
      return;
    try {
      config next = service::load_config(args);
      auto r = reload_sinks(ch, *cfg, next, live,
                            [&](const config& c, const std::set<std::string>& skip,
                                std::set<std::string>* names) {
                              return make_channel_sinks(c, ch, instance, skip, names);
                            });
      cfg.emplace(std::move(next));
      spdlog::info("reloaded: {}", describe(r));
    } catch (const std::exception& e) {
      spdlog::error("reload failed, the running configuration stays: {}", e.what());
    }
  };
  opts.stats_period = std::chrono::milliseconds(
    static_cast<int64_t>(cfg->seconds("netflow_timeout") * 1000.0 + 0.5));
  opts.alert_log = alerts ? &alert_log : nullptr;
  opts.stat_log = stats_on ? &stat_log : nullptr;
  exporter ex(opts, std::move(sinks));
  tap.attach(&ex);
  std::string error;
  control_plane control;
  if (!start_control_plane(control, *cfg, process_id::exporter(ch, instance), stats,
                           [] { std::raise(SIGTERM); }, {}, error)) {
    spdlog::error("{}", error);
    return service::exit_failure;
  }
  // written once the control endpoint is up: healthchecks read it, then ask
  if (!instance_file.empty()) {
    try {
      write_instance_file(instance_file, instance);
    } catch (const std::exception& e) {
      spdlog::error("--instance-file: {}", e.what());
      return service::exit_failure;
    }
  }
  if (!ex.run(stop, error)) {
    spdlog::error("{}", error);
    return service::exit_failure;
  }
  tap.finish();
  control.stop();
  for (const auto& [name, value] : stats.snapshot())
    spdlog::info("{} = {}", name, value);
  const auto& c = ex.counters();
  if (c.sequence_gaps || c.upstream_dropped)
    spdlog::warn("loss upstream: {} batch(es) missing, {} record(s) dropped by the publisher",
                 c.sequence_gaps, c.upstream_dropped);
  return service::exit_ok;
}
