// SPDX-License-Identifier: Apache-2.0
// afpacket_source: option and filter errors, and on the loopback device
// (needs CAP_NET_RAW; skipped with a message without it): every datagram
// arrives once, a held ring block is never read twice, blocks given back
// out of order let the ring go on, a full ring counts drops and freezes.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "capture/afpacket_source.hpp"

using namespace metaprobe;

namespace {

afpacket_options lo_options(const std::string& bpf) {
  afpacket_options o;
  o.iface = "lo";
  o.snaplen = 256;
  o.bpf = bpf;
  o.ring.block_size = 4096;
  o.ring.block_count = 4;
  o.poll_timeout_ms = 20;
  o.block_timeout_ms = 2;
  return o;
}

// A UDP socket bound to an unused loopback port: the datagrams the test
// sends go there, and the capture filter selects that port only.
struct udp_sink {
  int fd = -1;
  uint16_t port = 0;
  udp_sink() {
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
  }
  ~udp_sink() {
    if (fd >= 0)
      close(fd);
  }
  // Sends datagrams carrying the sequence numbers first .. first+n-1.
  void send_seq(uint32_t first, uint32_t n) const {
    const int s = socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(s >= 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (uint32_t i = first; i < first + n; ++i) {
      char msg[32] = "mp-afpacket-";
      std::memcpy(msg + 16, &i, sizeof i);
      CHECK(sendto(s, msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) > 0);
    }
    close(s);
  }
};

using batch_ptr = std::unique_ptr<packet_batch>;

// Sequence numbers of the test datagrams in a batch.
std::vector<uint32_t> seqs_of(const packet_batch& b, uint16_t port) {
  std::vector<uint32_t> out;
  for (const auto& p : b.packets) {
    if (p.status != decode_status::ok || p.dport != port || p.payload_len != 32)
      continue;
    uint32_t v;
    std::memcpy(&v, p.payload() + 16, sizeof v);
    out.push_back(v);
  }
  return out;
}

// Reads batches (keeping them) until `want` test datagrams arrived or the
// tries run out; returns how many arrived.
size_t read_held(packet_source& src, uint16_t port, size_t want, std::vector<batch_ptr>& held,
                 std::vector<uint32_t>& seen, int tries = 100) {
  size_t got = 0;
  for (int i = 0; i < tries && got < want; ++i) {
    auto b = std::make_unique<packet_batch>();
    const auto n = src.next_batch(*b, 256);
    REQUIRE(n >= 0);
    if (n == 0)
      continue;
    CHECK(b->backing); // frames point into the ring block the batch holds
    for (uint32_t s : seqs_of(*b, port)) {
      seen.push_back(s);
      ++got;
    }
    held.push_back(std::move(b));
  }
  return got;
}

} // namespace

TEST_CASE("afpacket: option and filter errors name the problem, nothing stays open") {
  std::string err;
  auto o = lo_options("");
  o.iface = "mp-no-such-if0";
  CHECK(afpacket_source::open_group(o, 1, err).empty());
  CHECK(err.find("no such interface") != std::string::npos);

  err.clear();
  o = lo_options("this is not bpf");
  CHECK(afpacket_source::open_group(o, 1, err).empty());
  CHECK(err.find("bad BPF filter") != std::string::npos);

  err.clear();
  o = lo_options("");
  o.ring.block_size = 5000;
  CHECK(afpacket_source::open_group(o, 1, err).empty());
  CHECK(err.find("page size") != std::string::npos);

  err.clear();
  o = lo_options("");
  o.snaplen = 65535; // does not fit a 4 KiB block
  CHECK(afpacket_source::open_group(o, 1, err).empty());
  CHECK(err.find("snaplen") != std::string::npos);
}

TEST_CASE("afpacket on lo: each datagram once, held blocks never reread, out-of-order return") {
  udp_sink sink;
  REQUIRE(sink.port != 0);
  std::string err;
  const auto o = lo_options("udp and dst port " + std::to_string(sink.port));
  auto group = afpacket_source::open_group(o, 1, err);
  if (group.empty()) {
    MESSAGE("cannot open AF_PACKET on lo (" << err << "): test skipped");
    return;
  }
  packet_source& src = *group[0];
  CHECK(src.live());
  CHECK(src.name() == "afpacket:lo/0");

  // Nothing sent yet: next_batch comes back empty after the poll timeout.
  {
    packet_batch b;
    CHECK(src.next_batch(b, 256) == 0);
    CHECK_FALSE(src.eof());
  }

  // Fill every block of the ring and keep the batches (the pipeline still
  // "uses" them): bursts until the batches hold block_count blocks.
  std::vector<batch_ptr> held;
  std::vector<uint32_t> seen;
  uint32_t next_seq = 0;
  auto blocks_held = [&] {
    std::set<const void*> blocks;
    for (const auto& b : held)
      blocks.insert(b->backing.get());
    return blocks.size();
  };
  for (int burst = 0; burst < 40 && blocks_held() < o.ring.block_count; ++burst) {
    sink.send_seq(next_seq, 3);
    next_seq += 3;
    read_held(src, sink.port, 3, held, seen);
    std::this_thread::sleep_for(std::chrono::milliseconds(10)); // the kernel retires the block
  }
  REQUIRE(blocks_held() == o.ring.block_count);
  REQUIRE(seen.size() == next_seq); // each datagram once (lo's outgoing copy skipped)
  for (uint32_t i = 0; i < next_seq; ++i)
    CHECK(seen[i] == i);

  // Ring full: what comes now is dropped by the kernel, and the reader,
  // back at the first block, must not read it again while it is held.
  const uint32_t dropped_from = next_seq;
  sink.send_seq(next_seq, 3);
  next_seq += 3;
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (int i = 0; i < 3; ++i) {
    packet_batch b;
    CHECK(src.next_batch(b, 256) == 0);
  }
  source_live_stats st;
  REQUIRE(src.live_stats(st));
  CHECK(st.dropped >= 3);
  CHECK(st.ring_freezes >= 1);
  CHECK(st.received >= dropped_from + 3);

  // Give back the second block before the first: the reader still waits
  // for the first (the kernel fills the ring in order).
  std::vector<const void*> order;
  for (const auto& b : held)
    if (std::find(order.begin(), order.end(), b->backing.get()) == order.end())
      order.push_back(b->backing.get());
  auto give_back = [&](const void* block) {
    held.erase(std::remove_if(held.begin(), held.end(),
                              [&](const batch_ptr& b) { return b->backing.get() == block; }),
               held.end());
  };
  give_back(order[1]);
  {
    packet_batch b;
    CHECK(src.next_batch(b, 256) == 0);
  }
  // Then the first and the rest: new datagrams arrive, the dropped ones and
  // the old ones do not come back.
  give_back(order[0]);
  held.clear();
  const uint32_t fresh_from = next_seq;
  std::vector<uint32_t> after;
  for (int burst = 0; burst < 6; ++burst) {
    sink.send_seq(next_seq, 4);
    next_seq += 4;
    std::vector<batch_ptr> keep;
    read_held(src, sink.port, 4, keep, after);
  }
  REQUIRE_FALSE(after.empty());
  std::vector<uint32_t> sorted = after;
  std::sort(sorted.begin(), sorted.end());
  CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end()); // no duplicates
  CHECK(sorted.front() >= fresh_from);
  CHECK(after.size() == next_seq - fresh_from); // nothing lost once the ring is free
  CHECK(src.counters().packets >= seen.size() + after.size());
}

