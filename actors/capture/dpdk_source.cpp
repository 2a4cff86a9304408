// SPDX-License-Identifier: Apache-2.0
#include "capture/dpdk_source.hpp"

#include <cctype>

namespace metaprobe {

// ---- argument helpers (every build) ----

std::vector<std::string> split_eal_args(const std::string& args) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (char c : args) {
    if (quote) {
      if (c == quote)
        quote = 0;
      else
        cur += c;
      continue;
    }
    if (c == '"' || c == '\'') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word)
        out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word)
    out.push_back(std::move(cur));
  return out;
}

std::vector<pcap_vdev> pcap_vdevs(const std::vector<std::string>& eal_args) {
  std::vector<pcap_vdev> out;
  for (size_t i = 0; i < eal_args.size(); ++i) {
    std::string spec;
    const std::string& a = eal_args[i];
    if (a.rfind("--vdev=", 0) == 0)
      spec = a.substr(7);
    else if (a == "--vdev" && i + 1 < eal_args.size())
      spec = eal_args[++i];
    else
      continue;
    // name,key=value,key=value (values hold no commas: DPDK's kvargs rule)
    std::vector<std::string> parts;
    size_t start = 0;
    for (;;) {
      size_t comma = spec.find(',', start);
      parts.push_back(spec.substr(start, comma == std::string::npos ? comma : comma - start));
      if (comma == std::string::npos)
        break;
      start = comma + 1;
    }
    if (parts.empty() || parts[0].rfind("net_pcap", 0) != 0)
      continue;
    pcap_vdev v;
    v.name = parts[0];
    for (size_t p = 1; p < parts.size(); ++p) {
      const size_t eq = parts[p].find('=');
      const std::string key = parts[p].substr(0, eq);
      const std::string value = eq == std::string::npos ? std::string() : parts[p].substr(eq + 1);
      if (key == "rx_pcap")
        v.rx_pcap.push_back(value);
      else if (key == "infinite_rx")
        v.infinite_rx = value == "1";
      else if (key == "rx_iface" || key == "rx_iface_in" || key == "iface")
        v.live = true;
    }
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<uint8_t> symmetric_rss_key(size_t len) {
  std::vector<uint8_t> key(len);
  for (size_t i = 0; i < len; ++i)
    key[i] = i % 2 == 0 ? 0x6d : 0x5a;
  return key;
}

uint32_t toeplitz_hash(const std::vector<uint8_t>& key, const uint8_t* data, size_t data_len) {
  // The 32-bit window of the key that starts at each input bit, XORed in
  // for every set bit.
  uint32_t hash = 0;
  uint32_t window = (uint32_t{key[0]} << 24) | (uint32_t{key[1]} << 16) |
                    (uint32_t{key[2]} << 8) | key[3];
  for (size_t i = 0; i < data_len; ++i) {
    const uint8_t next = i + 4 < key.size() ? key[i + 4] : 0;
    for (int b = 7; b >= 0; --b) {
      if (data[i] & (1u << b))
        hash ^= window;
      window = (window << 1) | ((next >> b) & 1u);
    }
  }
  return hash;
}

} // namespace metaprobe

#ifndef METAPROBE_HAVE_DPDK

namespace metaprobe {

bool dpdk_available() { return false; }

std::vector<std::unique_ptr<packet_source>> open_dpdk(const dpdk_options&, std::string& error) {
  error = "input=dpdk: this metaprobe-capture was built without DPDK (libdpdk was not found "
          "when the build was configured; install dpdk-dev and reconfigure, or use "
          "input=pcap:PATH / iface:NAME)";
  return {};
}

} // namespace metaprobe

#else // METAPROBE_HAVE_DPDK

#include <pcap/pcap.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_pause.h>

#include <spdlog/spdlog.h>

#include "capture/decoder.hpp"

namespace metaprobe {

namespace {

std::shared_ptr<spdlog::logger> capture_log() {
  auto l = spdlog::get("capture");
  return l ? l : spdlog::default_logger();
}

std::string rte_error(int err) {
  return std::string(rte_strerror(err < 0 ? -err : err));
}

uint64_t wall_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count());
}

using mono = std::chrono::steady_clock;

// The EAL of this process. Its lifetime is the lifetime of the ports that
// use it: the last one calls rte_eal_cleanup(). DPDK allows one EAL per
// process, initialised once: this is process-wide state by nature.
class eal_session {
public:
  static std::shared_ptr<eal_session> acquire(const std::string& args, std::string& error);
  ~eal_session() {
    const int rc = rte_eal_cleanup();
    if (rc != 0)
      capture_log()->warn("dpdk: rte_eal_cleanup failed: {}", rte_error(rc));
  }
  eal_session(const eal_session&) = delete;
  eal_session& operator=(const eal_session&) = delete;

private:
  eal_session() = default;
  struct registry {
    std::mutex mu;
    std::weak_ptr<eal_session> current;
    std::string args;
    bool used = false;
    std::vector<std::string> argv_storage; // EAL may keep pointers into argv
  };
  static registry& reg() {
    static registry r;
    return r;
  }
};

std::shared_ptr<eal_session> eal_session::acquire(const std::string& args, std::string& error) {
  registry& r = reg();
  std::lock_guard<std::mutex> lock(r.mu);
  if (auto s = r.current.lock()) {
    if (args != r.args) {
      error = "dpdk: the EAL is already running with other arguments ('" + r.args + "')";
      return nullptr;
    }
    return s;
  }
  if (r.used) {
    error = "dpdk: the EAL was initialised and cleaned up before in this process; DPDK "
            "cannot initialise it twice";
    return nullptr;
  }
  r.used = true;
  r.args = args;
  r.argv_storage = split_eal_args(args);
  r.argv_storage.insert(r.argv_storage.begin(), "metaprobe-capture");
  std::vector<char*> argv;
  for (auto& a : r.argv_storage)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  // rte_eal_init pins the calling thread to the main lcore; this thread is
  // not a packet thread, so it gets its CPU set back afterwards.
  cpu_set_t saved;
  const bool have_saved = pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) == 0;
  const int rc = rte_eal_init(static_cast<int>(argv.size() - 1), argv.data());
  if (have_saved)
    pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
  if (rc < 0) {
    error = "dpdk: EAL initialisation failed with dpdk_eal_args '" + args +
            "': " + rte_error(rte_errno) + " (see the EAL messages above)";
    return nullptr;
  }
  std::shared_ptr<eal_session> s(new eal_session());
  r.current = s;
  return s;
}

