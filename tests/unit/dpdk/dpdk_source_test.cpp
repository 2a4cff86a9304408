// SPDX-License-Identifier: Apache-2.0
// dpdk_source: dpdk_eal_args splitting, net_pcap vdev parsing, the
// symmetric RSS key (Toeplitz, checked against the published test vector),
// and, where DPDK is built in, a net_pcap port with two capture files read
// next to pcap_source: same frames, bytes, timestamps and decode results,
// mbufs that stay valid while their batch lives, end of input per queue.

#include <doctest/doctest.h>

#include <arpa/inet.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <filesystem>
#include <string>
#include <vector>

#include "capture/dpdk_source.hpp"
#include "capture/pcap_source.hpp"

using namespace metaprobe;

namespace {

std::vector<uint8_t> v4_tuple(const char* src, const char* dst, uint16_t sport, uint16_t dport) {
  std::vector<uint8_t> b(12);
  inet_pton(AF_INET, src, b.data());
  inet_pton(AF_INET, dst, b.data() + 4);
  b[8] = static_cast<uint8_t>(sport >> 8);
  b[9] = static_cast<uint8_t>(sport);
  b[10] = static_cast<uint8_t>(dport >> 8);
  b[11] = static_cast<uint8_t>(dport);
  return b;
}

} // namespace

TEST_CASE("dpdk_eal_args split at blanks, quotes keep blanks") {
  CHECK(split_eal_args("") == std::vector<std::string>{});
  CHECK(split_eal_args("  --no-huge\t-m 256  ") ==
        std::vector<std::string>{"--no-huge", "-m", "256"});
  CHECK(split_eal_args("--vdev=\"net_pcap0,rx_pcap=/a b.pcap\" -l 0") ==
        std::vector<std::string>{"--vdev=net_pcap0,rx_pcap=/a b.pcap", "-l", "0"});
  CHECK(split_eal_args("'' x") == std::vector<std::string>{"", "x"});
}

TEST_CASE("net_pcap vdevs: files per queue, finite or live") {
  auto v = pcap_vdevs(split_eal_args(
    "--no-huge --vdev=net_pcap0,rx_pcap=/a.pcap,rx_pcap=/b.pcap --vdev net_pcap1,iface=eth0 "
    "--vdev=net_af_packet0,iface=veth0 --vdev=net_pcap2,rx_pcap=/c.pcap,infinite_rx=1 "
    "--vdev=net_pcap3,tx_pcap=/out.pcap"));
  REQUIRE(v.size() == 4);
  CHECK(v[0].name == "net_pcap0");
  CHECK(v[0].rx_pcap == std::vector<std::string>{"/a.pcap", "/b.pcap"});
  CHECK(v[0].finite());
  CHECK(v[1].name == "net_pcap1");
  CHECK(v[1].live);
  CHECK_FALSE(v[1].finite());
  CHECK(v[2].infinite_rx);
  CHECK_FALSE(v[2].finite());
  CHECK(v[3].rx_pcap.empty());
  CHECK_FALSE(v[3].finite());
  CHECK(pcap_vdevs(split_eal_args("--vdev")).empty());
}

TEST_CASE("Toeplitz hash matches the published RSS verification vector") {
  // The default key of the Microsoft RSS specification and its first IPv4
  // example: 66.9.149.187:2794 -> 161.142.100.80:1766.
  const std::vector<uint8_t> key = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};
  auto t = v4_tuple("66.9.149.187", "161.142.100.80", 2794, 1766);
  CHECK(toeplitz_hash(key, t.data(), 8) == 0x323e8fc2u);
  CHECK(toeplitz_hash(key, t.data(), 12) == 0x51ccc178u);
}

TEST_CASE("the 0x6d5a key hashes both directions of a flow alike") {
  const auto key = symmetric_rss_key();
  REQUIRE(key.size() == 40);
  CHECK(key[0] == 0x6d);
  CHECK(key[1] == 0x5a);
  CHECK(key[39] == 0x5a);
  CHECK(symmetric_rss_key(52).size() == 52);
  const char* addrs[][2] = {{"10.0.0.1", "192.168.7.9"}, {"66.9.149.187", "161.142.100.80"},
                            {"172.16.254.3", "8.8.8.8"}};
  for (auto& a : addrs) {
    for (uint16_t sport : {1024, 2794, 53, 65535}) {
      auto fwd = v4_tuple(a[0], a[1], sport, 443);
      auto rev = v4_tuple(a[1], a[0], 443, sport);
      CHECK(toeplitz_hash(key, fwd.data(), 12) == toeplitz_hash(key, rev.data(), 12));
      CHECK(toeplitz_hash(key, fwd.data(), 8) == toeplitz_hash(key, rev.data(), 8));
    }
  }
  // ... and does not collapse everything onto one value.
  auto x = v4_tuple("10.0.0.1", "10.0.0.2", 1, 2);
  auto y = v4_tuple("10.0.0.1", "10.0.0.3", 1, 2);
  CHECK(toeplitz_hash(key, x.data(), 12) != toeplitz_hash(key, y.data(), 12));
}

