// SPDX-License-Identifier: Apache-2.0
// metaprobe-capture: reads packets (capture file, live interface or DPDK
// port, as the DPDK primary process), runs the actor pipeline and publishes
// record batches on the ZeroMQ channels the configuration turns on. Wiring
// only.

#include <sys/resource.h>

#include <csignal>
#include <chrono>
#include <thread>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "control/control_plane.hpp"
#include "core/decap_config.hpp"
#include "core/memory_budget.hpp"
#include "core/raw_meta.hpp"
#include "core/run_dir.hpp"
#include "core/subscribers.hpp"
#include "correlator/subscriber_source.hpp"
#include "pipeline/pipeline.hpp"
#include "service.hpp"

using namespace metaprobe;

namespace {

constexpr const char* process_name = "metaprobe-capture";

void usage() {
  std::printf("usage: %s --config FILE [--set key=value]... [--producer HEX]\n"
              "Runs the capture pipeline of metaprobe (see README.md). --producer: the\n"
              "instance id stamped on every batch (the appliance passes it; default random).\n",
              process_name);
}

pipeline_options make_options(const config& cfg, const subscriber_map* subs, uint64_t budget) {
  pipeline_options o;
  o.input = cfg.str("input");
  o.workers = static_cast<int>(cfg.integer("workers"));
  o.snaplen = static_cast<int>(cfg.integer("snaplen"));
  o.bpf_filter = cfg.str("bpf_filter");
  // Validated by the schema's checks: both lists parse.
  parse_decap_kinds(cfg.str("decap"), &o.classifier.decode.kinds);
  parse_vxlan_ports(cfg.str("vxlan_ports"), &o.classifier.decode);
  o.afpacket.block_size = static_cast<uint32_t>(cfg.size("afpacket_block_size"));
  o.afpacket.block_count = static_cast<uint32_t>(cfg.integer("afpacket_block_count"));
  o.afpacket.fanout_id = static_cast<uint16_t>(cfg.integer("afpacket_fanout_id"));
  o.capture.batch_size = static_cast<size_t>(cfg.integer("batch_size"));
  o.dpdk.eal_args = cfg.str("dpdk_eal_args");
  o.dpdk.port = cfg.str("dpdk_port");
  o.dpdk.mempool_size = static_cast<uint32_t>(cfg.integer("dpdk_mempool_size"));
  o.dpdk.mbuf_cache = static_cast<uint32_t>(cfg.integer("dpdk_mbuf_cache"));
  o.dpdk.rx_desc = static_cast<uint16_t>(cfg.integer("dpdk_rx_desc"));
  o.dpdk.file_idle_end_ms = static_cast<int>(cfg.seconds("dpdk_file_idle_end") * 1000);

  auto ns = [](double s) { return static_cast<uint64_t>(s * 1e9); };
  o.classifier.max_flows = static_cast<uint32_t>(cfg.integer("flow_max"));
  if (o.classifier.max_flows == 0) // derived from the memory budget (set by main)
    o.classifier.max_flows = flow_slots_for(budget, o.workers);
  o.classifier.inactive_timeout_ns = ns(cfg.seconds("flow_inactive_timeout"));
  o.classifier.active_timeout_ns = ns(cfg.seconds("flow_active_timeout"));
  o.classifier.tcp_close_linger_ns = ns(cfg.seconds("tcp_close_linger"));
  o.classifier.max_ooo_bytes = static_cast<uint32_t>(cfg.size("tcp_max_ooo_bytes"));
  o.classifier.frag_timeout_ns = ns(cfg.seconds("frag_timeout"));
  o.classifier.frag_max_datagrams = static_cast<uint32_t>(cfg.integer("frag_max_datagrams"));
  // Validated by the schema's check: the list parses.
  parse_raw_meta_protocols(cfg.str("raw_meta_protocols"), &o.classifier.raw_protocols);
  o.classifier.raw_max_bytes = static_cast<uint32_t>(cfg.integer("raw_meta_max_bytes"));
  o.classifier.raw_max_packets = static_cast<uint32_t>(cfg.integer("raw_meta_max_packets"));

  o.parsers.http_parse_reply = cfg.flag("http_parse_reply");
  o.parsers.ssl_parse_reply = cfg.flag("ssl_parse_reply");
  o.parsers.max_line = static_cast<size_t>(cfg.integer("parser_max_line"));
  o.parsers.max_field = static_cast<size_t>(cfg.integer("parser_max_field"));
  o.parsers.max_headers = static_cast<size_t>(cfg.integer("parser_max_headers"));

  o.correlator.bridge_channel_num = static_cast<uint32_t>(cfg.integer("bridge_channel_num"));
  o.correlator.subscribers = subs;
  // A flow first reaches the correlator when it ends or reports: at most
  // this long after its first packet (active report, or idle / close end).
  o.correlator.expectations.hold_ns = o.classifier.active_timeout_ns +
                                      o.classifier.inactive_timeout_ns +
                                      o.classifier.tcp_close_linger_ns;

  o.publisher.endpoint_base = channel_base(cfg);
  o.publisher.channels = service::active_channels(cfg);
  o.correlator.fullflow = std::any_of(o.publisher.channels.begin(), o.publisher.channels.end(),
                                      [](const channel& c) { return c.group == sink_group::fullflow; });
  for (const auto& ch : o.publisher.channels)
    o.publisher.instances[ch.index()] = service::instances_of(cfg, ch);
  o.publisher.hwm = static_cast<int>(cfg.integer("publisher_hwm"));
  // -1 auto: finite input (capture file, net_pcap vdev reading files) waits
  // (bounded, pipeline_options::finite_block_ms) for slow exporters, live
  // input never; the pipeline decides once the input is open.
  o.publisher.block_ms = static_cast<int>(cfg.integer("publisher_block_ms"));
  // finite input only; the pipeline decides too
  o.exporter_wait_ms = static_cast<int>(cfg.seconds("exporter_wait") * 1000.0 + 0.5);
  return o;
}

// SIGHUP: re-reads the configuration and puts the subscriber map it names
// in force; on any error the running map stays.
void reload_subscribers(const service::cli& args, subscriber_source& source) {
  try {
    auto cfg = service::load_config(args);
    const auto path = cfg.str("subscribers_file");
    std::shared_ptr<const subscriber_map> next;
    if (!path.empty())
      next = std::make_shared<const subscriber_map>(subscriber_map::load(path));
    source.replace(next);
    spdlog::info("reloaded: subscriber map {} ({} entries)", path.empty() ? "off" : path,
                 next ? next->size() : 0);
  } catch (const std::exception& e) {
    spdlog::error("reload failed, the running subscriber map stays: {}", e.what());
  }
}

} // namespace