// What a finite queue knows of its capture file.
struct file_info {
  bool finite = false;
  uint64_t first_ts_ns = 0;             // timestamp of the first frame
  std::shared_future<int64_t> frames;   // its frames (-1: read error)
};

// Checks an rx_pcap file (readable, Ethernet: net_pcap hands frames on as
// Ethernet whatever the file's link type) and reads its first timestamp;
// its frames are counted with libpcap on a thread of their own, as the
// count is needed only at the end of the file. finite false and `error`
// set when it cannot be used.
file_info open_capture_file(const std::string& path, std::string& error) {
  file_info out;
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p =
    pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (!p) {
    error = "dpdk: cannot open rx_pcap file " + path + ": " + errbuf;
    return out;
  }
  if (pcap_datalink(p) != DLT_EN10MB) {
    error = "dpdk: rx_pcap file " + path + " has link type " + std::to_string(pcap_datalink(p)) +
            "; net_pcap delivers frames as Ethernet, so only Ethernet captures can be read "
            "through DPDK (use input=pcap:" + path + ")";
    pcap_close(p);
    return out;
  }
  const bool nano = pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO;
  pcap_pkthdr* h = nullptr;
  const u_char* d = nullptr;
  if (pcap_next_ex(p, &h, &d) == 1)
    out.first_ts_ns = static_cast<uint64_t>(h->ts.tv_sec) * 1000000000ULL +
                      static_cast<uint64_t>(h->ts.tv_usec) * (nano ? 1 : 1000);
  pcap_close(p);
  out.finite = true;
  out.frames = std::async(std::launch::async, [path] {
    char eb[PCAP_ERRBUF_SIZE] = {};
    pcap_t* f = pcap_open_offline(path.c_str(), eb);
    if (!f)
      return int64_t{-1};
    int64_t n = 0;
    pcap_pkthdr* fh = nullptr;
    const u_char* fd = nullptr;
    int rc;
    while ((rc = pcap_next_ex(f, &fh, &fd)) == 1)
      ++n;
    pcap_close(f);
    return rc == PCAP_ERROR_BREAK ? n : int64_t{-1};
  }).share();
  return out;
}

} // namespace