namespace {

struct frame_view {
  uint64_t ts;
  uint32_t cap_len, wire_len;
  decode_status status;
  std::vector<uint8_t> bytes;
};

// Every frame of a source, read batch by batch; the bytes are read only
// after the batch is complete (and before it is destroyed), so a pointer
// into a freed or reused buffer would show.
std::vector<frame_view> drain(packet_source& s, size_t batch_size) {
  std::vector<frame_view> out;
  for (int guard = 0; guard < 100000; ++guard) {
    packet_batch b;
    const auto n = s.next_batch(b, batch_size);
    REQUIRE(n >= 0);
    if (n == 0) {
      if (s.eof())
        break;
      continue;
    }
    for (const auto& p : b.packets)
      out.push_back({p.ts_ns, p.cap_len, p.wire_len, p.status,
                     std::vector<uint8_t>(p.data, p.data + p.cap_len)});
  }
  return out;
}

} // namespace

TEST_CASE("net_pcap port: the frames, timestamps and decodes of pcap_source") {
  if (!dpdk_available()) {
    MESSAGE("built without DPDK: open_dpdk reports it");
    std::string error;
    CHECK(open_dpdk({}, error).empty());
    CHECK(error.find("without DPDK") != std::string::npos);
    return;
  }
  const std::filesystem::path corpus = METAPROBE_CORPUS;
  // small DNS frames, and HTTP with frames up to 37 kB (chained mbufs)
  const auto a = corpus / "dns-packets-pcpp.pcap";
  const auto b = corpus / "http-ndpi-1kxun-mixed-ipv6.pcap";
  // 7451 frames, more than the pool holds
  const auto c = corpus / "tls-browsing-ipv6-pcpp.pcap";
  if (!std::filesystem::exists(a) || !std::filesystem::exists(b) || !std::filesystem::exists(c)) {
    MESSAGE("corpus not found at " << corpus);
    return;
  }
  dpdk_options o;
  o.eal_args = "--no-huge --no-pci --no-shconf --no-telemetry -m 128 --log-level=warning "
               "--vdev=net_pcap0,rx_pcap=" + a.string() + ",rx_pcap=" + b.string() +
               ",rx_pcap=" + c.string();
  o.queues = 1; // one queue per file regardless
  o.mempool_size = 4095;
  o.mbuf_cache = 64;
  o.rx_desc = 256;
  o.file_idle_end_ms = 300;
  std::string error;
  auto sources = open_dpdk(o, error);
  INFO(error);
  REQUIRE(sources.size() == 3);
  CHECK(sources[0]->name() == "dpdk:net_pcap0/q0");
  CHECK_FALSE(sources[0]->live());

  // A second open with other arguments is refused while the EAL runs.
  dpdk_options other = o;
  other.eal_args = "--no-huge";
  std::string error2;
  CHECK(open_dpdk(other, error2).empty());
  CHECK(error2.find("already running") != std::string::npos);
  // Ports that do not exist are named in the error.
  for (const char* port : {"net_pcap7", "7", "123456789012345678901234"}) {
    dpdk_options missing = o;
    missing.port = port;
    std::string error3;
    CHECK(open_dpdk(missing, error3).empty());
    CHECK(error3.find(std::string("dpdk_port ")) != std::string::npos);
  }

  const std::filesystem::path files[] = {a, b};
  for (size_t q = 0; q < 2; ++q) {
    CAPTURE(files[q]);
    std::string perr;
    auto ref = pcap_source::open_file(files[q].string(), perr);
    REQUIRE(ref);
    auto want = drain(*ref, 64);
    auto got = drain(*sources[q], 64);
    CHECK(sources[q]->eof());
    REQUIRE(got.size() == want.size());
    size_t bad = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      // net_pcap keeps the captured length only (no snaplen cut in these files)
      if (got[i].ts != want[i].ts || got[i].cap_len != want[i].cap_len ||
          got[i].wire_len != want[i].wire_len || got[i].status != want[i].status ||
          got[i].bytes != want[i].bytes) {
        if (bad++ == 0)
          MESSAGE("first difference at frame " << i << ": ts " << got[i].ts << " vs " << want[i].ts
                  << ", cap_len " << got[i].cap_len << " vs " << want[i].cap_len << ", wire_len "
                  << got[i].wire_len << " vs " << want[i].wire_len << ", bytes "
                  << std::string(got[i].bytes == want[i].bytes ? "equal" : "differ"));
      }
    }
    CHECK(bad == 0);
    CHECK(sources[q]->counters().packets == want.size());
    CHECK(sources[q]->counters().bytes == ref->counters().bytes);
    packet_batch after;
    CHECK(sources[q]->next_batch(after, 64) == 0);
  }

  // Batches that are never released exhaust the pool: net_pcap then drops
  // the frames it reads (no mbuf), and the queue, short of its file's
  // count, ends after file_idle_end_ms instead of waiting forever. Once
  // the batches go, their mbufs are back in the pool.
  std::vector<std::unique_ptr<packet_batch>> held;
  size_t got = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int guard = 0; guard < 1000 && !sources[2]->eof(); ++guard) {
    held.push_back(std::make_unique<packet_batch>());
    const auto n = sources[2]->next_batch(*held.back(), 64);
    REQUIRE(n >= 0);
    got += static_cast<size_t>(n);
  }
  const auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(sources[2]->eof());
  CHECK(got > 1000);
  CHECK(got < 4096);   // at most the pool
  CHECK(sources[2]->counters().packets == got);
  CHECK(waited >= std::chrono::milliseconds(300));
  CHECK(waited < std::chrono::seconds(5));
  held.clear();
  packet_batch again;
  CHECK(sources[0]->next_batch(again, 64) == 0); // finished queues stay finished
}
