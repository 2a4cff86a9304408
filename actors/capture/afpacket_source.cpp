// SPDX-License-Identifier: Apache-2.0
#include "capture/afpacket_source.hpp"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include <spdlog/spdlog.h>

#include "capture/decoder.hpp"

namespace metaprobe {

namespace {

constexpr int max_snaplen = 262144;
constexpr uint32_t vlan_tag_bytes = 4;
constexpr uint32_t mac_addr_bytes = 12; // destination + source MAC

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// Closes a descriptor unless released (the open steps below fail early).
struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0)
      ::close(fd);
  }
  int release() {
    const int f = fd;
    fd = -1;
    return f;
  }
};

bool attach_filter(int fd, bpf_program& prog) {
  sock_fprog fp{};
  fp.len = static_cast<unsigned short>(prog.bf_len);
  fp.filter = reinterpret_cast<sock_filter*>(prog.bf_insns);
  return ::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof fp) == 0;
}

bool attach_drop_all(int fd) {
  sock_filter drop{BPF_RET | BPF_K, 0, 0, 0};
  sock_fprog fp{1, &drop};
  return ::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof fp) == 0;
}

} // namespace

// The mapped ring of one socket. Shared by the source and by every block
// handed out, so it outlives whichever of them goes last.
struct afpacket_source::ring {
  int fd = -1;
  uint8_t* map = nullptr;
  size_t map_bytes = 0;
  uint32_t block_size = 0;
  uint32_t block_count = 0;
  // held[i]: block i was handed to batches and is not back yet.
  std::unique_ptr<std::atomic<bool>[]> held;

