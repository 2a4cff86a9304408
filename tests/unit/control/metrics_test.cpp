// SPDX-License-Identifier: Apache-2.0
// /metrics: text format rendering and the HTTP server's answers.

#include <doctest/doctest.h>

#include <map>
#include <sstream>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/metric_families.hpp"
#include "control/metrics_server.hpp"
#include "control/metrics_text.hpp"
#include "control/stats_counters.hpp"

using namespace metaprobe;

namespace {

std::string fetch(uint16_t port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  size_t off = 0;
  while (off < request.size()) {
    ssize_t n = ::send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n <= 0)
      break;
    off += static_cast<size_t>(n);
  }
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0)
    out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

} // namespace

TEST_CASE("prometheus text: families with HELP and TYPE, escaped labels") {
  v1::ControlReply r;
  auto* p = r.add_processes();
  p->set_process("capture");
  p->set_uptime_ms(1500);
  p->set_control_refused(2);
  auto* a = r.add_actors();
  a->set_process("capture");
  a->set_name("parser:http");
  a->set_kind("parser");
  a->set_shard(1);
  a->set_messages_in(42);
  a->set_mailbox_depth(3);
  for (int shard = 0; shard < 2; ++shard) {
    auto* c = r.add_counters();
    c->set_name("classifier_flows_created");
    c->set_value(10 + shard);
    (*c->mutable_labels())["stage"] = "classifier";
    (*c->mutable_labels())["shard"] = std::to_string(shard);
    (*c->mutable_labels())["sink"] = "a\"b\\c\nd";
  }
  auto* g = r.add_counters();
  g->set_name("classifier_flows_active");
  g->set_gauge(true);
  g->set_value(4);
  std::string t = render_prometheus(r);
  CHECK(t.find("# TYPE metaprobe_classifier_flows_created_total counter\n") != std::string::npos);
  CHECK(t.find("# HELP metaprobe_classifier_flows_created_total ") != std::string::npos);
  // one HELP/TYPE per family, both samples under it
  CHECK(t.find("# TYPE metaprobe_classifier_flows_created_total") ==
        t.rfind("# TYPE metaprobe_classifier_flows_created_total"));
  CHECK(t.find("metaprobe_classifier_flows_created_total{shard=\"1\",sink=\"a\\\"b\\\\c\\nd\","
               "stage=\"classifier\"} 11\n") != std::string::npos);
  CHECK(t.find("# TYPE metaprobe_classifier_flows_active gauge\n") != std::string::npos);
  CHECK(t.find("metaprobe_classifier_flows_active 4\n") != std::string::npos);
  CHECK(t.find("metaprobe_actor_messages_in_total{actor=\"parser:http\",kind=\"parser\","
               "process=\"capture\",shard=\"1\"} 42\n") != std::string::npos);
  CHECK(t.find("metaprobe_actor_mailbox_depth{") != std::string::npos);
  CHECK(t.find("metaprobe_control_refused_total{process=\"capture\"} 2\n") != std::string::npos);
  CHECK(t.find("metaprobe_process_uptime_seconds{process=\"capture\"} 1.5") != std::string::npos);
}

namespace {

// "# TYPE name type" lines of a rendering: name -> type.
std::map<std::string, std::string> types_of(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("# TYPE ", 0) == 0) {
      auto sp = line.find(' ', 7);
      out[line.substr(7, sp - 7)] = line.substr(sp + 1);
    }
  return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

} // namespace

