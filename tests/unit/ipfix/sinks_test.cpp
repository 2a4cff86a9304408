// SPDX-License-Identifier: Apache-2.0
// The UDP, TCP and file sinks against real local sockets and files.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "core/config.hpp"
#include "exporters/ipfix/ipfix_decoder.hpp"
#include "exporters/ipfix/ipfix_file_sink.hpp"
#include "exporters/ipfix/ipfix_receiver.hpp"
#include "exporters/ipfix/ipfix_sinks.hpp"
#include "exporters/ipfix/ipfix_tcp_sink.hpp"
#include "exporters/ipfix/ipfix_udp_sink.hpp"
#include "exporters/ipfix/record_format.hpp"
#include "metaprobe/v1/records.pb.h"
#include "sample_records.hpp"

using namespace metaprobe;
using namespace metaprobe::ipfix;
using namespace std::chrono_literals;

namespace {

// A bound local socket (UDP or TCP listener) on 127.0.0.1, random port.
struct local_socket {
  int fd = -1;
  uint16_t port = 0;
  explicit local_socket(int type) {
    fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    if (type == SOCK_STREAM) REQUIRE(::listen(fd, 4) == 0);
  }
  ~local_socket() {
    if (fd >= 0) ::close(fd);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

std::vector<std::vector<uint8_t>> recv_datagrams(int fd, std::chrono::milliseconds wait = 300ms) {
  std::vector<std::vector<uint8_t>> out;
  std::vector<uint8_t> buf(65536);
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) break;
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    out.emplace_back(buf.begin(), buf.begin() + n);
    wait = 50ms;
  }
  return out;
}

uint64_t counter(const sink& s, const std::string& name) {
  for (const auto& c : s.counters())
    if (c.name == name) return c.value;
  FAIL("no counter " << name);
  return 0;
}

ipfix_sink_config dns_config() {
  ipfix_sink_config c;
  c.group = "dns";
  c.observation_domain_id = 5;
  c.stats_interval_s = 0;
  return c;
}

std::string temp_path(const char* name) {
  return std::string("/tmp/mp_ipfix_test_") + std::to_string(::getpid()) + "_" + name;
}

} // namespace

TEST_CASE("group kinds and the factory") {
  CHECK(ipfix_kinds_for_group("clickstream") == std::vector<std::string>{"clickstream", "http_reply", "ssl_reply"});
  CHECK(ipfix_kinds_for_group("meta") == std::vector<std::string>{"sip", "ftp", "im", "mail", "raw"});
  CHECK(ipfix_kinds_for_group("nope").empty());
  ipfix_sink_config c;
  c.group = "meta";
  CHECK(ipfix_kind_mask(c) == (kind_bit(template_kind::sip) | kind_bit(template_kind::ftp) |
                               kind_bit(template_kind::im) | kind_bit(template_kind::mail) |
                               kind_bit(template_kind::raw)));
  c.group = "nope";
  CHECK_THROWS_AS(make_ipfix_sinks(c), std::invalid_argument);
  c.group = "dns";
  c.kinds = {"dns", "bogus"};
  CHECK_THROWS_AS(make_ipfix_sinks(c), std::invalid_argument);
  c.kinds.clear();
  c.mtu = 100;
  CHECK_THROWS_AS(make_ipfix_sinks(c), std::invalid_argument);
  c.mtu = 1400;
  c.udp_collectors = {"not an endpoint"};
  CHECK_THROWS_AS(make_ipfix_sinks(c), std::runtime_error);
  c.udp_collectors = {"127.0.0.1:4739", "[::1]:4739"};
  c.tcp_collectors = {"127.0.0.1:1"};
  c.tcp_flush_timeout_ms = 100;
  c.file_path = temp_path("factory.ipfix");
  auto sinks = make_ipfix_sinks(c);
  REQUIRE(sinks.size() == 4);
  CHECK(sinks[0]->name() == "ipfix:udp:127.0.0.1:4739");
  CHECK(sinks[1]->name() == "ipfix:udp:[::1]:4739");
  CHECK(sinks[2]->name() == "ipfix:tcp:127.0.0.1:1");
  CHECK(sinks[3]->name() == "ipfix:file:" + c.file_path);
  sinks.clear();
  std::remove(c.file_path.c_str());
}

TEST_CASE("an unknown ipfix_dev fails with a clear error") {
  ipfix_sink_config c = dns_config();
  c.device = "nosuchdev0";
  c.udp_collectors = {"127.0.0.1:4739"};
  try {
    make_ipfix_sinks(c);
    FAIL("expected an exception");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("ipfix_dev 'nosuchdev0': no such network interface") != std::string::npos);
  }
}