// One configured and started port with its mempool.
struct dpdk_port {
  std::shared_ptr<eal_session> eal; // destroyed after the port is closed
  uint16_t id = 0;
  std::string name;
  std::string driver;
  rte_mempool* pool = nullptr;
  bool configured = false;
  bool started = false;
  uint16_t queues = 0;
  bool pmd_timestamps = false; // frames may carry the capture time (net_pcap)
  int ts_offset = -1;
  uint64_t ts_flag = 0;

  dpdk_port() = default;
  dpdk_port(const dpdk_port&) = delete;
  dpdk_port& operator=(const dpdk_port&) = delete;
  ~dpdk_port() {
    if (started) {
      rte_eth_stats st{};
      if (rte_eth_stats_get(id, &st) == 0)
        capture_log()->info("dpdk: port {} ({}) closing: {} frames received, {} missed, {} "
                            "errors, {} without mbuf",
                            id, name, st.ipackets, st.imissed, st.ierrors, st.rx_nombuf);
      rte_eth_dev_stop(id);
    }
    if (configured)
      rte_eth_dev_close(id);
    if (pool)
      rte_mempool_free(pool);
  }
};

namespace {

class dpdk_queue_source final : public packet_source {
public:
  dpdk_queue_source(std::shared_ptr<dpdk_port> port, uint16_t queue, file_info file,
                    const dpdk_options& o)
      : port_(std::move(port)), queue_(queue), file_(std::move(file)),
        idle_end_ms_(o.file_idle_end_ms), poll_timeout_ms_(o.poll_timeout_ms) {
    name_ = "dpdk:" + port_->name + "/q" + std::to_string(queue);
  }

  std::ptrdiff_t next_batch(packet_batch& batch, size_t max_packets) override;
  bool live() const override { return !file_.finite; }
  bool eof() const override { return eof_; }
  std::string error() const override { return error_; }
  const std::string& name() const override { return name_; }
  const source_counters& counters() const override { return counters_; }
  bool live_stats(source_live_stats& out) const override;

private:
  size_t receive(rte_mbuf** mbufs, size_t max);
  size_t wait_and_receive(rte_mbuf** mbufs, size_t max);
  void register_thread();
  uint64_t frame_ts(const rte_mbuf* m, uint64_t wall);

