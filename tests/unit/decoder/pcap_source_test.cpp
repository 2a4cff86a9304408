// SPDX-License-Identifier: Apache-2.0
// pcap_source over hand-written pcap / pcapng files: batching, arena
// ownership, timestamps, counters, a cut last record, open errors, live
// timeouts.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "capture/pcap_source.hpp"
#include "frame_builder.hpp"

using namespace metaprobe;
using namespace mp_test;

namespace {

void le16(buf& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v));
  b.push_back(static_cast<uint8_t>(v >> 8));
}
void le32(buf& b, uint32_t v) {
  le16(b, v & 0xffff);
  le16(b, v >> 16);
}

struct record {
  uint32_t sec;
  uint32_t frac; // us or ns
  buf frame;
  uint32_t orig_len = 0; // 0: frame size
};

buf pcap_file(int linktype, const std::vector<record>& recs, bool nano = false,
              uint32_t snaplen = 65535) {
  buf b;
  le32(b, nano ? 0xa1b23c4d : 0xa1b2c3d4);
  le16(b, 2);
  le16(b, 4);
  le32(b, 0);
  le32(b, 0);
  le32(b, snaplen);
  le32(b, static_cast<uint32_t>(linktype));
  for (const auto& r : recs) {
    le32(b, r.sec);
    le32(b, r.frac);
    le32(b, static_cast<uint32_t>(r.frame.size()));
    le32(b, r.orig_len ? r.orig_len : static_cast<uint32_t>(r.frame.size()));
    b = b + r.frame;
  }
  return b;
}

buf pcapng_file(int linktype, const std::vector<record>& recs) {
  buf b;
  // section header block
  le32(b, 0x0a0d0d0a);
  le32(b, 28);
  le32(b, 0x1a2b3c4d);
  le16(b, 1);
  le16(b, 0);
  le32(b, 0xffffffff);
  le32(b, 0xffffffff);
  le32(b, 28);
  // interface description block (microsecond timestamps)
  le32(b, 1);
  le32(b, 20);
  le16(b, static_cast<uint32_t>(linktype));
  le16(b, 0);
  le32(b, 65535);
  le32(b, 20);
  for (const auto& r : recs) {
    const uint32_t padded = (static_cast<uint32_t>(r.frame.size()) + 3) & ~3u;
    const uint32_t len = 32 + padded;
    const uint64_t ts = static_cast<uint64_t>(r.sec) * 1000000 + r.frac;
    le32(b, 6);
    le32(b, len);
    le32(b, 0);
    le32(b, static_cast<uint32_t>(ts >> 32));
    le32(b, static_cast<uint32_t>(ts));
    le32(b, static_cast<uint32_t>(r.frame.size()));
    le32(b, static_cast<uint32_t>(r.frame.size()));
    b = b + r.frame;
    b.resize(b.size() + (padded - r.frame.size()), 0);
    le32(b, len);
  }
  return b;
}

struct temp_file {
  std::string path;
  explicit temp_file(const buf& content) {
    char tmpl[] = "/tmp/mp_pcap_source_XXXXXX";
    const int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
    close(fd);
    path = tmpl;
  }
  ~temp_file() { std::remove(path.c_str()); }
};

buf frame_n(int i) {
  return eth(0x0800) + ipv4(ip_a, ip_b, tcp(static_cast<uint16_t>(1000 + i), 80, filler(static_cast<size_t>(10 + i))));
}

std::vector<record> records(int n) {
  std::vector<record> r;
  for (int i = 0; i < n; ++i)
    r.push_back({static_cast<uint32_t>(100 + i), static_cast<uint32_t>(i * 10), frame_n(i)});
  return r;
}

} // namespace

