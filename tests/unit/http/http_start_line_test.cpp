// SPDX-License-Identifier: Apache-2.0
// Unit tests of the lenient request lines (issue 17): HTTP/0.9 simple
// requests and their status-less responses, bad versions, empty targets;
// each exported and counted, the classifier's probe still strict.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "parsers/http/http_message.hpp"
#include "parsers/http/http_parser.hpp"

using namespace metaprobe;

namespace {

constexpr auto c2s = direction::client_to_server;
constexpr auto s2c = direction::server_to_client;

struct fixture {
  parser_options opts;
  parser_counters counters;
  std::unique_ptr<stream_parser> p;
  record_sink out;
  uint32_t seq[2] = {1000, 5000};

  fixture() {
    opts.http_parse_reply = true;
    p = make_http_parser(opts, counters);
  }
  void send(direction d, const std::string& data, size_t chunk = 0) {
    const size_t step = chunk ? chunk : data.size();
    for (size_t i = 0; i < data.size(); i += step) {
      const size_t n = std::min(step, data.size() - i);
      p->deliver(d, reinterpret_cast<const uint8_t*>(data.data() + i), n, 1,
                 seq[static_cast<int>(d)], out);
      seq[static_cast<int>(d)] += static_cast<uint32_t>(n);
    }
  }
  // Delivers `data` in two pieces, cut after `at` bytes.
  void send_split(direction d, const std::string& data, size_t at) {
    send(d, data.substr(0, at));
    send(d, data.substr(at));
  }
  std::vector<const v1::Clickstream*> requests() const {
    std::vector<const v1::Clickstream*> v;
    for (const auto& r : out)
      if (r.record.has_clickstream())
        v.push_back(&r.record.clickstream());
    return v;
  }
  std::vector<uint32_t> codes() const {
    std::vector<uint32_t> v;
    for (const auto& r : out)
      if (r.record.has_http_reply())
        v.push_back(r.record.http_reply().result_code());
    return v;
  }
  uint64_t extra(http_counter c) const { return counters.extra[c]; }
};

bool probe(const std::string& s) {
  return http_probe(reinterpret_cast<const uint8_t*>(s.data()), s.size(), c2s);
}

// A 0.9 body with lines that would start messages if they were parsed.
const std::string simple_body =
  "<html>GET /fake HTTP/1.1\r\nGET /also-fake\r\nHTTP/1.1 200 OK\r\n\r\n</html>";

} // namespace

TEST_CASE("HTTP/0.9: the request is exported, its body-only response runs to close") {
  fixture f;
  f.send(c2s, "GET /\r\n");
  f.send(s2c, simple_body);
  f.p->finish(2, f.out);
  auto r = f.requests();
  REQUIRE(r.size() == 1);
  CHECK(r[0]->method() == 1);
  CHECK(r[0]->method_name() == "GET");
  CHECK(r[0]->path() == "/");
  CHECK(r[0]->http_version().empty());
  CHECK(r[0]->tcp_sequence() == 1000);
  CHECK(f.codes().empty());
  CHECK(f.extra(requests_no_version) == 1);
  CHECK(f.extra(responses_no_status_line) == 1);
  CHECK(f.counters.messages == 2);
  CHECK(f.counters.violations == 0);
  CHECK(f.p->state() == parser_state::confirmed);
}

TEST_CASE("HTTP/0.9: the request line split at every byte, the body in any pieces") {
  const std::string req = "GET /path/x.html\r\n";
  for (size_t at = 0; at <= req.size(); ++at) {
    CAPTURE(at);
    fixture f;
    f.send_split(c2s, req, at);
    f.send(s2c, simple_body, at == 0 ? 0 : at);
    f.p->finish(2, f.out);
    auto r = f.requests();
    REQUIRE(r.size() == 1);
    CHECK(r[0]->path() == "/path/x.html");
    CHECK(r[0]->http_version().empty());
    CHECK(r[0]->tcp_sequence() == 1000);
    CHECK(f.extra(requests_no_version) == 1);
    CHECK(f.extra(responses_no_status_line) == 1);
    CHECK(f.counters.violations == 0);
  }
}

TEST_CASE("HTTP/0.9: a request with no answer is reported at the flow's end") {
  fixture f;
  f.send(c2s, "GET /late\r\n");
  CHECK(f.requests().empty()); // header fields may still follow
  f.p->finish(2, f.out);
  REQUIRE(f.requests().size() == 1);
  CHECK(f.requests()[0]->path() == "/late");
}

