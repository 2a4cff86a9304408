// SPDX-License-Identifier: Apache-2.0
#pragma once
// packet_source: what the capture actor reads packets from. One source is
// one stream of frames: a capture file, a live interface (libpcap), one
// AF_PACKET fanout member or one DPDK RX queue. Each source is read by one
// capture actor (its own thread); sources of one input run side by side and
// every one of them shards its packets over all workers by address-pair
// hash, so both directions of a flow meet in one shard whatever source they
// arrived on.
//
// Ownership and threading: a source is used by one thread at a time (the
// capture actor that owns it). Every decoded_packet::data pointer returned
// in a batch stays valid as long as the batch lives: the source keeps the
// memory alive through packet_batch::arena, ::backing or ::release (the
// latter runs when the batch is destroyed, possibly on another thread).
//
// Return codes of next_batch():
//   > 0  number of frames appended to batch.packets (decoded, any status).
//   0    finite input: end of input (eof() is now true). live input:
//        nothing arrived within the poll timeout; eof() stays false so the
//        caller can check for shutdown and call again.
//   -1   read error; error() says why. A source with a read error is
//        finished (eof() true) unless it is live and the error transient.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "capture/decoder.hpp"
#include "core/stream.hpp"

namespace metaprobe {

struct source_counters {
  uint64_t packets = 0;    // frames read
  uint64_t bytes = 0;      // captured bytes of those frames
  uint64_t wire_bytes = 0; // their original lengths
  std::array<uint64_t, decode_status_count> status{}; // indexed by decode_status
  uint64_t truncated_records = 0; // file ended inside a record
  uint64_t read_errors = 0;
  uint64_t empty_polls = 0;       // live: next_batch returned 0 (timeout)
  // Tunnels opened (one count per layer, by decap_kind) and left closed.
  std::array<uint64_t, decap_kind_count> decap{};
  uint64_t decap_depth_exceeded = 0; // packets with a tunnel past tunnel_context::max_layers
  uint64_t decap_gtpu_control = 0;   // GTP-U messages other than T-PDU (not opened)
  uint64_t decap_l2tp_control = 0;   // L2TP control messages (not opened)
  uint64_t decap_bad_inner = 0;      // UDP tunnel headers without a valid inner packet

  uint64_t count(decode_status s) const { return status[static_cast<size_t>(s)]; }

  // One frame read (caplen captured of len on the wire) and decoded into p.
  void frame(const decoded_packet& p, uint32_t caplen, uint32_t len) {
    ++packets;
    bytes += caplen;
    wire_bytes += len;
    ++status[static_cast<size_t>(p.status)];
    const tunnel_context& t = p.tunnel;
    if ((t.depth | t.events) == 0)
      return;
    for (uint8_t i = 0; i < t.depth; ++i)
      ++decap[t.kinds[i]];
    decap_depth_exceeded += (t.events & tunnel_context::ev_depth_exceeded) != 0;
    decap_gtpu_control += (t.events & tunnel_context::ev_gtpu_control) != 0;
    decap_l2tp_control += (t.events & tunnel_context::ev_l2tp_control) != 0;
    decap_bad_inner += (t.events & tunnel_context::ev_bad_inner) != 0;
  }
};

// Kernel/driver counters of a live source.
struct source_live_stats {
  uint64_t received = 0;
  uint64_t dropped = 0;    // dropped for lack of buffer space
  uint64_t if_dropped = 0; // dropped by the interface/driver
  uint64_t ring_freezes = 0; // AF_PACKET: times the next ring block was still held
};

class packet_source {
public:
  virtual ~packet_source() = default;

  // Clears `batch` and reads up to max_packets frames into it (see above).
  virtual std::ptrdiff_t next_batch(packet_batch& batch, size_t max_packets) = 0;

  // Live input never waits for the pipeline (full pipeline: counted drops).
  virtual bool live() const = 0;
  virtual bool eof() const = 0;
  virtual std::string error() const = 0;
  // For logs: file path, interface name, "dpdk:port0/q1", ...
  virtual const std::string& name() const = 0;
  virtual const source_counters& counters() const = 0;
  // Kernel/driver counters; false when the source has none.
  virtual bool live_stats(source_live_stats&) const { return false; }

  // Which tunnels the decoder opens (default: all); set before reading.
  void set_decode_options(const decode_options& o) { decode_ = o; }

protected:
  decode_options decode_;
};

} // namespace metaprobe