TEST_CASE("pcap file: batches, arena, timestamps, counters") {
  temp_file f(pcap_file(1, records(5)));
  std::string err;
  auto src = pcap_source::open_file(f.path, err);
  REQUIRE_MESSAGE(src, err);
  bool zero_copy = true;
  SUBCASE("read in place") { zero_copy = true; }
  SUBCASE("copied through libpcap") { zero_copy = false; }
  src->set_zero_copy(zero_copy);
  CHECK(src->zero_copy() == zero_copy);
  CHECK(src->linktype() == 1);
  CHECK_FALSE(src->live());
  int seen = 0;
  std::vector<std::ptrdiff_t> sizes;
  while (!src->eof()) {
    packet_batch b;
    const auto n = src->next_batch(b, 2);
    REQUIRE(n >= 0);
    sizes.push_back(n);
    REQUIRE(b.packets.size() == static_cast<size_t>(n));
    for (const auto& p : b.packets) {
      const buf expect = frame_n(seen);
      REQUIRE(p.cap_len == expect.size());
      CHECK(std::memcmp(p.data, expect.data(), expect.size()) == 0);
      if (src->zero_copy()) { // classic pcap: read in place, the batch holds the mapping
        CHECK(b.backing != nullptr);
        CHECK(b.arena.empty());
      } else {
        CHECK(p.data >= b.arena.data());
        CHECK(p.data + p.cap_len <= b.arena.data() + b.arena.size());
      }
      CHECK(p.status == decode_status::ok);
      CHECK(p.sport == 1000 + seen);
      CHECK(p.ts_ns == (100ull + static_cast<unsigned>(seen)) * 1000000000ull +
                           static_cast<unsigned>(seen) * 10 * 1000ull);
      ++seen;
    }
  }
  CHECK(seen == 5);
  CHECK(sizes == std::vector<std::ptrdiff_t>{2, 2, 1}); // the end of file is met with the 5th
  const auto& c = src->counters();
  CHECK(c.packets == 5);
  CHECK(c.count(decode_status::ok) == 5);
  CHECK(c.truncated_records == 0);
  size_t bytes = 0;
  for (int i = 0; i < 5; ++i)
    bytes += frame_n(i).size();
  CHECK(c.bytes == bytes);
  // after the end: still 0, no error
  packet_batch b;
  CHECK(src->next_batch(b, 8) == 0);
}

TEST_CASE("pcap file: nanosecond timestamps and snap length") {
  std::vector<record> r = {{7, 123456789, frame_n(0), 1500}};
  temp_file f(pcap_file(1, r, true));
  std::string err;
  auto src = pcap_source::open_file(f.path, err);
  REQUIRE(src);
  packet_batch b;
  REQUIRE(src->next_batch(b, 4) == 1);
  CHECK(b.packets[0].ts_ns == 7123456789ull);
  CHECK(b.packets[0].wire_len == 1500);
  CHECK(src->counters().wire_bytes == 1500);
}

TEST_CASE("pcap file: decode statuses are counted") {
  const buf whole = frame_n(0);
  std::vector<record> r = {
      {1, 0, eth(0x0806) + filler(28)},                   // non_ip
      {1, 1, buf(whole.begin(), whole.begin() + 20)},     // truncated IPv4
  };
  r.push_back({1, 2, eth(0x0800) + ipv4(ip_a, ip_b, tcp(1, 2), [] {
                       ipv4_opts o;
                       o.ihl = 3;
                       return o;
                     }())}); // malformed
  r.push_back({1, 3, frame_n(1)});
  temp_file f(pcap_file(1, r));
  std::string err;
  auto src = pcap_source::open_file(f.path, err);
  REQUIRE(src);
  packet_batch b;
  REQUIRE(src->next_batch(b, 10) == 4);
  const auto& c = src->counters();
  CHECK(c.count(decode_status::non_ip) == 1);
  CHECK(c.count(decode_status::truncated) == 1);
  CHECK(c.count(decode_status::malformed) == 1);
  CHECK(c.count(decode_status::ok) == 1);
}

TEST_CASE("pcap file: cut last record ends as end of file") {
  buf content = pcap_file(1, records(3));
  content.resize(content.size() - 7);
  temp_file f(content);
  std::string err;
  auto src = pcap_source::open_file(f.path, err);
  REQUIRE(src);
  size_t total = 0;
  int calls = 0;
  while (!src->eof() && ++calls < 10) {
    packet_batch b;
    const auto n = src->next_batch(b, 16);
    REQUIRE(n >= 0);
    total += static_cast<size_t>(n);
  }
  CHECK(src->eof());
  CHECK(total == 2);
  CHECK(src->counters().truncated_records == 1);
  CHECK(src->counters().read_errors == 0);
  // cut inside a record header
  buf c2 = pcap_file(1, records(2));
  c2.resize(24 + 16 + frame_n(0).size() + 5);
  temp_file f2(c2);
  auto s2 = pcap_source::open_file(f2.path, err);
  REQUIRE(s2);
  packet_batch b2;
  CHECK(s2->next_batch(b2, 16) == 1);
  packet_batch b3;
  CHECK(s2->next_batch(b3, 16) == 0);
  CHECK(s2->eof());
}