TEST_CASE("UDP sink: templates first, MTU, refresh, other kinds ignored") {
  local_socket rx(SOCK_DGRAM);
  ipfix_sink_config c = dns_config();
  c.mtu = 600;
  c.template_refresh_s = 20;
  ipfix_udp_sink s(c, rx.address());
  const auto t0 = std::chrono::system_clock::now();
  s.add(test::sample_record(template_kind::clickstream, ip_family::ipv4)); // not this group
  for (uint32_t i = 0; i < 50; ++i) s.add(test::sample_record(template_kind::dns, ip_family::ipv4, i));
  s.add(test::sample_record(template_kind::dns, ip_family::ipv6, 1));
  s.tick(t0);
  auto dgrams = recv_datagrams(rx.fd);
  REQUIRE(dgrams.size() > 2);
  ipfix_decoder dec;
  int records = 0;
  for (size_t i = 0; i < dgrams.size(); ++i) {
    CHECK(dgrams[i].size() <= 600);
    CHECK(dec.decode(1, dgrams[i].data(), dgrams[i].size(), [&](const decoded_record& r) {
      CHECK(r.kind == "dns");
      ++records;
    }));
  }
  CHECK((dgrams[0][16] << 8 | dgrams[0][17]) == 2); // template set leads
  CHECK(records == 51);
  CHECK(dec.stats().sequence_gaps == 0);
  CHECK(dec.stats().sets_without_template == 0);
  CHECK(counter(s, "records_in") == 51);
  CHECK(counter(s, "records_sent") == 51);
  CHECK(counter(s, "records_dropped") == 0);
  CHECK(counter(s, "template_sends") == 1);

  // no refresh before the period, one after
  s.tick(t0 + 10s);
  CHECK(recv_datagrams(rx.fd, 100ms).empty());
  s.tick(t0 + 21s);
  auto again = recv_datagrams(rx.fd);
  REQUIRE(again.size() == 1);
  CHECK((again[0][16] << 8 | again[0][17]) == 2);
  CHECK(counter(s, "template_sends") == 2);
  // sequence continues: 51 records sent before
  CHECK((again[0][8] << 24 | again[0][9] << 16 | again[0][10] << 8 | again[0][11]) == 51);
}

TEST_CASE("UDP sink: oversized records are dropped and counted") {
  local_socket rx(SOCK_DGRAM);
  ipfix_sink_config c = dns_config();
  c.mtu = 300;
  c.max_string_length = 2000;
  ipfix_udp_sink s(c, rx.address());
  auto r = test::sample_record(template_kind::dns, ip_family::ipv4);
  r.mutable_dns()->set_domain(std::string(1000, 'a'));
  s.add(r);
  s.add(test::sample_record(template_kind::dns, ip_family::ipv4));
  s.flush();
  CHECK(counter(s, "records_too_large") == 1);
  CHECK(counter(s, "records_dropped") == 1);
  CHECK(counter(s, "records_sent") == 1);
  auto dgrams = recv_datagrams(rx.fd);
  ipfix_decoder dec;
  for (const auto& d : dgrams) dec.decode(1, d.data(), d.size(), nullptr);
  CHECK(dec.stats().data_records == 1);
  // the dropped record is in the sequence numbers: the collector sees it
  CHECK(dec.stats().sequence_gaps == 1);
  CHECK(dec.stats().records_lost == 1);
}

TEST_CASE("file sink writes an RFC 5655 file the receiver reads back") {
  const std::string path = temp_path("sink.ipfix");
  ipfix_sink_config c;
  c.group = "clickstream";
  c.file_path = path;
  auto recs = test::all_sample_records();
  {
    auto sinks = make_ipfix_sinks(c);
    REQUIRE(sinks.size() == 1);
    for (int round = 0; round < 200; ++round)
      for (const auto& r : recs) sinks[0]->add(r);
    sinks[0]->flush();
    CHECK(counter(*sinks[0], "records_in") == 200 * 6);
    CHECK(counter(*sinks[0], "records_sent") == 200 * 6);
  }
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(data.size() > 1400);
  CHECK((data[16] << 8 | data[17]) == 2); // templates at the start
  size_t max_msg = 0;
  for (size_t off = 0; off + 4 <= data.size();) {
    const size_t len = static_cast<size_t>(data[off + 2] << 8 | data[off + 3]);
    max_msg = std::max(max_msg, len);
    off += len;
  }
  CHECK(max_msg > 1400); // larger messages than on UDP

  ipfix::receiver_options o;
  o.listen = "file:" + path;
  std::map<std::string, int> kinds;
  ipfix_receiver rx(o, [&](const decoded_record& r) { ++kinds[std::string(r.kind) + "/" + std::string(r.family)]; });
  std::atomic<bool> stop{false};
  CHECK(rx.run(stop) == ipfix_receiver::stop_reason::end_of_file);
  CHECK(kinds.size() == 6);
  for (const auto& [k, n] : kinds) {
    CAPTURE(k);
    CHECK(n == 200);
  }
  CHECK(rx.decoder().stats().decode_errors == 0);
  CHECK(rx.decoder().stats().sequence_gaps == 0);
  std::remove(path.c_str());
}

