// SPDX-License-Identifier: Apache-2.0
// The publisher's view of its exporters: connected PULL sockets counted per
// channel through the socket monitor, the wait for the configured count
// (deadline, stop flag), end of stream to every connected exporter.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "publisher/publisher.hpp"
#include "temp_dir.hpp"

using namespace metaprobe;

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

using test::temp_dir;

const channel clickstream_ipfix{sink_group::clickstream, sink_kind::ipfix};
const channel dns_ipfix{sink_group::dns, sink_kind::ipfix};
const channel meta_ipfix{sink_group::meta, sink_kind::ipfix};

publisher_options options(const std::string& dir) {
  publisher_options o;
  o.endpoint_base = "ipc://" + dir + "/ch";
  o.channels = {dns_ipfix, meta_ipfix};
  o.instances[dns_ipfix.index()] = 2;
  o.instances[meta_ipfix.index()] = 1;
  o.linger_ms = 2000;
  o.block_ms = 2000;
  return o;
}

// An exporter's end of a channel.
struct puller {
  std::unique_ptr<zmq::socket_t> sock;
  puller(zmq::context_t& ctx, const std::string& endpoint) {
    sock = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::pull);
    sock->set(zmq::sockopt::rcvtimeo, 3000);
    sock->set(zmq::sockopt::linger, 0);
    sock->connect(endpoint);
  }
  // Batches until end of stream (or a timeout): the number of end-of-stream
  // messages received.
  int drain_eos() {
    int eos = 0;
    for (;;) {
      zmq::message_t m;
      if (!sock->recv(m))
        return eos;
      v1::RecordBatch b;
      REQUIRE(b.ParseFromArray(m.data(), static_cast<int>(m.size())));
      if (b.end_of_stream()) {
        ++eos;
        sock->set(zmq::sockopt::rcvtimeo, 200); // more may follow
      }
    }
  }
};

// Polls the publisher until `ch` shows `want` connected exporters (or 5 s).
bool connected_becomes(publisher& pub, const channel& ch, uint64_t want) {
  const auto end = clock_type::now() + std::chrono::seconds(5);
  while (clock_type::now() < end) {
    pub.poll_events();
    if (pub.counters(ch).exporters_connected == want)
      return true;
    ::usleep(10000);
  }
  return false;
}

} // namespace

TEST_CASE("publisher: counts the exporters connected to each channel") {
  temp_dir d;
  auto o = options(d.path);
  publisher pub(o);
  CHECK(pub.counters(dns_ipfix).exporters_connected == 0);
  CHECK(pub.expected_exporters(dns_ipfix) == 2);
  zmq::context_t ctx(1);
  auto a = std::make_unique<puller>(ctx, channel_endpoint(o.endpoint_base, dns_ipfix));
  CHECK(connected_becomes(pub, dns_ipfix, 1));
  puller b(ctx, channel_endpoint(o.endpoint_base, dns_ipfix));
  CHECK(connected_becomes(pub, dns_ipfix, 2));
  CHECK(pub.counters(meta_ipfix).exporters_connected == 0);
  a.reset(); // an exporter goes away
  CHECK(connected_becomes(pub, dns_ipfix, 1));
}

TEST_CASE("publisher: a connection that never finishes its handshake is not counted") {
  publisher_options o;
  o.endpoint_base = "tcp://127.0.0.1:0"; // clickstream.ipfix: port 0 + 0, the kernel picks
  o.channels = {clickstream_ipfix};
  o.linger_ms = 0;
  publisher pub(o);
  const std::string ep = pub.bound_endpoint(clickstream_ipfix);
  REQUIRE(ep.rfind("tcp://127.0.0.1:", 0) == 0);
  const int port = std::stoi(ep.substr(ep.rfind(':') + 1));
  REQUIRE(port > 0);
  zmq::context_t ctx(1);
  puller real(ctx, ep);
  CHECK(connected_becomes(pub, clickstream_ipfix, 1));
  // a port probe: accepted, never says a word of ZMTP, then closes
  for (int i = 0; i < 3; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    ::usleep(50000);
    pub.poll_events();
    CHECK(pub.counters(clickstream_ipfix).exporters_connected == 1); // never too few
    ::close(fd);
  }
  ::usleep(100000);
  pub.poll_events();
  CHECK(pub.counters(clickstream_ipfix).exporters_connected == 1); // the real one stays counted
  puller second(ctx, ep);
  CHECK(connected_becomes(pub, clickstream_ipfix, 2));
  pub.finish();
}

