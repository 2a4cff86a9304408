// SPDX-License-Identifier: Apache-2.0
#pragma once
// afpacket_source: live capture through a Linux AF_PACKET socket with a
// TPACKET_V3 receive ring (PACKET_RX_RING, mmap), read without copying.
// open_group() opens one socket per worker on one interface, all members of
// one PACKET_FANOUT group (PACKET_FANOUT_HASH: the kernel's symmetric flow
// hash, so both directions of a connection reach the same socket, with
// PACKET_FANOUT_FLAG_DEFRAG: IPv4 fragments are reassembled by the kernel
// before the hash, so a datagram's fragments never split). Each socket is
// one packet_source, read by its own capture actor; the capture actor still
// shards every packet by address-pair hash over all workers, so the fanout
// spreads the reading, the per-flow affinity of the workers does not depend
// on it.
//
// Ring and zero copy. The ring is block_count blocks of block_size bytes.
// The kernel fills the blocks in ring order and hands a block over
// (TP_STATUS_USER) when it is full or block_timeout_ms after its first
// frame. A batch returned by next_batch() holds frames of one block only
// and points into the ring (decoded_packet::data); it keeps the block
// through packet_batch::backing, a shared reference per block: when the
// last batch holding a block is destroyed (on whatever thread), the block's
// status goes back to TP_STATUS_KERNEL. Blocks may come back in any order:
// the kernel only ever fills the next block in ring order, and waits (and
// counts, see live_stats) while that block is still held; the reader never
// reads a block it has handed out and not got back (a per-block "held"
// flag, cleared after the status is returned), so a block that is still
// held when the reader wraps round to it is not read twice. A block with
// more frames than max_packets yields several batches that share it. A
// frame whose VLAN tag the kernel took off (TP_STATUS_VLAN_VALID) gets it
// back in place: the ring reserves 4 bytes in front of every frame
// (PACKET_RESERVE), the MAC addresses move into them and the tag goes
// behind them, as on the wire.
//
// Filtering and snap length. A classic BPF program compiled by libpcap for
// Ethernet with the snap length is attached to every socket
// (SO_ATTACH_FILTER; an empty filter accepts everything), so the kernel
// truncates frames to the snap length. The kernel filters frames after it
// took their outer VLAN tag off: a filter sees the frame without that tag
// (libpcap's `vlan` keyword does not match such frames).
//
// Opening never duplicates frames: every socket starts with a filter that
// drops everything, is bound and joins the fanout group, and only when all
// members joined does each get the real filter.
//
// Loopback devices: frames the host sends appear twice (outgoing and
// incoming); the outgoing copy is skipped, as libpcap does.
//
// Ownership and threading: a source is used by one thread at a time; the
// ring (mapping and socket) lives until the source and every batch holding
// one of its blocks are gone. Counters as in packet_source.hpp.
//
// Return codes of next_batch(): > 0 frames appended (one block at most);
// 0 nothing arrived within the poll timeout, or the next block is still
// held by the pipeline (eof() stays false); -1 the socket reported an
// error (interface gone or down: error() says why); the source is then
// finished (eof() true).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "capture/packet_source.hpp"

namespace metaprobe {

// Ring and fanout settings (configuration keys afpacket_*).
struct afpacket_ring_options {
  uint32_t block_size = 1 << 20; // bytes, a multiple of the page size
  uint32_t block_count = 32;     // blocks per socket (ring = size * count)
  uint16_t fanout_id = 0;        // fanout group id; 0: the kernel picks an unused one
                                 // (which may be 0 itself)
};

struct afpacket_options {
  std::string iface;
  int snaplen = 65535;           // <= 0 or > 262144: 262144
  std::string bpf;               // libpcap filter expression; empty: all traffic
  afpacket_ring_options ring;
  int poll_timeout_ms = 100;     // next_batch() returns 0 after this long
  int block_timeout_ms = 10;     // a partly filled block is handed over after this
};

class afpacket_source final : public packet_source {
public:
  // Opens `sockets` (>= 1) sockets on opts.iface in one fanout group. On
  // failure returns an empty vector, sets `error` (interface, step and
  // errno text; EPERM means CAP_NET_RAW is missing) and leaves nothing open.
  static std::vector<std::unique_ptr<packet_source>>
  open_group(const afpacket_options& opts, int sockets, std::string& error);

  ~afpacket_source() override;
  afpacket_source(const afpacket_source&) = delete;
  afpacket_source& operator=(const afpacket_source&) = delete;

  std::ptrdiff_t next_batch(packet_batch& batch, size_t max_packets) override;

  bool live() const override { return true; }
  bool eof() const override { return failed_; }
  std::string error() const override { return error_; }
  const std::string& name() const override { return name_; }
  const source_counters& counters() const override { return counters_; }
  // PACKET_STATISTICS, accumulated (the kernel resets them on every read):
  // received = frames that reached the socket (drops included), dropped =
  // frames lost because the ring was full, ring_freezes = times the kernel
  // found the next block still held (tp_freeze_q_cnt).
  bool live_stats(source_live_stats& out) const override;

  uint16_t fanout_id() const { return fanout_id_; }

  struct ring; // mapping + socket, shared with the blocks handed out

private:
  afpacket_source() = default;
  bool block_ready();
  bool wait_for_block();

  std::shared_ptr<ring> ring_;
  std::string name_;
  std::string error_;
  bool failed_ = false;
  bool loopback_ = false;
  int poll_timeout_ms_ = 100;
  uint16_t fanout_id_ = 0;
  uint32_t current_ = 0;            // block read next
  uint32_t next_frame_ = 0;         // frames of the current block already returned
  uint32_t frame_offset_ = 0;       // offset of that frame in the block
  std::shared_ptr<const void> held_; // reference of the current block while it is read
  source_counters counters_;
  mutable source_live_stats live_{};
};

} // namespace metaprobe