TEST_CASE("file sink after a crash continues the file; a fresh start truncates it") {
  const std::string path = temp_path("resume.ipfix");
  ipfix_sink_config c;
  c.group = "clickstream";
  c.file_path = path;
  auto recs = test::all_sample_records();
  auto write_round = [&](bool append, int rounds) {
    c.file_append = append;
    auto sinks = make_ipfix_sinks(c);
    REQUIRE(sinks.size() == 1);
    for (int round = 0; round < rounds; ++round)
      for (const auto& r : recs) sinks[0]->add(r);
    sinks[0]->flush();
  };
  auto count_records = [&] {
    ipfix::receiver_options o;
    o.listen = "file:" + path;
    size_t n = 0;
    ipfix_receiver rx(o, [&](const decoded_record&) { ++n; });
    std::atomic<bool> stop{false};
    CHECK(rx.run(stop) == ipfix_receiver::stop_reason::end_of_file);
    CHECK(rx.decoder().stats().decode_errors == 0);
    return n;
  };
  const size_t per_round = 6; // the clickstream group's kinds x families
  write_round(false, 10);
  CHECK(count_records() == 10 * per_round);
  write_round(true, 5); // the restarted exporter: templates again, then its records
  CHECK(count_records() == 15 * per_round);
  write_round(false, 3); // a new run starts the file again
  CHECK(count_records() == 3 * per_round);
  std::remove(path.c_str());
}

TEST_CASE("file sink: a full file system drops exactly what is not in the file, no torn message") {
  // RLIMIT_FSIZE stands in for a full disk: writes past it fail (EFBIG),
  // as they would with ENOSPC, and the sink must cut the torn message.
  const std::string path = temp_path("full.ipfix");
  ipfix_sink_config c = dns_config();
  c.file_path = path;
  c.stats_interval_s = 0;
  struct rlimit old {};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
  auto* const old_handler = std::signal(SIGXFSZ, SIG_IGN);
  uint64_t sent = 0, dropped = 0;
  {
    ipfix::ipfix_file_sink s(c);
    struct rlimit lim = old;
    lim.rlim_cur = 200000; // bytes: part of the first batch fits
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &lim) == 0);
    for (uint32_t i = 0; i < 5000; ++i) s.add(test::sample_record(template_kind::dns, ip_family::ipv4, i));
    s.flush();
    CHECK(counter(s, "send_errors") >= 1);
    CHECK(counter(s, "write_failures") == 1);
    CHECK(counter(s, "records_dropped") > 0);
    CHECK(counter(s, "records_sent") > 0);
    CHECK(counter(s, "records_sent") + counter(s, "records_dropped") == 5000);
    CHECK(s.held_records() == 0);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK(st.st_size <= 200000);
    // Still full: the next batch is dropped too, no second episode.
    for (uint32_t i = 0; i < 3000; ++i) s.add(test::sample_record(template_kind::dns, ip_family::ipv6, i));
    s.flush();
    CHECK(counter(s, "write_failures") == 1);
    // Room again: writes resume with the next messages.
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &old) == 0);
    for (uint32_t i = 0; i < 100; ++i) s.add(test::sample_record(template_kind::dns, ip_family::ipv4, i));
    s.flush();
    sent = counter(s, "records_sent");
    dropped = counter(s, "records_dropped");
    CHECK(sent + dropped == 8100);
    CHECK(counter(s, "truncations") >= 1);
  }
  std::signal(SIGXFSZ, old_handler);
  ipfix::receiver_options o;
  o.listen = "file:" + path;
  ipfix_receiver rx(o, [](const decoded_record&) {});
  std::atomic<bool> stop{false};
  CHECK(rx.run(stop) == ipfix_receiver::stop_reason::end_of_file);
  CHECK(rx.decoder().stats().decode_errors == 0);
  CHECK(rx.decoder().stats().data_records == sent); // exactly what was counted sent
  CHECK(rx.decoder().stats().sequence_gaps >= 1);   // the dropped records show as a gap
  std::remove(path.c_str());
}