TEST_CASE("afpacket on lo: a fanout group of three sockets sees every datagram once") {
  udp_sink sink;
  REQUIRE(sink.port != 0);
  std::string err;
  auto o = lo_options("udp and dst port " + std::to_string(sink.port));
  o.ring.block_count = 8;
  auto group = afpacket_source::open_group(o, 3, err);
  if (group.empty()) {
    MESSAGE("cannot open AF_PACKET on lo (" << err << "): test skipped");
    return;
  }
  REQUIRE(group.size() == 3);
  // many source ports: several flows, spread over the members by the hash
  std::vector<uint32_t> seen;
  uint32_t seq = 0;
  for (int flow = 0; flow < 12; ++flow) {
    sink.send_seq(seq, 2);
    seq += 2;
  }
  std::vector<batch_ptr> held;
  for (int round = 0; round < 50 && seen.size() < seq; ++round)
    for (auto& s : group)
      read_held(*s, sink.port, seq, held, seen, 1);
  std::sort(seen.begin(), seen.end());
  CHECK(seen.size() == seq);
  CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());
  const auto* first = dynamic_cast<const afpacket_source*>(group[0].get());
  REQUIRE(first);
  for (auto& s : group)
    CHECK(dynamic_cast<const afpacket_source*>(s.get())->fanout_id() == first->fanout_id());
}