namespace {

// The same file written big-endian (as a SPARC or PowerPC host writes it).
buf byte_swapped(const buf& le) {
  buf b = le;
  auto swap32 = [&](size_t at) { std::reverse(b.begin() + at, b.begin() + at + 4); };
  auto swap16 = [&](size_t at) { std::reverse(b.begin() + at, b.begin() + at + 2); };
  swap32(0);
  swap16(4);
  swap16(6);
  for (size_t at : {8, 12, 16, 20})
    swap32(at);
  size_t pos = 24;
  while (pos + 16 <= b.size()) {
    uint32_t caplen;
    std::memcpy(&caplen, b.data() + pos + 8, 4); // still little-endian here
    for (size_t k = 0; k < 16; k += 4)
      swap32(pos + k);
    pos += 16 + caplen;
  }
  return b;
}

// Every frame of a file, read through the given path.
std::vector<std::pair<uint64_t, buf>> read_all(const std::string& path, bool zero_copy,
                                               source_counters& counters) {
  std::string err;
  auto src = pcap_source::open_file(path, err);
  REQUIRE_MESSAGE(src, err);
  src->set_zero_copy(zero_copy);
  std::vector<std::pair<uint64_t, buf>> out;
  for (int calls = 0; !src->eof() && calls < 100; ++calls) {
    packet_batch b;
    if (src->next_batch(b, 3) < 0)
      break;
    for (const auto& p : b.packets)
      out.emplace_back(p.ts_ns, buf(p.data, p.data + p.cap_len));
  }
  counters = src->counters();
  return out;
}

} // namespace

TEST_CASE("pcap file: big-endian files and nanosecond files read the same in place and copied") {
  for (bool nano : {false, true}) {
    const buf le = pcap_file(1, records(4), nano);
    temp_file f(le);
    temp_file g(byte_swapped(le));
    source_counters c1, c2, c3;
    const auto copied = read_all(f.path, false, c1);
    const auto mapped = read_all(f.path, true, c2);
    const auto swapped = read_all(g.path, true, c3);
    REQUIRE(copied.size() == 4);
    CHECK(mapped == copied);
    CHECK(swapped == copied);
    CHECK(c2.bytes == c1.bytes);
    CHECK(c3.wire_bytes == c1.wire_bytes);
  }
}

TEST_CASE("pcap file: a capture length past the largest snap length is a read error") {
  buf content = pcap_file(1, records(2));
  const size_t second = 24 + 16 + frame_n(0).size();
  const uint32_t huge = 10u << 20;
  std::memcpy(content.data() + second + 8, &huge, 4);
  temp_file f(content);
  for (bool zero_copy : {true, false}) {
    std::string err;
    auto src = pcap_source::open_file(f.path, err);
    REQUIRE(src);
    src->set_zero_copy(zero_copy);
    packet_batch b;
    CHECK(src->next_batch(b, 8) == 1); // the good frame first
    packet_batch b2;
    CHECK(src->next_batch(b2, 8) == -1);
    CHECK(src->counters().read_errors == 1);
    CHECK(src->eof());
    CHECK_FALSE(src->error().empty());
  }
}

TEST_CASE("pcap file: small arena keeps frames intact across batches") {
  temp_file f(pcap_file(1, records(6)));
  std::string err;
  auto src = pcap_source::open_file(f.path, err);
  REQUIRE(src);
  src->set_zero_copy(false); // the arena is the copying path's
  src->set_arena_bytes(150); // about one frame: a frame that does not fit waits
  int seen = 0;
  int batches = 0;
  while (!src->eof()) {
    packet_batch b;
    const auto n = src->next_batch(b, 10);
    REQUIRE(n >= 0);
    if (n > 0)
      ++batches;
    for (const auto& p : b.packets) {
      const buf expect = frame_n(seen++);
      REQUIRE(p.cap_len == expect.size());
      CHECK(std::memcmp(p.data, expect.data(), expect.size()) == 0);
      CHECK(p.payload_len == 10 + seen - 1);
    }
  }
  CHECK(seen == 6);
  CHECK(batches >= 3);
}

TEST_CASE("pcapng file") {
  temp_file f(pcapng_file(1, records(3)));
  std::string err;
  auto src = pcap_source::open_file(f.path, err);
  REQUIRE_MESSAGE(src, err);
  packet_batch b;
  REQUIRE(src->next_batch(b, 10) == 3);
  CHECK(b.packets[2].sport == 1002);
  CHECK(b.packets[1].ts_ns == 101ull * 1000000000ull + 10 * 1000ull);
}

TEST_CASE("raw-IP and Linux cooked files") {
  temp_file f(pcap_file(101, {{1, 0, ipv4(ip_a, ip_b, udp(5, 6, filler(4)), [] {
                                     ipv4_opts o;
                                     o.proto = 17;
                                     return o;
                                   }())}}));
  std::string err;
  auto src = pcap_source::open_file(f.path, err);
  REQUIRE(src);
  packet_batch b;
  REQUIRE(src->next_batch(b, 1) == 1);
  CHECK(b.packets[0].status == decode_status::ok);
  CHECK(b.packets[0].dport == 6);

  temp_file g(pcap_file(113, {{1, 0, sll(0x86dd) + ipv6(ip6_a, ip6_b, 17, udp(7, 8))}}));
  auto s2 = pcap_source::open_file(g.path, err);
  REQUIRE(s2);
  packet_batch b2;
  REQUIRE(s2->next_batch(b2, 1) == 1);
  CHECK(b2.packets[0].status == decode_status::ok);
  CHECK(b2.packets[0].ip_version == 6);
}