TEST_CASE("file sink: files are created with file_mode, never through a symbolic link") {
  const std::string path = temp_path("mode.ipfix");
  ipfix_sink_config c = dns_config();
  c.file_path = path;
  c.file_mode = 0600;
  const mode_t old = ::umask(022);
  { ipfix::ipfix_file_sink s(c); }
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  std::remove(path.c_str());
  const std::string target = temp_path("mode-target");
  { std::ofstream(target) << "x"; }
  REQUIRE(::symlink(target.c_str(), path.c_str()) == 0);
  CHECK_THROWS_WITH_AS(ipfix::ipfix_file_sink{c}, doctest::Contains("symbolic link"),
                       std::runtime_error);
  std::ifstream in(target);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(content == "x"); // not truncated through the link
  ::umask(old);
  std::remove(path.c_str());
  std::remove(target.c_str());
}

TEST_CASE("file sink: exporter statistics every stats_interval_s and at close") {
  const std::string path = temp_path("stats.ipfix");
  ipfix_sink_config c = dns_config();
  c.file_path = path;
  c.stats_interval_s = 10;
  const auto t0 = std::chrono::system_clock::now();
  {
    ipfix::ipfix_file_sink s(c);
    for (uint32_t i = 0; i < 30; ++i) s.add(test::sample_record(template_kind::dns, ip_family::ipv4, i));
    s.tick(t0);         // starts the interval
    s.tick(t0 + 9s);    // not yet
    for (uint32_t i = 0; i < 20; ++i) s.add(test::sample_record(template_kind::dns, ip_family::ipv6, i));
    s.tick(t0 + 10s);   // one statistics record: 50 records so far
    s.tick(t0 + 15s);
    for (uint32_t i = 0; i < 5; ++i) s.add(test::sample_record(template_kind::dns, ip_family::ipv4, i));
    s.flush();
    CHECK(counter(s, "records_sent") == 55);
  } // closing writes the final figures

  ipfix::receiver_options o;
  o.listen = "file:" + path;
  o.include_options = true;
  std::vector<std::map<std::string, uint64_t>> stats;
  std::vector<std::string> order;
  ipfix_receiver rx(o, [&](const decoded_record& r) {
    order.emplace_back(r.kind);
    if (!r.options) return;
    CHECK(r.kind == "exporter_stats");
    std::map<std::string, uint64_t> f;
    for (const auto& d : r.fields) f[std::string(d.name)] = d.number;
    stats.push_back(f);
  });
  std::atomic<bool> stop{false};
  CHECK(rx.run(stop) == ipfix_receiver::stop_reason::end_of_file);
  CHECK(rx.decoder().stats().decode_errors == 0);
  CHECK(rx.decoder().stats().sequence_gaps == 0);
  CHECK(rx.decoder().stats().data_records == 55);
  REQUIRE(stats.size() == 2);
  CHECK(stats[0]["exportedFlowRecordTotalCount"] == 50);
  CHECK(stats[0]["notSentFlowTotalCount"] == 0);
  CHECK(stats[0]["observationDomainId"] == 5);
  CHECK(stats[1]["exportedFlowRecordTotalCount"] == 55); // flow records: statistics not counted
  CHECK(stats[1]["exportedMessageTotalCount"] >= 2);
  REQUIRE(order.size() == 57);
  CHECK(order[50] == "exporter_stats"); // after the first 50 records
  CHECK(order.back() == "exporter_stats"); // the file ends with the final figures
  std::remove(path.c_str());

  // stats_interval_s = 0: no statistics records, no options template
  c.stats_interval_s = 0;
  {
    ipfix::ipfix_file_sink s(c);
    s.add(test::sample_record(template_kind::dns, ip_family::ipv4, 1));
    s.tick(t0);
    s.tick(t0 + 1h);
  }
  ipfix_receiver rx2(o, [&](const decoded_record&) {});
  CHECK(rx2.run(stop) == ipfix_receiver::stop_reason::end_of_file);
  CHECK(rx2.decoder().stats().options_records == 0);
  CHECK(rx2.decoder().stats().data_records == 1);
  std::remove(path.c_str());
}