  ring() = default;
  ring(const ring&) = delete;
  ring& operator=(const ring&) = delete;
  ~ring() {
    if (map)
      ::munmap(map, map_bytes);
    if (fd >= 0)
      ::close(fd);
  }
  tpacket_block_desc* block(uint32_t i) const {
    return reinterpret_cast<tpacket_block_desc*>(map + size_t{i} * block_size);
  }
  uint32_t status(uint32_t i) const {
    return __atomic_load_n(&block(i)->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
  }
};

namespace {

// One block lent to the pipeline: its destructor gives it back to the
// kernel (status first, then the held flag, so the reader never sees a
// block that is not held but still carries the old TP_STATUS_USER).
struct block_lease {
  std::shared_ptr<afpacket_source::ring> r;
  uint32_t index;
  block_lease(std::shared_ptr<afpacket_source::ring> rr, uint32_t i) : r(std::move(rr)), index(i) {
    r->held[index].store(true, std::memory_order_relaxed);
  }
  block_lease(const block_lease&) = delete;
  block_lease& operator=(const block_lease&) = delete;
  ~block_lease() {
    __atomic_store_n(&r->block(index)->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    r->held[index].store(false, std::memory_order_release);
  }
};

// Opens, configures and maps one socket; leaves it bound with a drop-all
// filter and joined to the fanout group `fanout_id`; with `new_group` the
// kernel picks an unused id (PACKET_FANOUT_FLAG_UNIQUEID; 0 is a valid
// result) and it is returned in `fanout_id`.
std::shared_ptr<afpacket_source::ring> open_socket(const afpacket_options& o, int ifindex,
                                                   bool new_group, uint16_t& fanout_id,
                                                   std::string& error) {
  const std::string where = "AF_PACKET on " + o.iface;
  fd_guard fd;
  fd.fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0); // protocol 0: nothing yet
  if (fd.fd < 0) {
    error = errno_text(where + ": socket") +
            (errno == EPERM ? " (needs CAP_NET_RAW, e.g. run as root)" : "");
    return nullptr;
  }
  if (!attach_drop_all(fd.fd)) {
    error = errno_text(where + ": SO_ATTACH_FILTER");
    return nullptr;
  }
  int version = TPACKET_V3;
  if (::setsockopt(fd.fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version) != 0) {
    error = errno_text(where + ": PACKET_VERSION TPACKET_V3");
    return nullptr;
  }
  unsigned reserve = vlan_tag_bytes;
  if (::setsockopt(fd.fd, SOL_PACKET, PACKET_RESERVE, &reserve, sizeof reserve) != 0) {
    error = errno_text(where + ": PACKET_RESERVE");
    return nullptr;
  }
  tpacket_req3 req{};
  req.tp_block_size = o.ring.block_size;
  req.tp_block_nr = o.ring.block_count;
  req.tp_frame_size = TPACKET_ALIGNMENT << 7; // 2048; V3 frames are variable, the kernel checks it
  req.tp_frame_nr = (req.tp_block_size / req.tp_frame_size) * req.tp_block_nr;
  req.tp_retire_blk_tov = static_cast<unsigned>(o.block_timeout_ms);
  if (::setsockopt(fd.fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) != 0) {
    error = errno_text(where + ": PACKET_RX_RING of " + std::to_string(req.tp_block_nr) +
                       " blocks of " + std::to_string(req.tp_block_size) + " bytes");
    return nullptr;
  }
  auto r = std::make_shared<afpacket_source::ring>();
  r->block_size = o.ring.block_size;
  r->block_count = o.ring.block_count;
  r->map_bytes = size_t{r->block_size} * r->block_count;
  void* m = ::mmap(nullptr, r->map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.fd, 0);
  if (m == MAP_FAILED) {
    error = errno_text(where + ": mmap of the " + std::to_string(r->map_bytes) + "-byte ring");
    return nullptr;
  }
  r->map = static_cast<uint8_t*>(m);
  r->fd = fd.release(); // closed with the ring from here on
  r->held.reset(new std::atomic<bool>[r->block_count]);
  for (uint32_t i = 0; i < r->block_count; ++i)
    r->held[i].store(false, std::memory_order_relaxed);

  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = ifindex;
  if (::bind(r->fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
    error = errno_text(where + ": bind");
    return nullptr;
  }
  packet_mreq mr{};
  mr.mr_ifindex = ifindex;
  mr.mr_type = PACKET_MR_PROMISC;
  if (::setsockopt(r->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) != 0) {
    error = errno_text(where + ": promiscuous mode");
    return nullptr;
  }
  uint32_t flags = PACKET_FANOUT_FLAG_DEFRAG;
  if (new_group)
    flags |= PACKET_FANOUT_FLAG_UNIQUEID;
  uint32_t arg = (new_group ? 0u : fanout_id) | ((PACKET_FANOUT_HASH | flags) << 16);
  if (::setsockopt(r->fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) != 0) {
    error = errno_text(where + ": PACKET_FANOUT group " + std::to_string(fanout_id)) +
            (errno == EINVAL || errno == EALREADY
               ? " (id in use by another capture with other settings? set afpacket_fanout_id=0)"
               : "");
    return nullptr;
  }
  if (new_group) {
    uint32_t got = 0;
    socklen_t len = sizeof got;
    if (::getsockopt(r->fd, SOL_PACKET, PACKET_FANOUT, &got, &len) != 0) {
      error = errno_text(where + ": reading the fanout group id");
      return nullptr;
    }
    fanout_id = static_cast<uint16_t>(got & 0xffff);
  }
  return r;
}

} // namespace

std::vector<std::unique_ptr<packet_source>>
afpacket_source::open_group(const afpacket_options& o, int sockets, std::string& error) {
  std::vector<std::unique_ptr<packet_source>> out;
  const std::string where = "AF_PACKET on " + o.iface;
  const long page = ::sysconf(_SC_PAGESIZE);
  const int snaplen = o.snaplen <= 0 || o.snaplen > max_snaplen ? max_snaplen : o.snaplen;
  if (o.ring.block_size == 0 || o.ring.block_size % static_cast<uint32_t>(page) != 0) {
    error = where + ": afpacket_block_size " + std::to_string(o.ring.block_size) +
            " is not a multiple of the page size (" + std::to_string(page) + ")";
    return out;
  }
  // a block must hold at least one whole frame of snap length
  if (o.ring.block_size < static_cast<uint32_t>(snaplen) + 256) {
    error = where + ": afpacket_block_size " + std::to_string(o.ring.block_size) +
            " cannot hold one frame of snaplen " + std::to_string(snaplen) + " bytes";
    return out;
  }
  if (o.ring.block_count < 2 || sockets < 1) {
    error = where + ": a ring needs at least 2 blocks and the group one socket";
    return out;
  }
  if (o.iface.empty() || o.iface.size() >= IFNAMSIZ) {
    error = "AF_PACKET: bad interface name '" + o.iface + "'";
    return out;
  }
  const unsigned ifindex = ::if_nametoindex(o.iface.c_str());
  if (ifindex == 0) {
    error = errno_text(where + ": no such interface");
    return out;
  }
  bool loopback = false;
  {
    fd_guard s;
    s.fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, o.iface.c_str(), o.iface.size());
    if (s.fd < 0 || ::ioctl(s.fd, SIOCGIFHWADDR, &ifr) != 0) {
      error = errno_text(where + ": reading the link type");
      return out;
    }
    const int hw = ifr.ifr_hwaddr.sa_family;
    loopback = hw == ARPHRD_LOOPBACK;
    if (hw != ARPHRD_ETHER && !loopback) {
      error = where + ": link type (ARPHRD " + std::to_string(hw) +
              ") is not Ethernet; use input=iface:" + o.iface + " (libpcap)";
      return out;
    }
  }