  std::shared_ptr<dpdk_port> port_;
  uint16_t queue_;
  file_info file_;            // finite queue: its capture file
  // PMD timestamp unit in ns, found on the first stamped frame: 1 or 1000
  // (DPDK 22.11's net_pcap stamps microseconds, later versions
  // nanoseconds); 0 not known yet; -1 unusable (wall clock instead).
  int64_t ts_scale_ = 0;
  int idle_end_ms_;
  int poll_timeout_ms_;
  std::string name_;
  std::string error_;
  bool eof_ = false;
  bool register_tried_ = false;
  int64_t received_ = 0;
  mono::time_point last_rx_ = mono::now();
  source_counters counters_;
};

// Once: a source is read by one (detached actor) thread all its life.
void dpdk_queue_source::register_thread() {
  if (register_tried_ || rte_lcore_id() != LCORE_ID_ANY)
    return;
  register_tried_ = true;
  if (rte_thread_register() != 0)
    capture_log()->info("{}: reader thread not registered with the EAL ({}); it uses "
                        "the mempool without a per-lcore cache",
                        name_, rte_error(rte_errno));
}

size_t dpdk_queue_source::receive(rte_mbuf** mbufs, size_t max) {
  size_t n = 0;
  while (n < max) {
    const uint16_t want = static_cast<uint16_t>(std::min<size_t>(max - n, 1024));
    const uint16_t got = rte_eth_rx_burst(port_->id, queue_, mbufs + n, want);
    n += got;
    if (got < want)
      break;
  }
  return n;
}

// Nothing was waiting: poll (spinning briefly, then sleeping 50 us between
// polls) until frames arrive or, for a live queue, poll_timeout_ms passes;
// a finite queue short of its count waits up to idle_end_ms since its last
// frame and then ends.
size_t dpdk_queue_source::wait_and_receive(rte_mbuf** mbufs, size_t max) {
  const auto start = mono::now();
  for (unsigned polls = 0;; ++polls) {
    const auto now = mono::now();
    if (!file_.finite) {
      if (now - start >= std::chrono::milliseconds(poll_timeout_ms_))
        return 0;
    } else if (now - last_rx_ >= std::chrono::milliseconds(idle_end_ms_)) {
      return 0;
    }
    if (polls < 200)
      rte_pause();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    const size_t n = receive(mbufs, max);
    if (n > 0)
      return n;
  }
}

std::ptrdiff_t dpdk_queue_source::next_batch(packet_batch& batch, size_t max_packets) {
  batch.packets.clear();
  batch.arena.clear();
  if (eof_ || max_packets == 0)
    return 0;
  register_thread();
  std::vector<rte_mbuf*> mbufs(max_packets);
  size_t n = receive(mbufs.data(), max_packets);
  // net_pcap returns nothing at the end of the file, and also when it lost
  // the frame it read (no mbuf, a frame it cannot take): only the count
  // tells them apart (waiting here for the counting thread if need be; a
  // count that failed, -1, ends the queue here).
  if (n == 0 && file_.finite && received_ >= file_.frames.get()) {
    eof_ = true;
    return 0;
  }
  if (n == 0)
    n = wait_and_receive(mbufs.data(), max_packets);
  if (n == 0) {
    if (file_.finite) {
      eof_ = true;
      rte_eth_stats st{};
      rte_eth_stats_get(port_->id, &st);
      capture_log()->warn("{}: ended after {} of the {} frames of its file ({} ms without "
                          "a frame); the port counts {} errors and {} frames without mbuf",
                          name_, received_, file_.frames.get(), idle_end_ms_, st.ierrors,
                          st.rx_nombuf);
    } else {
      ++counters_.empty_polls;
    }
    return 0;
  }
  mbufs.resize(n);
  last_rx_ = mono::now();
  received_ += static_cast<int64_t>(n);
  const uint64_t burst_ts = wall_ns();

  // Multi-segment frames are copied whole into the arena, reserved once
  // for all of them so that no pointer into it moves.
  size_t chained = 0;
  for (rte_mbuf* m : mbufs)
    if (m->nb_segs > 1)
      chained += m->pkt_len;
  if (chained)
    batch.arena.reserve(chained);

  batch.packets.resize(n);
  for (size_t i = 0; i < n; ++i) {
    rte_mbuf* m = mbufs[i];
    const uint8_t* frame = rte_pktmbuf_mtod(m, const uint8_t*);
    uint32_t caplen = m->data_len;
    if (m->nb_segs > 1) {
      const size_t at = batch.arena.size();
      batch.arena.resize(at + m->pkt_len);
      const void* p = rte_pktmbuf_read(m, 0, m->pkt_len, batch.arena.data() + at);
      if (p != batch.arena.data() + at) // contiguous after all: rte_pktmbuf_read did not copy
        std::memcpy(batch.arena.data() + at, p, m->pkt_len);
      frame = batch.arena.data() + at;
      caplen = m->pkt_len;
    }
    const uint64_t ts = frame_ts(m, burst_ts);
    decode_packet(frame, caplen, m->pkt_len, ts, linktype::en10mb, batch.packets[i], decode_);
    counters_.frame(batch.packets[i], caplen, m->pkt_len);
  }
  // The mbufs go back to the pool with the batch, on the thread that
  // drops it; the port (and its pool) lives as long as any batch does.
  batch.release = [port = port_, held = std::move(mbufs)]() mutable {
    rte_pktmbuf_free_bulk(held.data(), static_cast<unsigned>(held.size()));
  };
  return static_cast<std::ptrdiff_t>(n);
}

// The frame's PMD timestamp in ns since the epoch, else `wall`. The unit
// is settled on the first stamped frame: a finite queue's first frame is
// its file's first record (known exactly); a live one must be within a day
// of the wall clock.
uint64_t dpdk_queue_source::frame_ts(const rte_mbuf* m, uint64_t wall) {
  if (!port_->pmd_timestamps || ts_scale_ < 0 || !(m->ol_flags & port_->ts_flag))
    return wall;
  const uint64_t raw = *RTE_MBUF_DYNFIELD(m, port_->ts_offset, const rte_mbuf_timestamp_t*);
  if (ts_scale_ == 0) {
    auto near = [&](uint64_t ns) {
      const uint64_t day = 86400ULL * 1000000000ULL;
      return ns > wall ? ns - wall < day : wall - ns < day;
    };
    if (file_.finite)
      ts_scale_ = raw == file_.first_ts_ns                          ? 1
                  : raw * 1000 == file_.first_ts_ns / 1000 * 1000 ? 1000
                                                                  : -1;
    else
      ts_scale_ = near(raw) ? 1 : near(raw * 1000) ? 1000 : -1;
    if (ts_scale_ < 0) {
      capture_log()->warn("{}: the PMD's frame timestamps ({}) are neither ns nor us since "
                          "the epoch; frames get the wall clock",
                          name_, raw);
      return wall;
    }
    capture_log()->info("{}: frame timestamps from the PMD, in {}", name_,
                        ts_scale_ == 1 ? "ns" : "us");
  }
  return raw * static_cast<uint64_t>(ts_scale_);
}

bool dpdk_queue_source::live_stats(source_live_stats& out) const {
  rte_eth_stats st{};
  if (rte_eth_stats_get(port_->id, &st) != 0)
    return false;
  // Per queue where the driver counts per queue; the port-wide drops are
  // reported by queue 0 only (the capture sums its readers).
  out.received = queue_ < RTE_ETHDEV_QUEUE_STAT_CNTRS ? st.q_ipackets[queue_] : 0;
  if (queue_ == 0 && out.received == 0 && port_->queues == 1)
    out.received = st.ipackets;
  out.dropped = queue_ == 0 ? st.imissed + st.rx_nombuf : 0;
  out.if_dropped = queue_ < RTE_ETHDEV_QUEUE_STAT_CNTRS ? st.q_errors[queue_] : 0;
  if (queue_ == 0 && out.if_dropped == 0 && port_->queues == 1)
    out.if_dropped = st.ierrors;
  return true;
}

bool find_port(const std::string& want, uint16_t& id, std::string& error) {
  if (want.empty()) {
    uint16_t p;
    RTE_ETH_FOREACH_DEV(p) {
      id = p;
      return true;
    }
    error = "dpdk: the EAL found no port (bind a NIC to a DPDK driver with dpdk-devbind.py, or "
            "add a virtual device such as --vdev=net_pcap0,rx_pcap=FILE to dpdk_eal_args)";
    return false;
  }
  if (want.size() <= 5 && std::all_of(want.begin(), want.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
      })) {
    const unsigned long v = std::stoul(want);
    if (v < RTE_MAX_ETHPORTS && rte_eth_dev_is_valid_port(static_cast<uint16_t>(v))) {
      id = static_cast<uint16_t>(v);
      return true;
    }
    error = "dpdk: dpdk_port " + want + ": no such port (" +
            std::to_string(rte_eth_dev_count_avail()) + " port(s) available)";
    return false;
  }
  if (rte_eth_dev_get_port_by_name(want.c_str(), &id) == 0)
    return true;
  error = "dpdk: dpdk_port '" + want + "': no port of that name";
  return false;
}