int main(int argc, char** argv) {
  service::cli args;
  std::optional<config> cfg;
  std::optional<subscriber_map> subs;
  uint64_t producer = 0;
  curve_keys keys;
  try {
    args = service::parse_cli(argc, argv, {"producer"});
    if (std::find(args.flags.begin(), args.flags.end(), "help") != args.flags.end()) {
      usage();
      return service::exit_ok;
    }
    cfg.emplace(service::load_config(args));
    service::require_input(*cfg);
    if (!cfg->str("subscribers_file").empty())
      subs.emplace(subscriber_map::load(cfg->str("subscribers_file")));
    producer = service::producer_option(args);
    keys = curve_keys_from_config(*cfg);
  } catch (const config_error& e) {
    service::fail(process_name, e.what());
    return service::exit_config;
  }
  service::setup_logging(process_name, *cfg);
  const auto& stop = service::install_stop_signals();

  std::string warning;
  if (auto problem = prepare_run_dir(cfg->str("run_dir"), warning); !problem.empty()) {
    spdlog::error("{}", problem);
    return service::exit_failure;
  }
  if (!warning.empty())
    spdlog::warn("{}", warning);
  // One memory budget for the whole pipeline (core/memory_budget.hpp); it
  // outlives the actor system below.
  std::string budget_why = "memory_budget";
  uint64_t budget_bytes = cfg->size("memory_budget");
  if (budget_bytes == 0)
    budget_bytes = memory_budget::default_limit(budget_why);
  memory_budget budget(budget_bytes);
  auto opts = make_options(*cfg, subs ? &*subs : nullptr, budget_bytes);
  opts.classifier.budget = &budget;
  opts.parsers.budget = &budget;
  spdlog::info("memory budget {} MiB ({}); flow table {} flows per worker{}",
               budget_bytes >> 20, budget_why, opts.classifier.max_flows,
               cfg->integer("flow_max") == 0 ? " (derived from the budget)" : "");
  if (uint64_t slots = uint64_t{opts.classifier.max_flows} * flow_cost_bytes *
                       static_cast<uint64_t>(std::max(opts.workers, 1));
      slots > budget_bytes / 100 * memory_budget::critical_percent)
    spdlog::warn("flow_max={} x {} worker(s) needs about {} MiB for flow slots alone, beyond "
                 "{}% of the memory budget: flows will be evicted for memory before the "
                 "table is full", opts.classifier.max_flows, opts.workers, slots >> 20,
                 memory_budget::critical_percent);
  opts.publisher.producer_id = producer; // 0: the pipeline draws one
  opts.publisher.keys = std::move(keys);
  if (opts.publisher.channels.empty())
    spdlog::warn("no export channel is configured: records are counted but not exported");

  // the correlator takes its map from here: the one loaded now, then
  // whatever a SIGHUP reload puts in force
  auto subscriber_updates = std::make_shared<subscriber_source>(
    subs ? std::make_shared<const subscriber_map>(std::move(*subs)) : nullptr);
  opts.correlator.subscribers = nullptr;
  opts.correlator.subscriber_updates = subscriber_updates;
  std::atomic<bool> pipeline_done{false};
  std::thread reloader([&] {
    while (!pipeline_done.load()) {
      if (service::take_hangup())
        reload_subscribers(args, *subscriber_updates);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });

  caf::actor_system_config sys_cfg;
  stage_stats stats;
  std::string error;
  control_plane control;
  if (!start_control_plane(control, *cfg, process_id::capture(), stats,
                           [] { std::raise(SIGTERM); }, {}, error)) {
    spdlog::error("{}", error);
    return service::exit_failure;
  }
  bool ok;
  {
    caf::actor_system sys{sys_cfg};
    ok = run_pipeline(sys, opts, stop, stats, error);
  }
  pipeline_done.store(true);
  reloader.join();
  if (!ok) {
    spdlog::error("{}", error);
    return service::exit_failure;
  }
  // Peak resident memory of the run, beside the memory budget's own peak
  // (docs/limits.md, "Memory budget").
  struct rusage ru {};
  if (getrusage(RUSAGE_SELF, &ru) == 0)
    stats.set("process.peak_rss_bytes", static_cast<uint64_t>(ru.ru_maxrss) * 1024);
  for (const auto& [name, value] : stats.snapshot())
    spdlog::info("{} = {}", name, value);
  return service::exit_ok;
}