  // The real filter, compiled by libpcap for Ethernet with the snap length
  // (an empty expression compiles to "accept snaplen bytes").
  pcap_t* dead = pcap_open_dead(DLT_EN10MB, snaplen);
  if (!dead) {
    error = where + ": pcap_open_dead failed";
    return out;
  }
  bpf_program prog{};
  if (pcap_compile(dead, &prog, o.bpf.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
    error = where + ": bad BPF filter '" + o.bpf + "': " + pcap_geterr(dead);
    pcap_close(dead);
    return out;
  }
  pcap_close(dead);

  std::vector<std::unique_ptr<afpacket_source>> group;
  uint16_t fanout_id = o.ring.fanout_id;
  for (int i = 0; i < sockets; ++i) {
    const bool new_group = i == 0 && o.ring.fanout_id == 0;
    auto r = open_socket(o, static_cast<int>(ifindex), new_group, fanout_id, error);
    if (!r) {
      pcap_freecode(&prog);
      return out;
    }
    std::unique_ptr<afpacket_source> s(new afpacket_source());
    s->ring_ = std::move(r);
    s->name_ = "afpacket:" + o.iface + "/" + std::to_string(i);
    s->loopback_ = loopback;
    s->poll_timeout_ms_ = o.poll_timeout_ms;
    s->fanout_id_ = fanout_id;
    group.push_back(std::move(s));
  }
  // every member joined: now the frames may come in
  for (auto& s : group) {
    if (!attach_filter(s->ring_->fd, prog)) {
      error = errno_text(where + ": SO_ATTACH_FILTER '" + o.bpf + "'");
      pcap_freecode(&prog);
      return out;
    }
  }
  pcap_freecode(&prog);
  spdlog::info("capture: {} AF_PACKET socket(s) on {}, fanout group {} (hash, defrag), ring {} x "
               "{} bytes each", sockets, o.iface, fanout_id, o.ring.block_count,
               o.ring.block_size);
  for (auto& s : group)
    out.push_back(std::move(s));
  return out;
}

afpacket_source::~afpacket_source() = default;

bool afpacket_source::live_stats(source_live_stats& out) const {
  if (!ring_)
    return false;
  tpacket_stats_v3 st{};
  socklen_t len = sizeof st;
  if (::getsockopt(ring_->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) != 0)
    return false;
  // tp_packets already includes tp_drops (as libpcap's ps_recv does)
  live_.received += st.tp_packets;
  live_.dropped += st.tp_drops;
  live_.ring_freezes += st.tp_freeze_q_cnt;
  out = live_;
  return true;
}

// The current block is the kernel's no more and not one we still hold.
bool afpacket_source::block_ready() {
  if (held_) // being read: frames left in it
    return true;
  if (ring_->held[current_].load(std::memory_order_acquire))
    return false;
  return (ring_->status(current_) & TP_STATUS_USER) != 0;
}

// Waits up to the poll timeout for the current block. While the block is
// held by batches still in the pipeline the socket would poll readable at
// once, so that wait sleeps in short steps instead.
bool afpacket_source::wait_for_block() {
  const auto deadline =
    std::chrono::steady_clock::now() + std::chrono::milliseconds(poll_timeout_ms_);
  for (;;) {
    if (block_ready())
      return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline)
      return false;
    const int left_ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1);
    if (ring_->held[current_].load(std::memory_order_acquire)) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      continue;
    }
    pollfd pfd{};
    pfd.fd = ring_->fd;
    pfd.events = POLLIN | POLLERR;
    const int rc = ::poll(&pfd, 1, left_ms);
    if (rc < 0 && errno != EINTR) {
      error_ = errno_text("capture " + name_ + ": poll");
      ++counters_.read_errors;
      failed_ = true;
      return false;
    }
    if (rc > 0 && (pfd.revents & (POLLERR | POLLNVAL | POLLHUP))) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(ring_->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      error_ = "capture " + name_ + ": socket error: " +
               (err ? std::strerror(err) : "interface gone or down");
      ++counters_.read_errors;
      failed_ = true;
      return false;
    }
  }
}