TEST_CASE("publisher: the wait for exporters ends when all are there") {
  temp_dir d;
  auto o = options(d.path);
  publisher pub(o);
  zmq::context_t ctx(1);
  puller a(ctx, channel_endpoint(o.endpoint_base, dns_ipfix));
  puller b(ctx, channel_endpoint(o.endpoint_base, dns_ipfix));
  puller m(ctx, channel_endpoint(o.endpoint_base, meta_ipfix));
  std::atomic<bool> stop{false};
  const auto t0 = clock_type::now();
  auto missing = pub.wait_for_exporters(t0 + std::chrono::seconds(10), stop);
  CHECK(missing.empty());
  CHECK(clock_type::now() - t0 < std::chrono::seconds(5));
  CHECK(pub.counters(dns_ipfix).exporters_connected == 2);
  CHECK(pub.counters(meta_ipfix).exporters_connected == 1);
  pub.finish();
}

TEST_CASE("publisher: the wait ends at the deadline naming the channels short of exporters") {
  temp_dir d;
  auto o = options(d.path);
  publisher pub(o);
  zmq::context_t ctx(1);
  puller a(ctx, channel_endpoint(o.endpoint_base, dns_ipfix)); // 1 of 2
  puller m(ctx, channel_endpoint(o.endpoint_base, meta_ipfix)); // 1 of 1
  std::atomic<bool> stop{false};
  const auto t0 = clock_type::now();
  auto missing = pub.wait_for_exporters(t0 + milliseconds(400), stop);
  const auto waited = clock_type::now() - t0;
  REQUIRE(missing.size() == 1);
  CHECK(missing[0].name() == "dns.ipfix");
  CHECK(waited >= milliseconds(400));
  CHECK(waited < milliseconds(3000));
  CHECK(pub.counters(dns_ipfix).exporters_connected == 1);

  // a stop request ends the wait at once
  stop = true;
  const auto t1 = clock_type::now();
  missing = pub.wait_for_exporters(t1 + std::chrono::seconds(30), stop);
  CHECK(missing.size() == 1);
  CHECK(clock_type::now() - t1 < milliseconds(1000));
  pub.finish();
}

TEST_CASE("publisher: end of stream reaches every connected exporter, also beyond the configured count") {
  temp_dir d;
  auto o = options(d.path);
  o.channels = {dns_ipfix};
  o.instances[dns_ipfix.index()] = 1; // configured: one
  publisher pub(o);
  zmq::context_t ctx(1);
  std::vector<std::unique_ptr<puller>> pullers;
  for (int i = 0; i < 3; ++i)
    pullers.push_back(
      std::make_unique<puller>(ctx, channel_endpoint(o.endpoint_base, dns_ipfix)));
  REQUIRE(connected_becomes(pub, dns_ipfix, 3));
  pub.publish(sink_group::dns, std::vector<v1::Record>(1, v1::Record{}));
  pub.finish();
  for (auto& p : pullers)
    CHECK(p->drain_eos() == 1);
}

TEST_CASE("publisher: with fewer exporters than configured, the configured count of ends is sent") {
  temp_dir d;
  auto o = options(d.path);
  o.channels = {dns_ipfix}; // configured: two
  publisher pub(o);
  zmq::context_t ctx(1);
  puller only(ctx, channel_endpoint(o.endpoint_base, dns_ipfix));
  REQUIRE(connected_becomes(pub, dns_ipfix, 1));
  pub.finish();
  CHECK(only.drain_eos() == 2);
}
