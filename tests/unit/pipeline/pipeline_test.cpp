// SPDX-License-Identifier: Apache-2.0
// The whole actor pipeline of metaprobe-capture in one process: a corpus
// capture goes in, the test pulls the published RecordBatch messages from
// the ZeroMQ channels like an exporter would and checks what arrived.
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include <unistd.h>

#include <caf/all.hpp>
#include <zmq.hpp>

#include "metaprobe/v1/envelope.pb.h"
#include "pipeline/pipeline.hpp"

using namespace metaprobe;

namespace {

struct pulled {
  std::map<v1::Record::KindCase, size_t> kinds;
  size_t batches = 0;
  size_t eos = 0;
  size_t bad = 0;
  uint64_t total_records_announced = 0;
  std::vector<v1::Record> records;
};

// Pulls one channel until end of stream (or a timeout).
void pull(zmq::context_t& ctx, const std::string& endpoint, pulled& out) {
  zmq::socket_t s(ctx, zmq::socket_type::pull);
  s.set(zmq::sockopt::rcvtimeo, 20000);
  s.connect(endpoint);
  for (;;) {
    zmq::message_t m;
    if (!s.recv(m))
      return; // timeout
    v1::RecordBatch b;
    if (!b.ParseFromArray(m.data(), static_cast<int>(m.size()))) {
      ++out.bad; // checked by the test thread
      continue;
    }
    ++out.batches;
    for (const auto& r : b.records()) {
      ++out.kinds[r.kind_case()];
      out.records.push_back(r);
    }
    if (b.end_of_stream()) {
      ++out.eos;
      out.total_records_announced = b.total_records();
      return;
    }
  }
}

pipeline_options options_for(const std::string& pcap, const std::string& base, int workers) {
  pipeline_options o;
  o.input = "pcap:" + pcap;
  o.workers = workers;
  o.publisher.endpoint_base = base;
  o.publisher.channels = {{sink_group::clickstream, sink_kind::ipfix},
                          {sink_group::dns, sink_kind::ipfix},
                          {sink_group::fullflow, sink_kind::ipfix}};
  o.publisher.block_ms = 20000;
  o.parsers.http_parse_reply = true;
  return o;
}

std::map<std::string, pulled> run(const std::string& pcap, int workers, stage_stats& stats) {
  static int run_no = 0;
  std::string base = "ipc:///tmp/mp-pipeline-test-" + std::to_string(getpid()) + "-" +
                     std::to_string(++run_no);
  auto opts = options_for(pcap, base, workers);
  zmq::context_t ctx(1);
  std::map<std::string, pulled> got;
  std::vector<std::thread> pullers;
  for (const auto& ch : opts.publisher.channels)
    got[ch.name()];
  for (const auto& ch : opts.publisher.channels)
    pullers.emplace_back(
      [&, ch] { pull(ctx, channel_endpoint(base, ch), got[ch.name()]); });
  caf::actor_system_config cfg;
  std::atomic<bool> stop{false};
  std::string error;
  {
    caf::actor_system sys{cfg};
    REQUIRE_MESSAGE(run_pipeline(sys, opts, stop, stats, error), error);
  }
  for (auto& t : pullers)
    t.join();
  return got;
}

std::string corpus(const char* name) {
  return std::string(METAPROBE_CORPUS) + "/" + name;
}

} // namespace

TEST_CASE("pipeline: DNS capture yields DNS records and full flows, then end of stream") {
  auto pcap = corpus("dns-packets-pcpp.pcap");
  if (!std::filesystem::exists(pcap)) {
    MESSAGE("corpus missing, skipped: " << pcap);
    return;
  }
  stage_stats stats;
  auto got = run(pcap, 1, stats);
  CHECK(stats.get("capture.packets") == 464);
  auto& dns = got["dns.ipfix"];
  CHECK(dns.bad == 0);
  CHECK(dns.eos == 1);
  CHECK(dns.kinds[v1::Record::kDns] > 400);
  CHECK(dns.total_records_announced == dns.records.size());
  for (const auto& r : dns.records) {
    const auto& m = r.dns().meta();
    CHECK(m.session_id() != 0);
    CHECK(m.ip_source().size() == (m.family() == v1::FAMILY_IPV6 ? 16u : 4u));
    CHECK(!r.dns().domain().empty());
  }
  auto& ff = got["fullflow.ipfix"];
  CHECK(ff.eos == 1);
  CHECK(ff.kinds[v1::Record::kFullflow] > 0);
  uint64_t packets = 0;
  for (const auto& r : ff.records)
    packets += r.fullflow().packet_delta_count();
  // every IP packet of the capture is in exactly one full-flow record
  CHECK(packets == stats.get("capture.decode.ok"));
}

// Both runs' results are kept in named variables: a range-for over
// `run(...)["clickstream.ipfix"].records` would iterate a member of a
// temporary map that is destroyed before the loop body runs (only the
// reference returned by operator[] is bound, the map's lifetime is not
// extended). That dangling loop is what made this case "lose" all
// clickstream records of the two-worker run.
TEST_CASE("pipeline: two workers export the same records as one") {
  auto pcap = corpus("http-ipfixprobe.pcap");
  if (!std::filesystem::exists(pcap)) {
    MESSAGE("corpus missing, skipped: " << pcap);
    return;
  }
  auto key = [](const v1::Record& r) {
    const auto& c = r.clickstream();
    return c.hostname() + " " + c.path() + " " + std::to_string(c.meta().port_source());
  };
  std::multiset<std::string> one, two;
  stage_stats s1, s2;
  const auto first = run(pcap, 1, s1);
  const auto second = run(pcap, 2, s2);
  for (const auto* got : {&first, &second}) {
    const auto& cs = got->at("clickstream.ipfix");
    CHECK(cs.bad == 0);
    CHECK(cs.eos == 1);
    CHECK(cs.total_records_announced == cs.records.size());
  }
  CHECK(s1.get("capture.packets") == s2.get("capture.packets"));
  for (const auto& r : first.at("clickstream.ipfix").records)
    if (r.has_clickstream())
      one.insert(key(r));
  for (const auto& r : second.at("clickstream.ipfix").records)
    if (r.has_clickstream())
      two.insert(key(r));
  CHECK(one.size() >= 9);
  for (const auto& k : two)
    if (!one.count(k))
      MESSAGE("only with two workers: " << k);
  for (const auto& k : one)
    if (!two.count(k))
      MESSAGE("only with one worker: " << k);
  CHECK(one == two);
}