TEST_CASE("TCP sink: a collector that stops reading -> bounded buffer, drops counted") {
  local_socket listener(SOCK_STREAM);
  int small = 4096;
  setsockopt(listener.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small); // inherited by accepted
  ipfix_sink_config c = dns_config();
  c.tcp_buffer_records = 20;
  c.tcp_flush_timeout_ms = 50;
  ipfix_tcp_sink s(c, listener.address());
  for (int i = 0; i < 50 && s.current_state() != ipfix_tcp_sink::state::connected; ++i) {
    s.tick(std::chrono::system_clock::now());
    std::this_thread::sleep_for(2ms);
  }
  REQUIRE(s.current_state() == ipfix_tcp_sink::state::connected);
  const int conn = ::accept(listener.fd, nullptr, nullptr); // accepted, never read
  REQUIRE(conn >= 0);
  uint32_t n = 0;
  // large records until the kernel buffers are full and the sink drops
  for (; n < 200000 && counter(s, "records_dropped") == 0; ++n) {
    v1::Record r = test::sample_record(template_kind::dns, ip_family::ipv4, n);
    r.mutable_dns()->set_rdata(std::string(900, 'r'));
    s.add(r);
    if (n % 64 == 0) s.tick(std::chrono::system_clock::now());
  }
  CHECK(counter(s, "records_dropped") > 0);
  CHECK(s.current_state() == ipfix_tcp_sink::state::connected); // still connected
  // the bound applies at admission to records not yet written to the
  // socket, plus at most the message being built (65535 octets, about 60
  // of these records); written but unacknowledged ones are in the kernel
  CHECK(counter(s, "buffered_records") - counter(s, "unacked_records") <= 20 + 70);
  // from now on every record is dropped: nothing drains
  const uint64_t before = counter(s, "records_dropped");
  for (uint32_t i = 0; i < 100; ++i) s.add(test::sample_record(template_kind::dns, ip_family::ipv4, i));
  CHECK(counter(s, "records_dropped") >= before + 100 - 1);
  s.flush(); // gives up after the timeout
  CHECK(counter(s, "records_in") ==
        counter(s, "records_sent") + counter(s, "records_dropped") + counter(s, "buffered_records"));
  ::close(conn);
}

TEST_CASE("TCP sink: buffers while connecting, templates on each connection, reconnects") {
  local_socket listener(SOCK_STREAM);
  ipfix_sink_config c = dns_config();
  c.tcp_reconnect_min_ms = 20;
  c.tcp_reconnect_max_ms = 100;
  c.tcp_flush_timeout_ms = 2000;
  ipfix_tcp_sink s(c, listener.address());
  for (uint32_t i = 0; i < 100; ++i) s.add(test::sample_record(template_kind::dns, ip_family::ipv4, i));
  s.flush();
  const int conn = ::accept(listener.fd, nullptr, nullptr);
  REQUIRE(conn >= 0);
  CHECK(s.current_state() == ipfix_tcp_sink::state::connected);
  CHECK(counter(s, "records_sent") == 100);

  auto read_all = [](int fd, ipfix_decoder& dec, uint64_t session) {
    ipfix_stream_reader reader;
    std::vector<uint8_t> buf(65536);
    int records = 0;
    for (;;) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 300) <= 0) break;
      const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      reader.feed(buf.data(), static_cast<size_t>(n), [&](const uint8_t* d, size_t l) {
        CHECK(dec.decode(session, d, l, [&](const decoded_record&) { ++records; }));
      });
    }
    return records;
  };
  ipfix_decoder dec;
  CHECK(read_all(conn, dec, 1) == 100);
  CHECK(dec.stats().sequence_gaps == 0);

  // the collector goes away: the sink notices, reconnects, sends templates again
  ::close(conn);
  for (int i = 0; i < 20 && s.current_state() == ipfix_tcp_sink::state::connected; ++i) {
    s.tick(std::chrono::system_clock::now());
    std::this_thread::sleep_for(10ms);
  }
  for (uint32_t i = 0; i < 10; ++i) s.add(test::sample_record(template_kind::dns, ip_family::ipv6, i));
  s.flush();
  const int conn2 = ::accept(listener.fd, nullptr, nullptr);
  REQUIRE(conn2 >= 0);
  ipfix_decoder dec2; // new session: must not depend on earlier templates
  CHECK(read_all(conn2, dec2, 2) == 10);
  CHECK(dec2.stats().sets_without_template == 0);
  CHECK(counter(s, "connects") == 2);
  CHECK(counter(s, "disconnects") == 1);
  ::close(conn2);
}