TEST_CASE("a version-less line with header fields: fields read, a status line answers") {
  // tshark shows it with http.host "a" and an empty version.
  fixture f;
  f.send(c2s, "GET /path\r\nHost: a\r\nUser-Agent: scan\r\n\r\n");
  f.send(s2c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
  auto r = f.requests();
  REQUIRE(r.size() == 1);
  CHECK(r[0]->path() == "/path");
  CHECK(r[0]->hostname() == "a");
  CHECK(r[0]->user_agent() == "scan");
  CHECK(r[0]->http_version().empty());
  CHECK(f.codes() == std::vector<uint32_t>{400});
  CHECK(f.extra(requests_no_version) == 1);
  CHECK(f.extra(responses_no_status_line) == 0);
}

TEST_CASE("HTTP/0.9: a server that answers with a status line is parsed as HTTP/1.x") {
  fixture f;
  f.send(c2s, "GET /\r\n");
  f.send(s2c, "HT");
  f.send(s2c, "TP/1.1 400 Bad Request\r\nContent-Length: 4\r\n\r\nnope");
  f.send(c2s, "GET /next HTTP/1.1\r\n\r\n");
  f.send(s2c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  CHECK(f.requests().size() == 2);
  CHECK(f.codes() == std::vector<uint32_t>{400, 200});
  CHECK(f.extra(responses_no_status_line) == 0);
}

TEST_CASE("HTTP/0.9: a body that begins like a status line but is none") {
  fixture f;
  f.send(c2s, "GET /\r\n");
  f.send(s2c, "HTTPX body\r\nHTTP/1.1 200 OK\r\n\r\n");
  CHECK(f.codes().empty());
  CHECK(f.extra(responses_no_status_line) == 1);
  CHECK(f.counters.violations == 0);
}

TEST_CASE("bad versions: exported as sent, counted, the response parsed") {
  const std::vector<std::string> versions = {"HTTP/1.", "HTTP/x", "HTTP/2", "HTTP/1.1x",
                                             "http/1.1", "FOO"};
  fixture f;
  std::string client, server;
  for (const auto& v : versions) {
    client += "GET / " + v + "\r\nHost: a\r\n\r\n";
    server += "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
  }
  f.send(c2s, client);
  f.send(s2c, server);
  auto r = f.requests();
  REQUIRE(r.size() == versions.size());
  for (size_t i = 0; i < versions.size(); ++i) {
    CHECK(r[i]->path() == "/");
    CHECK(r[i]->hostname() == "a");
    CHECK(r[i]->http_version() == versions[i]);
  }
  CHECK(f.codes().size() == versions.size());
  CHECK(f.extra(requests_bad_version) == versions.size());
  CHECK(f.extra(requests_no_version) == 0);
}

TEST_CASE("bad version: the request line split at every byte") {
  const std::string req = "GET /a HTTP/1.\r\nHost: h\r\n\r\n";
  for (size_t at = 0; at <= req.size(); ++at) {
    CAPTURE(at);
    fixture f;
    f.send_split(c2s, req, at);
    auto r = f.requests();
    REQUIRE(r.size() == 1);
    CHECK(r[0]->http_version() == "HTTP/1.");
    CHECK(r[0]->hostname() == "h");
    CHECK(f.extra(requests_bad_version) == 1);
  }
}

TEST_CASE("empty target: OPTIONS SP SP version and OPTIONS SP version") {
  fixture f;
  f.send(c2s, "OPTIONS  HTTP/1.1\r\nHost: a\r\n\r\nOPTIONS HTTP/1.1\r\nHost: b\r\n\r\n"
              "OPTIONS HTTP/1.\r\nHost: c\r\n\r\n");
  f.send(s2c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
              "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n"
              "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
  auto r = f.requests();
  REQUIRE(r.size() == 3);
  CHECK(r[0]->method_name() == "OPTIONS");
  CHECK(r[0]->method() == 0);
  CHECK(r[0]->path().empty());
  CHECK(r[0]->http_version() == "HTTP/1.1");
  CHECK(r[1]->path().empty());
  CHECK(r[1]->http_version() == "HTTP/1.1");
  CHECK(r[1]->hostname() == "b");
  CHECK(r[2]->http_version() == "HTTP/1.");
  CHECK(f.codes() == std::vector<uint32_t>{200, 405, 400});
  CHECK(f.extra(requests_empty_target) == 3);
  CHECK(f.extra(requests_bad_version) == 1);
}

TEST_CASE("empty target: the request line split at every byte") {
  const std::string req = "OPTIONS  HTTP/1.1\r\nHost: a\r\n\r\n";
  for (size_t at = 0; at <= req.size(); ++at) {
    CAPTURE(at);
    fixture f;
    f.send_split(c2s, req, at);
    auto r = f.requests();
    REQUIRE(r.size() == 1);
    CHECK(r[0]->path().empty());
    CHECK(r[0]->http_version() == "HTTP/1.1");
    CHECK(f.extra(requests_empty_target) == 1);
  }
}

TEST_CASE("what stays no request: a method alone, another protocol's version, junk") {
  fixture f;
  f.send(c2s, "OPTIONS\r\nOPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\nDESCRIBE rtsp://cam/s RTSP/1.0\r\n"
              "\r\nFOO bar\r\nFOO / BAR\r\nHELLO world again\r\n"
              "GET / HTTP/1.1\r\n\r\n");
  auto r = f.requests();
  REQUIRE(r.size() == 1);
  CHECK(r[0]->http_version() == "HTTP/1.1");
  CHECK(f.extra(requests_no_version) == 0);
  CHECK(f.extra(requests_bad_version) == 0);
}

TEST_CASE("extension methods: lenient forms need a target that begins like one") {
  fixture f;
  f.send(c2s, "FOO /x\r\n\r\nBAR / HTTP/x\r\n\r\nBAZ HTTP/1.1\r\n\r\n");
  auto r = f.requests();
  REQUIRE(r.size() == 3);
  CHECK(r[0]->method_name() == "FOO");
  CHECK(r[0]->path() == "/x");
  CHECK(r[1]->http_version() == "HTTP/x");
  CHECK(r[2]->path().empty());
  CHECK(f.extra(requests_extension_method) == 3);
}

TEST_CASE("the lenient forms are not taken while resyncing (text of a lost body)") {
  fixture f;
  f.send(c2s, "GET /a HTTP/1.1\r\n\r\n");
  f.send(c2s, "\x01 junk\r\nGET /body-text\r\nPUT it HTTP/x\r\nGET /b HTTP/1.1\r\n\r\n");
  auto r = f.requests();
  REQUIRE(r.size() == 2);
  CHECK(r[1]->path() == "/b");
  CHECK(f.extra(requests_no_version) == 0);
  CHECK(f.extra(requests_bad_version) == 0);
}

TEST_CASE("status lines without a reason phrase") {
  const std::string server = "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"
                             "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n"
                             "HTTP/1.0 200\r\n\r\nbody to close";
  for (size_t chunk : {0, 1, 5}) {
    CAPTURE(chunk);
    fixture g;
    g.send(c2s, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.0\r\n\r\n");
    g.send(s2c, server, chunk);
    CHECK(g.codes() == std::vector<uint32_t>{200, 404, 200});
  }
}

TEST_CASE("the probe of unknown ports stays strict") {
  CHECK(probe("GET / HTTP/1.1\r\n"));
  CHECK_FALSE(probe("GET /\r\n"));
  CHECK_FALSE(probe("GET /path\r\n"));
  CHECK_FALSE(probe("GET / HTTP/1.\r\n"));
  CHECK_FALSE(probe("GET / HTTP/x\r\n"));
  CHECK_FALSE(probe("OPTIONS  HTTP/1.1\r\n"));
  CHECK_FALSE(probe("OPTIONS HTTP/1.1\r\n"));
  CHECK_FALSE(probe("FOO /x\r\n"));
}

TEST_CASE("parse_request_line: the lenient forms and their flags") {
  using namespace metaprobe::http;
  request_line rl;
  REQUIRE(parse_request_line("GET /nover", false, rl));
  CHECK(rl.no_version);
  CHECK(rl.target == "/nover");
  CHECK(rl.version.empty());
  REQUIRE(parse_request_line("GET / HTTP/1.", false, rl));
  CHECK(rl.bad_version);
  CHECK_FALSE(rl.no_version);
  CHECK(rl.version == "HTTP/1.");
  REQUIRE(parse_request_line("OPTIONS  HTTP/1.1", false, rl));
  CHECK(rl.empty_target);
  CHECK_FALSE(rl.bad_version);
  CHECK(rl.target.empty());
  REQUIRE(parse_request_line("GET / HTTP/1.1", false, rl));
  CHECK_FALSE(rl.lenient());
  CHECK_FALSE(parse_request_line("OPTIONS", false, rl));
  CHECK_FALSE(parse_request_line("OPTIONS ", false, rl));
  CHECK_FALSE(parse_request_line("OPTIONS * RTSP/1.0", false, rl));
  CHECK_FALSE(parse_request_line("INVITE sip:a@b SIP/2.0", false, rl));
  CHECK_FALSE(parse_request_line("FOO bar", false, rl));
  CHECK_FALSE(parse_request_line("FOO / BAR", false, rl));
  CHECK_FALSE(parse_request_line("FOO HTTP/x", false, rl));
}

TEST_CASE("the new counters are named in the registry, index for index") {
  const protocol_entry e = http_protocol_entry();
  REQUIRE(e.extra_counters.size() == http_counter_count);
  CHECK(std::string(e.extra_counters[requests_no_version]) == "requests_no_version");
  CHECK(std::string(e.extra_counters[requests_bad_version]) == "requests_bad_version");
  CHECK(std::string(e.extra_counters[requests_empty_target]) == "requests_empty_target");
  CHECK(std::string(e.extra_counters[responses_no_status_line]) == "responses_no_status_line");
  CHECK(std::string(e.extra_counters[ws_gap_failures]) == "ws_gap_failures");
}
