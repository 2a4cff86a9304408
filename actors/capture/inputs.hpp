// SPDX-License-Identifier: Apache-2.0
#pragma once
// The `input` key: which packet sources a capture reads. One entry per
// input kind, each turning the configuration into one or more sources
// (capture/packet_source.hpp); the capture spawns one reader per source.
//
//   pcap:PATH    capture file (pcap or pcapng), one source
//   iface:NAME   live interface through libpcap, one source
//   afpacket:NAME  live interface through AF_PACKET (TPACKET_V3 rings), one
//                  socket per worker in one fanout group
//                  (capture/afpacket_source.hpp)
//   dpdk         a DPDK port (dpdk_options, capture/dpdk_source.hpp), one
//                source per RX queue (one queue per worker where the driver
//                has them); finite for a net_pcap vdev reading files
//
// Errors: open_inputs() returns an empty vector and sets `error` (naming the
// input and the reason) when the input is unknown or cannot be opened;
// nothing is left open then.

#include <memory>
#include <string>
#include <vector>

#include "capture/afpacket_source.hpp"
#include "capture/dpdk_source.hpp"
#include "capture/packet_source.hpp"

namespace metaprobe {

struct input_options {
  std::string input;       // the `input` key
  int workers = 1;         // worker shards (multi-queue inputs open one source each)
  int snaplen = 65535;
  std::string bpf_filter;  // empty: all traffic
  afpacket_ring_options afpacket; // afpacket: rings and fanout group
  dpdk_options dpdk;       // input=dpdk (queues: taken from `workers`)
  decode_options decode;   // tunnels opened (`decap`, `vxlan_ports`)
};

std::vector<std::unique_ptr<packet_source>> open_inputs(const input_options& o,
                                                        std::string& error);

// True for inputs that never end by themselves and must not wait for the
// pipeline (drops are counted instead). For input=dpdk this is the default
// before the port is open; the opened sources say it exactly
// (packet_source::live(): false for a net_pcap vdev reading files).
bool input_is_live(const std::string& input);

} // namespace metaprobe