TEST_CASE("TCP sink: collector down -> bounded buffer, drops counted") {
  uint16_t port;
  {
    local_socket probe(SOCK_STREAM); // find a free port, then close it
    port = probe.port;
  }
  ipfix_sink_config c = dns_config();
  c.tcp_buffer_records = 10;
  c.tcp_reconnect_min_ms = 10000;
  c.tcp_flush_timeout_ms = 50;
  ipfix_tcp_sink s(c, "127.0.0.1:" + std::to_string(port));
  for (int i = 0; i < 5; ++i) s.tick(std::chrono::system_clock::now());
  CHECK(s.current_state() == ipfix_tcp_sink::state::waiting);
  for (uint32_t i = 0; i < 30; ++i) s.add(test::sample_record(template_kind::dns, ip_family::ipv4, i));
  CHECK(counter(s, "records_dropped") == 20);
  CHECK(counter(s, "connect_failures") >= 1);
  s.flush(); // gives up after the timeout, nothing sent
  CHECK(counter(s, "records_sent") == 0);
}

TEST_CASE("receiver: UDP and TCP listeners deliver records") {
  std::atomic<bool> stop{false};
  SUBCASE("udp") {
    ipfix::receiver_options o;
    o.listen = "udp:127.0.0.1:0";
    o.max_records = 12;
    o.idle_exit_s = 5;
    std::vector<std::string> lines;
    ipfix_receiver rx(o, [&](const decoded_record& r) {
      std::string l;
      format_record(r, output_format::json, l);
      lines.push_back(l);
    });
    const std::string addr = rx.local_address();
    std::thread t([&] {
      ipfix_sink_config c;
      c.group = "clickstream";
      c.udp_collectors = {addr};
      auto sinks = make_ipfix_sinks(c);
      for (int round = 0; round < 2; ++round)
        for (const auto& r : test::all_sample_records()) sinks[0]->add(r);
      sinks[0]->flush();
    });
    CHECK(rx.run(stop) == ipfix_receiver::stop_reason::count);
    t.join();
    REQUIRE(lines.size() == 12);
    CHECK(lines[0].rfind("{\"template\":\"clickstream\",\"family\":\"ipv4\",", 0) == 0);
  }
  SUBCASE("tcp, two connections") {
    ipfix::receiver_options o;
    o.listen = "tcp:127.0.0.1:0";
    o.idle_exit_s = 1;
    int n = 0;
    ipfix_receiver rx(o, [&](const decoded_record&) { ++n; });
    std::vector<std::string> events;
    rx.on_session([&](ipfix_receiver::session_event ev, uint64_t session) {
      events.push_back(format_session_event(rx, ev, session, output_format::json));
    });
    const std::string addr = rx.local_address();
    std::thread t([&] {
      ipfix_sink_config c;
      c.group = "fullflow";
      c.tcp_collectors = {addr, addr};
      auto sinks = make_ipfix_sinks(c);
      for (auto& s : sinks)
        for (uint32_t i = 0; i < 7; ++i) s->add(test::sample_record(template_kind::fullflow, ip_family::ipv6, i));
      for (auto& s : sinks) s->flush();
    });
    CHECK(rx.run(stop) == ipfix_receiver::stop_reason::idle);
    t.join();
    CHECK(n == 14);
    const auto reports = rx.decoder().domains();
    REQUIRE(reports.size() == 2);
    CHECK(rx.decoder().stats().decode_errors == 0);
    for (const auto& d : reports) {
      CHECK(d.records == 7);
      CHECK(d.records_per_template.size() == 1);
      CHECK(d.first_sequence == 0);
      CHECK(d.first_message_templates > 0);
      CHECK(d.templates_seen);
      CHECK(d.first_template_sequence == 0);
      CHECK(d.next_sequence == 7);
    }
    // each connection: opened with its first message, closed when it ended
    REQUIRE(events.size() == 4);
    int opened = 0, closed = 0;
    for (const auto& e : events) {
      opened += e.rfind("{\"event\":\"opened\",\"exporter\":\"tcp:127.0.0.1:", 0) == 0;
      closed += e.rfind("{\"event\":\"closed\",\"exporter\":\"tcp:127.0.0.1:", 0) == 0;
      CHECK(e.find("\"sets_without_template\":0,") != std::string::npos);
    }
    CHECK(opened == 2);
    CHECK(closed == 2);
    const std::string json = format_summary(rx, output_format::json);
    CHECK(json.rfind("{\"summary\":{\"messages\":", 0) == 0);
    CHECK(json.find("\"records_per_kind\":{\"fullflow/ipv6\":14}") != std::string::npos);
    const std::string text = format_summary(rx, output_format::text);
    CHECK(text.find("0 decode error(s)") != std::string::npos);
    CHECK(text.find("7 record(s) (template ") != std::string::npos);
  }
}

