// SPDX-License-Identifier: Apache-2.0
#pragma once
// Spawns and wires the actor pipeline of metaprobe-capture (see
// core/actors.hpp for the picture) and runs it to the end of its input.

#include <atomic>
#include <string>

#include <caf/actor_system.hpp>

#include "capture/afpacket_source.hpp"
#include "capture/capture_actor.hpp"
#include "capture/dpdk_source.hpp"
#include "classifier/classifier_core.hpp"
#include "core/stage_stats.hpp"
#include "correlator/correlator.hpp"
#include "parsers/registry.hpp"
#include "publisher/publisher.hpp"

namespace metaprobe {

struct pipeline_options {
  std::string input;              // the `input` key (capture/inputs.hpp)
  int workers = 1;
  int snaplen = 65535;
  std::string bpf_filter;
  afpacket_ring_options afpacket; // input=afpacket:NAME
  dpdk_options dpdk;              // input=dpdk (capture/dpdk_source.hpp)
  // publisher.block_ms < 0 means auto: this on finite input (capture files,
  // net_pcap vdevs reading files), 0 (never block) on live input.
  int finite_block_ms = 30000;
  // Finite input only (capture files, FIFOs, net_pcap vdevs reading files):
  // how long to wait before reading for every channel to have its
  // configured exporter instances connected (`exporter_wait`); 0: no wait.
  // A channel still short then is logged (warning) and the input read
  // anyway. Live input never waits.
  int exporter_wait_ms = 10000;
  capture_options capture;
  classifier_options classifier;
  parser_options parsers;
  correlator_options correlator;
  publisher_options publisher;
};

// Runs until the input ends or `stop` turns true, then drains every stage
// and finishes the channels. On finite input it first waits for the
// exporters (exporter_wait_ms, bounded by `stop` as well). Returns false with `error` set when the
// pipeline could not start (input cannot be opened, endpoint in use).
bool run_pipeline(caf::actor_system& sys, pipeline_options opts, const std::atomic<bool>& stop,
                  stage_stats& stats, std::string& error);

} // namespace metaprobe
