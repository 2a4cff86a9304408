// SPDX-License-Identifier: Apache-2.0
#include "pipeline/pipeline.hpp"

#include <algorithm>
#include <random>

#include <spdlog/spdlog.h>

#include "capture/inputs.hpp"
#include "classifier/classifier_actor.hpp"
#include "correlator/correlator_actor.hpp"
#include "parsers/stage/parser_actor.hpp"
#include "publisher/publisher_actor.hpp"

namespace metaprobe {

namespace {

// "dns.ipfix 1/2, meta.ipfix 0/1": connected / wanted of `channels`.
std::string describe_exporters(const publisher& pub, const std::vector<channel>& channels) {
  std::string out;
  for (const auto& ch : channels) {
    if (!out.empty())
      out += ", ";
    out += ch.name() + " " + std::to_string(pub.counters(ch).exporters_connected) + "/" +
           std::to_string(pub.expected_exporters(ch));
  }
  return out;
}

// Finite input: waits (bounded) until every channel has its configured
// exporter instances connected, so the first batches are not all queued
// for the first instance that happens to connect.
void wait_for_exporters(publisher& pub, int wait_ms, const std::atomic<bool>& stop,
                        stage_stats& stats) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  // a short first look: exporters already waiting connect within a few ms
  auto missing = pub.wait_for_exporters(
    std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(200)), stop);
  if (!missing.empty() && !stop.load()) {
    spdlog::info("waiting up to {:.1f} s for exporters to connect (connected/configured: {})",
                 wait_ms / 1000.0, describe_exporters(pub, missing));
    missing = pub.wait_for_exporters(deadline, stop);
  }
  report_exporters_connected(pub, stats);
  if (!missing.empty() && !stop.load())
    spdlog::warn("exporters missing after {:.1f} s (connected/configured: {}); reading the input "
                 "anyway",
                 wait_ms / 1000.0, describe_exporters(pub, missing));
}

} // namespace

bool run_pipeline(caf::actor_system& sys, pipeline_options opts, const std::atomic<bool>& stop,
                  stage_stats& stats, std::string& error) {
  input_options in;
  in.input = opts.input;
  in.workers = opts.workers;
  in.snaplen = opts.snaplen;
  in.bpf_filter = opts.bpf_filter;
  in.decode = opts.classifier.decode;
  in.dpdk = opts.dpdk;
  in.afpacket = opts.afpacket;
  // mbufs the pipeline may hold: the batches in flight and the one being read
  in.dpdk.held_mbufs =
    static_cast<uint32_t>((opts.capture.max_in_flight + 1) * static_cast<int64_t>(opts.capture.batch_size));
  auto sources = open_inputs(in, error);
  if (sources.empty())
    return false;
  opts.capture.live = std::any_of(sources.begin(), sources.end(),
                                  [](const auto& s) { return s->live(); });
  if (opts.publisher.block_ms < 0)
    opts.publisher.block_ms = opts.capture.live ? 0 : opts.finite_block_ms;
  if (opts.publisher.producer_id == 0)
    opts.publisher.producer_id = std::random_device{}() | (uint64_t(std::random_device{}()) << 32);

  std::shared_ptr<publisher> pub;
  try {
    pub = std::make_shared<publisher>(opts.publisher);
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
  if (!opts.capture.live && opts.exporter_wait_ms > 0)
    wait_for_exporters(*pub, opts.exporter_wait_ms, stop, stats);

  // Stats are shared with the actors; they outlive the run through this
  // shared_ptr whose deleter does nothing (the caller owns `stats`).
  std::shared_ptr<stage_stats> shared_stats(&stats, [](stage_stats*) {});
  auto gauge = std::make_shared<pipeline_gauge>();
  caf::scoped_actor waiter{sys};

  const auto& registry = protocol_registry();
  size_t proto_slots = 0;
  for (const auto& e : registry)
    proto_slots = std::max(proto_slots, static_cast<size_t>(e.id) + 1);

  const int workers = std::max(1, opts.workers);
  const int expected_flushes = workers * (1 + static_cast<int>(registry.size()));
  auto pub_actor = spawn_publisher(sys, pub, caf::actor_cast<caf::actor>(waiter), gauge,
                                   shared_stats);
  auto corr = spawn_correlator(sys, opts.correlator, pub_actor, expected_flushes, gauge,
                               shared_stats);
  const uint64_t boot_seed =
    static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  std::vector<classifier_actor> shards;
  for (int w = 0; w < workers; ++w) {
    std::vector<parser_actor> parsers(proto_slots);
    for (const auto& e : registry)
      parsers[static_cast<size_t>(e.id)] =
        spawn_parser(sys, e, opts.parsers, w, corr, gauge, shared_stats);
    shards.push_back(spawn_classifier(sys, opts.classifier, w, boot_seed, std::move(parsers),
                                      corr, gauge, shared_stats));
  }
  const size_t readers = sources.size();
  auto caps = spawn_capture(sys, opts.capture, std::move(sources), std::move(shards), gauge,
                            shared_stats, &stop);
  spdlog::info("pipeline: {} worker(s), {} parser kind(s), input {} ({} reader(s))", workers,
               registry.size(), opts.input, readers);
  for (auto& cap : caps)
    waiter->send(cap, run_atom::value);
  bool done = false;
  waiter->receive_while([&] { return !done; })([&](done_atom) { done = true; });
  return true;
}

} // namespace metaprobe
