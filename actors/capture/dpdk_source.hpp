// SPDX-License-Identifier: Apache-2.0
#pragma once
// dpdk_source: packets from one RX queue of a DPDK port (input=dpdk).
// metaprobe-capture is the DPDK primary process: the first open_dpdk()
// initialises the EAL from `dpdk_eal_args`, configures the port with one RX
// queue per worker (symmetric Toeplitz RSS where the driver offers RSS),
// creates the mbuf pool and starts the port. Every queue becomes one
// packet_source, read by its own capture actor.
//
// Zero copy: a batch's frames are the mbufs themselves. Single-segment
// mbufs are decoded in place and freed (rte_pktmbuf_free_bulk) when the
// batch is destroyed (packet_batch::release), on whatever thread drops the
// last reference; the mempool is the default multi-producer/consumer ring,
// safe from non-EAL threads. Multi-segment mbufs (frames larger than one
// mbuf, chained by the PMD) are copied once into batch.arena.
//
// Timestamps: net_pcap passes the capture file's timestamps in the mbuf's
// RX timestamp field (DPDK 22.11 in microseconds, later versions in
// nanoseconds with RTE_ETH_RX_OFFLOAD_TIMESTAMP): used, the unit settled on
// each queue's first frame. Other drivers: the wall clock at the burst (NIC
// timestamps count in device clock units).
//
// End of input: live ports (NICs, net_af_packet, net_pcap on an interface
// or with infinite_rx) never end; they stop when the capture is asked to.
// A net_pcap vdev reading capture files (rx_pcap=FILE, one queue per file)
// is finite: the frames of each file are counted with libpcap (on a thread
// of their own, started when the port opens) and its queue ends when it
// finds no frame after receiving that many. Should the
// PMD lose frames (no mbuf, a frame too large), a finite queue that has
// received nothing for `file_idle_end_ms` ends as well, with a warning that
// names the shortfall.
//
// Ownership and threading: the sources of one port share it (and the EAL)
// through a shared_ptr, and so does every batch that still holds mbufs; the
// last one to go stops and closes the port, frees the mempool and calls
// rte_eal_cleanup(). One source is read by one thread at a time; that
// thread is registered with the EAL (rte_thread_register) on its first
// read so that it uses the mempool's per-lcore cache. The EAL exists once
// per process: after it was cleaned up, input=dpdk cannot be opened again
// in the same process.
//
// Errors: open_dpdk() returns an empty vector and sets `error` (EAL init,
// port lookup, configuration, mempool, start), leaving nothing configured.
// Builds without DPDK (libdpdk not found at configure time) compile the
// argument helpers below but open_dpdk() reports that DPDK is missing.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "capture/packet_source.hpp"

namespace metaprobe {

struct dpdk_options {
  std::string eal_args;             // dpdk_eal_args, split at blanks
  std::string port;                 // "" first port, a number: port id, else device name
  int queues = 1;                   // RX queues wanted (one per worker)
  uint32_t mempool_size = 32767;    // mbufs in the pool
  uint32_t mbuf_cache = 256;        // per-lcore mempool cache
  uint16_t rx_desc = 1024;          // RX descriptors per queue
  uint32_t held_mbufs = 0;          // mbufs the pipeline may hold at once (sizing check)
  int file_idle_end_ms = 2000;      // finite queue short of its count: end after this idle
  int poll_timeout_ms = 100;        // live: next_batch returns 0 after this long idle
};

// Whether this build can open DPDK ports.
bool dpdk_available();

// Opens the port (initialising the EAL on first use) and returns one
// source per configured RX queue. See the header comment for errors.
std::vector<std::unique_ptr<packet_source>> open_dpdk(const dpdk_options& o, std::string& error);

// ---- argument helpers (pure, no DPDK needed) ----

// dpdk_eal_args split at blanks (spaces, tabs); "a b" and 'a b' keep the
// blanks inside quotes. argv[0] is not included.
std::vector<std::string> split_eal_args(const std::string& args);

// A net_pcap vdev given with --vdev[=| ]net_pcapN,key=value,...
struct pcap_vdev {
  std::string name;                 // net_pcap0
  std::vector<std::string> rx_pcap; // files, one RX queue each, in order
  bool infinite_rx = false;
  bool live = false;                // reads an interface (rx_iface, rx_iface_in, iface)
  // Finite: reads capture files once (the queues end at their files' end).
  bool finite() const { return !rx_pcap.empty() && !infinite_rx && !live; }
};

// Every net_pcap vdev among the EAL arguments, in order.
std::vector<pcap_vdev> pcap_vdevs(const std::vector<std::string>& eal_args);

// The 40-byte RSS key made of 0x6d5a repeated: with it the Toeplitz hash of
// (src, dst, sport, dport) equals that of (dst, src, dport, sport), so both
// directions of a flow land on the same queue. `len` bytes (drivers with
// 52-byte keys get the same pattern).
std::vector<uint8_t> symmetric_rss_key(size_t len = 40);

// The Toeplitz hash of `data` with `key` (key.size() >= data_len + 4), as
// NICs compute it; used by the unit test of the symmetric key.
uint32_t toeplitz_hash(const std::vector<uint8_t>& key, const uint8_t* data, size_t data_len);

} // namespace metaprobe