TEST_CASE("open errors") {
  std::string err;
  CHECK_FALSE(pcap_source::open_file("/nonexistent/file.pcap", err));
  CHECK(err.find("/nonexistent/file.pcap") != std::string::npos);
  temp_file garbage(filler(100));
  err.clear();
  CHECK_FALSE(pcap_source::open_file(garbage.path, err));
  CHECK_FALSE(err.empty());
  temp_file usb(pcap_file(147, records(1)));
  err.clear();
  CHECK_FALSE(pcap_source::open_file(usb.path, err));
  CHECK(err.find("not supported") != std::string::npos);
  err.clear();
  CHECK_FALSE(pcap_source::open_live("mp-no-such-if0", 128, "", err));
  CHECK_FALSE(err.empty());
}

TEST_CASE("live: next_batch returns after the poll timeout") {
  std::string err;
  auto src = pcap_source::open_live("lo", 256, "udp port 9", err);
  if (!src) {
    MESSAGE("cannot capture on lo (" << err << "): live test skipped");
    return;
  }
  CHECK(src->live());
  src->set_poll_timeout_ms(50);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) {
    packet_batch b;
    const auto n = src->next_batch(b, 32);
    CHECK(n >= 0);
    CHECK_FALSE(src->eof());
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - t0)
                      .count();
  CHECK(ms < 3000);
  // datagrams sent to 127.0.0.1:9 arrive through the filter
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const char msg[] = "metaprobe-live-test";
  for (int i = 0; i < 3; ++i)
    CHECK(sendto(fd, msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) > 0);
  close(fd);
  int got = 0;
  for (int i = 0; i < 40 && got == 0; ++i) {
    packet_batch b;
    REQUIRE(src->next_batch(b, 32) >= 0);
    for (const auto& p : b.packets) {
      if (p.status == decode_status::ok && p.dport == 9 && p.payload_len == sizeof msg &&
          std::memcmp(p.payload(), msg, sizeof msg) == 0)
        ++got;
    }
  }
  CHECK(got >= 1);
  source_live_stats st;
  CHECK(src->live_stats(st));
  CHECK(st.received >= 1);
  err.clear();
  CHECK_FALSE(pcap_source::open_live("lo", 256, "this is not bpf", err));
  CHECK(err.find("BPF") != std::string::npos);
}

TEST_CASE("pcap file: a FIFO is read as its writer sends") {
  char dir_tmpl[] = "/tmp/mp_pcap_fifo_XXXXXX";
  REQUIRE(mkdtemp(dir_tmpl) != nullptr);
  const std::string path = std::string(dir_tmpl) + "/in.pcap";
  REQUIRE(mkfifo(path.c_str(), 0600) == 0);
  const buf whole = pcap_file(1, records(5));
  const size_t header = 24;
  size_t first_part = header; // header + the first 3 records
  for (int i = 0; i < 3; ++i)
    first_part += 16 + frame_n(i).size();
  bool pause_between = true;
  SUBCASE("writer pauses between two parts") { pause_between = true; }
  SUBCASE("writer writes everything and closes at once") { pause_between = false; }
  std::atomic<int> read_so_far{0};
  std::thread writer([&] {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
      return;
    const size_t cut = pause_between ? first_part : whole.size();
    (void)!::write(fd, whole.data(), cut);
    if (pause_between) {
      // the reader must get the first three frames while the FIFO is open
      for (int i = 0; i < 500 && read_so_far.load() < 3; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      (void)!::write(fd, whole.data() + cut, whole.size() - cut);
    }
    ::close(fd);
  });
  std::string err;
  auto src = pcap_source::open_file(path, err);
  REQUIRE_MESSAGE(src, err);
  CHECK_FALSE(src->zero_copy()); // not mappable: read through libpcap
  int seen = 0;
  std::vector<int> sports;
  while (!src->eof()) {
    packet_batch b;
    const auto n = src->next_batch(b, 1);
    REQUIRE(n >= 0);
    for (const auto& p : b.packets)
      sports.push_back(p.sport);
    seen += static_cast<int>(n);
    read_so_far.store(seen);
  }
  writer.join();
  CHECK(seen == 5);
  CHECK(sports == std::vector<int>{1000, 1001, 1002, 1003, 1004});
  std::remove(path.c_str());
  ::rmdir(dir_tmpl);
}