TEST_CASE("prometheus conventions: levels are gauges, counters end in _total, base units") {
  // stage_stats names as the stages publish them
  const std::map<std::string, uint64_t> stats = {
    {"appliance.children_alive", 9},
    {"appliance.exporter_restarts", 1},
    {"capture.packets", 100},
    {"capture.1.source.bytes", 5000},
    {"capture.decode.ok", 99},
    {"classifier.0.flows_active", 4},
    {"classifier.0.flows_created", 12},
    {"classifier.0.ipreasm.pending", 2},
    {"classifier.0.ipreasm.limit_bytes", 3},
    {"classifier.0.bytes_copied", 700},
    {"classifier.0.tcp.bytes_gapped", 70},
    {"parser.http.0.active_flows", 3},
    {"parser.http.0.bytes_scanned", 800},
    {"parser.http.0.inner.tls.bytes_scanned", 80},
    {"parser.http.0.chain.http>tls", 1},
    {"publisher.clickstream.ipfix.bytes_sent", 9000},
    {"publisher.clickstream.ipfix.exporters_connected", 1},
    {"exporter.clickstream.ipfix.0.max_send_cycle_us", 15000},
    {"exporter.clickstream.ipfix.0.records", 40},
    {"exporter.clickstream.ipfix.0.ipfix:tcp:127.0.0.1:4739.octets_sent{127.0.0.1:4739}", 4096},
    {"exporter.clickstream.ipfix.0.ipfix:tcp:127.0.0.1:4739.held_records{127.0.0.1:4739}", 5},
    {"exporter.clickstream.ipfix.0.ipfix:tcp:127.0.0.1:4739.unacked_records{127.0.0.1:4739}", 6},
    {"exporter.clickstream.ipfix.0.ipfix:tcp:127.0.0.1:4739.buffered_records{127.0.0.1:4739}", 7},
    {"exporter.clickstream.ipfix.0.ipfix:tcp:127.0.0.1:4739.connected{127.0.0.1:4739}", 1},
    {"exporter.clickstream.text.0.text:url:/d.bytes_written{url:/d}", 300},
  };
  v1::ControlReply r;
  for (auto& c : counters_from_stats(stats))
    *r.add_counters() = c;
  const std::string t = render_prometheus(r);
  auto types = types_of(t);
  for (const std::string level :
       {"appliance_children_alive", "classifier_flows_active", "classifier_ipreasm_pending",
        "parser_active_flows", "publisher_exporters_connected", "exporter_sink_held_records",
        "exporter_sink_unacked_records", "exporter_sink_buffered_records",
        "exporter_sink_connected", "exporter_send_cycle_max_seconds"}) {
    INFO(level);
    CHECK(types.count("metaprobe_" + level) == 1);
    CHECK(types["metaprobe_" + level] == "gauge");
  }
  for (const auto& [name, type] : types) {
    INFO(name);
    CHECK(ends_with(name, "_total") == (type == "counter"));
    for (const char* unit : {"_ms", "_us", "_ns", "_octets"})
      CHECK(name.find(unit) == std::string::npos);
    // every family here has a HELP of its own, not the fallback's
    // ("<stage> counter <name>")
    std::string base = name.substr(10);
    if (ends_with(base, "_total"))
      base.resize(base.size() - 6);
    CHECK(t.find("# HELP " + name + " ") != std::string::npos);
    CHECK(t.find(" counter " + base + "\n") == std::string::npos);
  }
  // units: microseconds become seconds, sizes are _bytes, last
  CHECK(t.find("metaprobe_exporter_send_cycle_max_seconds{channel=\"clickstream.ipfix\","
               "instance=\"0\",stage=\"exporter\"} 0.015\n") != std::string::npos);
  CHECK(types.count("metaprobe_exporter_sink_sent_bytes_total") == 1);
  CHECK(t.find("metaprobe_exporter_sink_sent_bytes_total{channel=\"clickstream.ipfix\","
               "collector=\"127.0.0.1:4739\",instance=\"0\",sink=\"ipfix:tcp:127.0.0.1:4739\","
               "stage=\"exporter\"} 4096\n") != std::string::npos);
  for (const char* family :
       {"metaprobe_exporter_sink_written_bytes_total", "metaprobe_publisher_sent_bytes_total",
        "metaprobe_parser_scanned_bytes_total", "metaprobe_parser_inner_tls_scanned_bytes_total",
        "metaprobe_classifier_copied_bytes_total", "metaprobe_classifier_tcp_gapped_bytes_total",
        "metaprobe_capture_1_source_bytes_total", "metaprobe_capture_decode_ok_total",
        "metaprobe_parser_chain_flows_total", "metaprobe_classifier_ipreasm_byte_limit_datagrams_total"}) {
    INFO(family);
    CHECK(types.count(family) == 1);
  }
  // a count of datagrams is no quantity of bytes
  CHECK(types.count("metaprobe_classifier_ipreasm_limit_bytes_total") == 0);
  // the control endpoint and the console keep the counters' own names
  CHECK(counter_from_stat("exporter.clickstream.ipfix.0.max_send_cycle_us", 1).name() ==
        "exporter_max_send_cycle_us");
}