std::ptrdiff_t afpacket_source::next_batch(packet_batch& batch, size_t max_packets) {
  batch.packets.clear();
  batch.arena.clear();
  if (failed_)
    return -1;
  if (max_packets == 0)
    return 0;
  if (!wait_for_block()) {
    if (failed_)
      return -1;
    ++counters_.empty_polls;
    return 0;
  }
  tpacket_block_desc* bd = ring_->block(current_);
  uint8_t* base = reinterpret_cast<uint8_t*>(bd);
  const uint32_t num = bd->hdr.bh1.num_pkts;
  if (!held_) { // first look at this block
    held_ = std::make_shared<block_lease>(ring_, current_);
    next_frame_ = 0;
    frame_offset_ = bd->hdr.bh1.offset_to_first_pkt;
  }
  batch.packets.reserve(std::min<size_t>(max_packets, num - next_frame_));
  while (next_frame_ < num && batch.packets.size() < max_packets) {
    auto* h = reinterpret_cast<tpacket3_hdr*>(base + frame_offset_);
    const uint32_t next = h->tp_next_offset;
    ++next_frame_;
    frame_offset_ += next;
    if (loopback_) {
      const auto* sll = reinterpret_cast<const sockaddr_ll*>(
        reinterpret_cast<const uint8_t*>(h) + TPACKET_ALIGN(sizeof(tpacket3_hdr)));
      if (sll->sll_pkttype == PACKET_OUTGOING)
        continue; // seen again as incoming
    }
    uint8_t* frame = reinterpret_cast<uint8_t*>(h) + h->tp_mac;
    uint32_t caplen = h->tp_snaplen;
    uint32_t len = h->tp_len;
    if ((h->tp_status & TP_STATUS_VLAN_VALID) && caplen >= mac_addr_bytes) {
      // put the tag the kernel took off back: PACKET_RESERVE left room
      const uint16_t tpid =
        (h->tp_status & TP_STATUS_VLAN_TPID_VALID) ? h->hv1.tp_vlan_tpid : ETH_P_8021Q;
      std::memmove(frame - vlan_tag_bytes, frame, mac_addr_bytes);
      frame -= vlan_tag_bytes;
      const uint16_t tag[2] = {htons(tpid), htons(static_cast<uint16_t>(h->hv1.tp_vlan_tci))};
      std::memcpy(frame + mac_addr_bytes, tag, sizeof tag);
      caplen += vlan_tag_bytes;
      len += vlan_tag_bytes;
    }
    const uint64_t ts = uint64_t{h->tp_sec} * 1000000000ULL + h->tp_nsec;
    batch.packets.emplace_back();
    decode_packet(frame, caplen, len, ts, linktype::en10mb, batch.packets.back(), decode_);
    counters_.frame(batch.packets.back(), caplen, len);
  }
  if (!batch.packets.empty())
    batch.backing = held_;
  if (next_frame_ >= num) { // block done: the batches keep it until they go
    held_.reset();
    current_ = (current_ + 1) % ring_->block_count;
  }
  return static_cast<std::ptrdiff_t>(batch.packets.size());
}

} // namespace metaprobe
