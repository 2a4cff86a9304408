// SPDX-License-Identifier: Apache-2.0
// /metrics: text format rendering and the HTTP server's answers.

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/metrics_server.hpp"
#include "control/metrics_text.hpp"

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