TEST_CASE("metric families: HELP texts, per-source and inner-protocol variants, fallback") {
  auto f = family_of_counter("capture_0_source_packets", "capture");
  CHECK(f.name == "capture_0_source_packets");
  CHECK(f.help == "frames read from the input (input source 0)");
  f = family_of_counter("parser_inner_tls_records", "parser");
  CHECK(f.name == "parser_inner_tls_records");
  CHECK(f.help == "records the parsers emitted (tls inside a hand-over)");
  f = family_of_counter("classifier_flows_ended_idle", "classifier");
  CHECK(f.help == "flows ended, by reason: idle");
  f = family_of_counter("exporter_max_send_cycle_us", "exporter");
  CHECK(f.name == "exporter_send_cycle_max_seconds");
  CHECK(f.divisor == 1e6);
  // unknown: the name kept, a HELP text integration.metrics_lint rejects
  f = family_of_counter("classifier_new_thing", "classifier");
  CHECK(f.name == "classifier_new_thing");
  CHECK(f.help == "classifier counter classifier_new_thing");
  f = family_of_counter("parser_inner_tls_new_thing", "parser");
  CHECK(f.help == "parser counter parser_inner_tls_new_thing");
}

TEST_CASE("metrics HTTP answers") {
  auto render = [] { return std::string("m 1\n"); };
  CHECK(metrics_http_answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", render).status == 200);
  CHECK(metrics_http_answer("GET /metrics?x=1 HTTP/1.0\r\n\r\n", render).body == "m 1\n");
  CHECK(metrics_http_answer("GET / HTTP/1.1\r\n\r\n", render).status == 404);
  CHECK(metrics_http_answer("POST /metrics HTTP/1.1\r\n\r\n", render).status == 405);
  CHECK(metrics_http_answer("hello\r\n\r\n", render).status == 400);
  auto head = metrics_http_answer("HEAD /metrics HTTP/1.1\r\n\r\n", render);
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  auto bytes = http_response_bytes(metrics_http_answer("GET /metrics HTTP/1.1\r\n\r\n", render));
  CHECK(bytes.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(bytes.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  CHECK(bytes.find("Content-Length: 4\r\n") != std::string::npos);
}

TEST_CASE("metrics server over loopback") {
  int renders = 0;
  metrics_server srv(endpoint{"127.0.0.1", 0}, [&] {
    ++renders;
    return std::string("metaprobe_x_total 7\n");
  });
  std::string error;
  REQUIRE_MESSAGE(srv.start(error), error);
  REQUIRE(srv.port() != 0);
  std::string r = fetch(srv.port(), "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
  CHECK(r.rfind("HTTP/1.1 200 OK", 0) == 0);
  CHECK(r.find("\r\n\r\nmetaprobe_x_total 7\n") != std::string::npos);
  CHECK(fetch(srv.port(), "GET /other HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404", 0) == 0);
  // an endless header is cut off, not buffered without bound
  std::string big = "GET /metrics HTTP/1.1\r\nX: " + std::string(9000, 'a');
  CHECK(fetch(srv.port(), big).rfind("HTTP/1.1 431", 0) == 0);
  CHECK(renders == 1);
  // the port is taken while it runs
  metrics_server second(endpoint{"127.0.0.1", srv.port()}, [] { return std::string(); });
  CHECK_FALSE(second.start(error));
  srv.stop();
}