// Configures, sets up and starts the port; fills `port`. Returns false with
// `error` set (the port's destructor undoes what was done).
bool setup_port(dpdk_port& port, const dpdk_options& o, uint16_t queues, std::string& error) {
  rte_eth_dev_info info{};
  int rc = rte_eth_dev_info_get(port.id, &info);
  if (rc != 0) {
    error = "dpdk: port " + port.name + ": cannot read device info: " + rte_error(rc);
    return false;
  }
  rte_eth_conf conf{};
  conf.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
  std::vector<uint8_t> key;
  if (queues > 1 && info.flow_type_rss_offloads != 0) {
    key = symmetric_rss_key(info.hash_key_size ? info.hash_key_size : 40);
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_key = key.data();
    conf.rx_adv_conf.rss_conf.rss_key_len = static_cast<uint8_t>(key.size());
    conf.rx_adv_conf.rss_conf.rss_hf =
      (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
    capture_log()->info("dpdk: port {}: symmetric RSS over {} queues (hash functions {:#x})",
                        port.name, queues, conf.rx_adv_conf.rss_conf.rss_hf);
  } else if (queues > 1) {
    capture_log()->info("dpdk: port {}: driver {} offers no RSS; it spreads frames over the {} "
                        "queues by its own rule (every reader shards by address pair anyway)",
                        port.name, port.driver, queues);
  }
  if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER)
    conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
  // Only net_pcap's timestamps count from the epoch (the capture file's);
  // NIC timestamps count in device clock units.
  if ((info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_TIMESTAMP) && port.driver == "net_pcap")
    conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TIMESTAMP;
  rc = rte_eth_dev_configure(port.id, queues, 0, &conf);
  if (rc != 0) {
    error = "dpdk: port " + port.name + ": configure with " + std::to_string(queues) +
            " RX queue(s) failed: " + rte_error(rc);
    return false;
  }
  port.configured = true;
  uint16_t rx_desc = o.rx_desc;
  uint16_t tx_desc = 0;
  rte_eth_dev_adjust_nb_rx_tx_desc(port.id, &rx_desc, &tx_desc);

  const int socket = rte_eth_dev_socket_id(port.id);
  const std::string pool_name = "mp_rx_" + std::to_string(port.id);
  port.pool = rte_pktmbuf_pool_create(pool_name.c_str(), o.mempool_size, o.mbuf_cache, 0,
                                      RTE_MBUF_DEFAULT_BUF_SIZE,
                                      socket < 0 ? SOCKET_ID_ANY : socket);
  if (!port.pool) {
    error = "dpdk: cannot create a pool of " + std::to_string(o.mempool_size) + " mbufs (" +
            std::to_string(uint64_t{o.mempool_size} * (RTE_MBUF_DEFAULT_BUF_SIZE + 128) >> 20) +
            " MiB): " + rte_error(rte_errno) +
            " (lower dpdk_mempool_size or give the EAL more memory: -m MB, hugepages)";
    return false;
  }
  const uint64_t needed = uint64_t{queues} * (rx_desc + o.mbuf_cache) + o.held_mbufs;
  if (o.mempool_size < needed)
    capture_log()->warn("dpdk: dpdk_mempool_size {} is below the {} mbufs that {} queue(s) of {} "
                        "descriptors and the pipeline's batches in flight may hold: frames will "
                        "be dropped for want of mbufs (rx_nombuf)",
                        o.mempool_size, needed, queues, rx_desc);
  rte_eth_rxconf rxconf = info.default_rxconf;
  rxconf.offloads = conf.rxmode.offloads;
  for (uint16_t q = 0; q < queues; ++q) {
    rc = rte_eth_rx_queue_setup(port.id, q, rx_desc, static_cast<unsigned>(socket < 0 ? SOCKET_ID_ANY : socket),
                                &rxconf, port.pool);
    if (rc != 0) {
      error = "dpdk: port " + port.name + ": RX queue " + std::to_string(q) +
              " setup failed: " + rte_error(rc);
      return false;
    }
  }
  // net_pcap of DPDK 22.11 stamps every frame without offering the offload
  // (rx_offload_capa 0); later versions want RTE_ETH_RX_OFFLOAD_TIMESTAMP.
  // Either way the frames that carry the RX timestamp flag are used.
  if (port.driver == "net_pcap") {
    if (rte_mbuf_dyn_rx_timestamp_register(&port.ts_offset, &port.ts_flag) == 0)
      port.pmd_timestamps = true;
    else
      capture_log()->warn("dpdk: port {}: no RX timestamp field ({}); frames get the wall clock",
                          port.name, rte_error(rte_errno));
  }
  rc = rte_eth_promiscuous_enable(port.id);
  if (rc != 0 && rc != -ENOTSUP)
    capture_log()->warn("dpdk: port {}: cannot enable promiscuous mode: {}", port.name,
                        rte_error(rc));
  rc = rte_eth_dev_start(port.id);
  if (rc != 0) {
    error = "dpdk: port " + port.name + ": start failed: " + rte_error(rc);
    return false;
  }
  port.started = true;
  port.queues = queues;
  return true;
}

} // namespace