namespace {

// The sink's counters keep records_in == sent + dropped + buffered.
void check_identity(const sink& s) {
  CHECK(counter(s, "records_in") ==
        counter(s, "records_sent") + counter(s, "records_dropped") + counter(s, "buffered_records"));
}

// Ticks `s` until `done` or about 5 s.
template <class F>
bool tick_until(ipfix_tcp_sink& s, F done) {
  for (int i = 0; i < 500; ++i) {
    s.tick(std::chrono::system_clock::now());
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

} // namespace

TEST_CASE("TCP sink: records are sent when the collector acknowledged them, lost when not") {
  // a collector with a small receive buffer that accepts and does not read
  local_socket listener(SOCK_STREAM);
  int small = 4096;
  REQUIRE(setsockopt(listener.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
  ipfix_sink_config c = dns_config();
  c.tcp_reconnect_min_ms = 20;
  c.tcp_reconnect_max_ms = 100;
  c.tcp_flush_timeout_ms = 300;
  ipfix_tcp_sink s(c, listener.address());
  REQUIRE(tick_until(s, [&] { return s.current_state() == ipfix_tcp_sink::state::connected; }));
  const int conn = ::accept(listener.fd, nullptr, nullptr);
  REQUIRE(conn >= 0);
  int rcvbuf = 0;
  socklen_t optlen = sizeof rcvbuf;
  REQUIRE(getsockopt(conn, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &optlen) == 0);

  // more than both socket buffers hold: written messages wait unacknowledged
  uint32_t added = 0;
  for (int round = 0; round < 50 && counter(s, "unacked_records") == 0; ++round) {
    for (int i = 0; i < 2000; ++i) s.add(test::sample_record(template_kind::dns, ip_family::ipv4, added++));
    s.tick(std::chrono::system_clock::now());
  }
  REQUIRE(counter(s, "unacked_records") > 0);
  CHECK(counter(s, "records_in") == added);
  CHECK(counter(s, "records_sent") < added);
  // what counts as sent fits into the collector's receive buffer: it read nothing
  CHECK(counter(s, "octets_sent") <= static_cast<uint64_t>(rcvbuf));
  check_identity(s);

  SUBCASE("the collector reads everything: all acknowledged, all sent") {
    ipfix_decoder dec;
    ipfix_stream_reader reader;
    uint64_t got = 0;
    std::vector<uint8_t> buf(1 << 16);
    for (int i = 0; i < 2000 && got < added; ++i) {
      pollfd p{conn, POLLIN, 0};
      if (::poll(&p, 1, 5) > 0) {
        const ssize_t n = ::recv(conn, buf.data(), buf.size(), 0);
        REQUIRE(n > 0);
        reader.feed(buf.data(), static_cast<size_t>(n), [&](const uint8_t* d, size_t l) {
          dec.decode(1, d, l, [&](const decoded_record&) { ++got; });
        });
      }
      s.tick(std::chrono::system_clock::now());
    }
    CHECK(got == added);
    CHECK(tick_until(s, [&] { return counter(s, "records_sent") == added; }));
    CHECK(counter(s, "unacked_records") == 0);
    CHECK(counter(s, "records_dropped") == 0);
    CHECK(dec.stats().sequence_gaps == 0);
    check_identity(s);
    ::close(conn);
  }
  SUBCASE("the collector resets the connection: unacknowledged records are dropped") {
    linger lg{1, 0};
    setsockopt(conn, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    ::close(conn); // RST, the unread data is gone with it
    REQUIRE(tick_until(s, [&] { return counter(s, "disconnects") == 1; }));
    CHECK(counter(s, "records_lost_in_flight") > 0);
    CHECK(counter(s, "unacked_records") == 0);
    CHECK(counter(s, "records_sent") + counter(s, "records_dropped") == added);
    CHECK(counter(s, "octets_sent") <= static_cast<uint64_t>(rcvbuf));
    check_identity(s);
  }
  SUBCASE("flush gives up: the connection is aborted and the rest counted dropped") {
    s.flush();
    CHECK(s.current_state() != ipfix_tcp_sink::state::connected);
    CHECK(counter(s, "buffered_records") == 0);
    CHECK(counter(s, "records_sent") + counter(s, "records_dropped") == added);
    CHECK(counter(s, "records_dropped") > 0);
    check_identity(s);
    // the collector sees the abort, not a clean end of stream
    std::vector<uint8_t> buf(1 << 16);
    ssize_t n = 1;
    for (int i = 0; i < 1000 && n > 0; ++i) n = ::recv(conn, buf.data(), buf.size(), 0);
    CHECK(n < 0);
    CHECK(errno == ECONNRESET);
    ::close(conn);
  }
}

TEST_CASE("TCP sink: a collector restarted on the same port gets a new session with templates") {
  uint16_t port;
  auto listener = std::make_unique<local_socket>(SOCK_STREAM);
  port = listener->port;
  ipfix_sink_config c = dns_config();
  c.tcp_reconnect_min_ms = 10;
  c.tcp_reconnect_max_ms = 40;
  c.tcp_buffer_records = 25;
  ipfix_tcp_sink s(c, "127.0.0.1:" + std::to_string(port));
  REQUIRE(tick_until(s, [&] { return s.current_state() == ipfix_tcp_sink::state::connected; }));
  int conn = ::accept(listener->fd, nullptr, nullptr);
  REQUIRE(conn >= 0);
  for (uint32_t i = 0; i < 40; ++i) s.add(test::sample_record(template_kind::dns, ip_family::ipv4, i));
  REQUIRE(tick_until(s, [&] { return counter(s, "records_sent") == 40; }));
  // the collector goes away (it read nothing, but its kernel acknowledged all:
  // those 40 count as sent, the limit no exporter can see past)
  ::close(conn);
  listener.reset();
  REQUIRE(tick_until(s, [&] { return counter(s, "disconnects") == 1; }));
  // meanwhile: 25 wait, 35 are dropped
  for (uint32_t i = 0; i < 60; ++i) s.add(test::sample_record(template_kind::dns, ip_family::ipv6, i));
  CHECK(counter(s, "records_dropped") == 35);
  check_identity(s);
  // the collector is back on the same port
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(lfd, 4) == 0);
  REQUIRE(tick_until(s, [&] { return s.current_state() == ipfix_tcp_sink::state::connected; }));
  conn = ::accept(lfd, nullptr, nullptr);
  REQUIRE(conn >= 0);
  s.flush();
  for (uint32_t i = 0; i < 5; ++i) s.add(test::sample_record(template_kind::dns, ip_family::ipv4, i));
  s.flush();
  CHECK(counter(s, "records_sent") == 70);
  CHECK(counter(s, "records_dropped") == 35);
  check_identity(s);
  ipfix_decoder dec;
  ipfix_stream_reader reader;
  std::vector<uint8_t> buf(1 << 16);
  int got = 0;
  bool first = true;
  for (;;) {
    pollfd p{conn, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) break;
    const ssize_t n = ::recv(conn, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    reader.feed(buf.data(), static_cast<size_t>(n), [&](const uint8_t* d, size_t l) {
      if (first) CHECK((d[16] << 8 | d[17]) == 2); // templates lead the new session
      first = false;
      dec.decode(2, d, l, [&](const decoded_record&) { ++got; });
    });
  }
  CHECK(got == 30);
  CHECK(dec.stats().sets_without_template == 0);
  const auto reports = dec.domains();
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].first_message_templates > 0);
  CHECK(reports[0].first_sequence == 0);
  // the 35 dropped records are in the sequence numbers: the collector sees them
  CHECK(reports[0].gaps == 1);
  CHECK(reports[0].lost == 35);
  CHECK(reports[0].next_sequence == 65);
  ::close(conn);
  ::close(lfd);
}

TEST_CASE("exporter instances: own observation domain, own file") {
  const config cfg = config::from_overrides(
    {"ipfix_dns_file=/tmp/x/dns.ipfix", "ipfix_observation_domain=10", "ipfix_tcp_reconnect_max=250ms"});
  const ipfix_sink_config i0 = ipfix_sink_config_from(cfg, sink_group::dns, 0);
  const ipfix_sink_config i2 = ipfix_sink_config_from(cfg, sink_group::dns, 2);
  CHECK(i0.observation_domain_id == 10);
  CHECK(i2.observation_domain_id == 12);
  CHECK(i0.file_path == "/tmp/x/dns.ipfix");
  CHECK(i2.file_path == "/tmp/x/dns.ipfix.2");
  CHECK(i0.tcp_reconnect_max_ms == 250);
  CHECK(i0.tcp_reconnect_min_ms == 250); // the first wait is never longer than the longest
  const config dflt = config::from_overrides({});
  CHECK(ipfix_sink_config_from(dflt, sink_group::dns, 0).tcp_reconnect_max_ms == 30000);
  CHECK(ipfix_sink_config_from(dflt, sink_group::dns, 0).tcp_reconnect_min_ms == 1000);
}