bool dpdk_available() { return true; }

std::vector<std::unique_ptr<packet_source>> open_dpdk(const dpdk_options& o, std::string& error) {
  std::vector<std::unique_ptr<packet_source>> out;
  const std::vector<pcap_vdev> vdevs = pcap_vdevs(split_eal_args(o.eal_args));
  auto eal = eal_session::acquire(o.eal_args, error);
  if (!eal)
    return out;
  auto port = std::make_shared<dpdk_port>();
  port->eal = eal;
  if (!find_port(o.port, port->id, error))
    return out;
  char name[RTE_ETH_NAME_MAX_LEN] = {};
  rte_eth_dev_get_name_by_port(port->id, name);
  port->name = name;
  rte_eth_dev_info info{};
  int rc = rte_eth_dev_info_get(port->id, &info);
  if (rc != 0) {
    error = "dpdk: port " + port->name + ": cannot read device info: " + rte_error(rc);
    return out;
  }
  port->driver = info.driver_name ? info.driver_name : "";

  // A net_pcap vdev that reads capture files: one queue per file, each
  // ending after its file's frames.
  std::vector<file_info> expected;
  for (const auto& v : vdevs) {
    if (v.name != port->name || port->driver != "net_pcap" || !v.finite())
      continue;
    for (const auto& f : v.rx_pcap) {
      expected.push_back(open_capture_file(f, error));
      if (!expected.back().finite)
        return out;
    }
  }
  uint16_t queues;
  const int wanted = std::max(1, o.queues);
  if (!expected.empty()) {
    queues = static_cast<uint16_t>(expected.size());
    if (queues != wanted)
      capture_log()->info("dpdk: port {} reads {} capture file(s): {} RX queue(s), one per file "
                          "({} worker(s) share them by address-pair hash)",
                          port->name, queues, queues, wanted);
  } else {
    queues = static_cast<uint16_t>(std::min<int>(wanted, std::max<int>(1, info.max_rx_queues)));
    if (queues < wanted)
      capture_log()->info("dpdk: port {} ({}) has at most {} RX queue(s): reading {} for {} "
                          "workers (every reader shards over all workers)",
                          port->name, port->driver, info.max_rx_queues, queues, wanted);
  }
  if (!setup_port(*port, o, queues, error))
    return out;
  capture_log()->info("dpdk: port {} ({}, driver {}) started: {} RX queue(s), {} mbufs, {}{}",
                      port->id, port->name, port->driver, queues, o.mempool_size,
                      expected.empty() ? "live" : "finite (capture files)",
                      port->pmd_timestamps ? ", PMD timestamps where frames carry them" : ", wall-clock timestamps");
  for (uint16_t q = 0; q < queues; ++q)
    out.push_back(std::make_unique<dpdk_queue_source>(port, q,
                                                      expected.empty() ? file_info{} : expected[q], o));
  return out;
}

} // namespace metaprobe

#endif // METAPROBE_HAVE_DPDK
