// SPDX-License-Identifier: Apache-2.0
// Unit tests of the HTTP/1.x stream parser.
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

  explicit fixture(bool replies = true) {
    opts.http_parse_reply = replies;
    p = make_http_parser(opts, counters);
  }
  void reset() { p = make_http_parser(opts, counters); }
  // Delivers `data` in pieces of `chunk` bytes (0: all at once).
  void send(direction d, const std::string& data, size_t chunk = 0, uint64_t ts = 1) {
    const size_t step = chunk ? chunk : data.size();
    for (size_t i = 0; i < data.size(); i += step) {
      const size_t n = std::min(step, data.size() - i);
      p->deliver(d, reinterpret_cast<const uint8_t*>(data.data() + i), n, ts,
                 seq[static_cast<int>(d)], out);
      seq[static_cast<int>(d)] += static_cast<uint32_t>(n);
    }
  }
  void lose(direction d, size_t n) {
    p->gap(d, n);
    seq[static_cast<int>(d)] += static_cast<uint32_t>(n);
  }
  std::vector<const v1::Clickstream*> requests() const {
    std::vector<const v1::Clickstream*> v;
    for (const auto& r : out)
      if (r.record.has_clickstream())
        v.push_back(&r.record.clickstream());
    return v;
  }
  std::vector<const v1::HttpReply*> replies() const {
    std::vector<const v1::HttpReply*> v;
    for (const auto& r : out)
      if (r.record.has_http_reply())
        v.push_back(&r.record.http_reply());
    return v;
  }
  std::vector<std::string> paths() const {
    std::vector<std::string> v;
    for (const auto* c : requests())
      v.push_back(c->path());
    return v;
  }
};

std::vector<uint32_t> out_seqs(const fixture& f) {
  std::vector<uint32_t> v;
  for (const auto& r : f.out)
    v.push_back(r.tcp_seq);
  return v;
}

std::string get(const std::string& path, const std::string& host = "example.com") {
  return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
}

} // namespace

TEST_CASE("a simple GET yields one clickstream record with every field") {
  fixture f;
  f.send(c2s,
         "GET /index.html?q=1 HTTP/1.1\r\n"
         "Host: www.example.com:8080\r\n"
         "User-Agent: curl/8.0\r\n"
         "Referer: http://ref.example/\r\n"
         "Cookie: a=1\r\n"
         "Accept: */*\r\n\r\n",
         0, 42);
  REQUIRE(f.out.size() == 1);
  const auto& rec = f.out[0];
  CHECK(rec.dir == c2s);
  CHECK(rec.ts_ns == 42);
  CHECK(rec.tcp_seq == 1000);
  const auto& c = rec.record.clickstream();
  CHECK(c.hostname() == "www.example.com:8080");
  CHECK(c.path() == "/index.html?q=1");
  CHECK(c.user_agent() == "curl/8.0");
  CHECK(c.referer() == "http://ref.example/");
  CHECK(c.cookie() == "a=1");
  CHECK(c.host_type() == 1);
  CHECK(c.method() == 1);
  CHECK(c.method_name() == "GET");
  CHECK(c.http_version() == "HTTP/1.1");
  CHECK(c.tcp_sequence() == 1000);
  CHECK_FALSE(c.has_meta());
  CHECK(f.p->state() == parser_state::confirmed);
  CHECK(f.p->flow_host() == "www.example.com:8080");
  CHECK(f.counters.messages == 1);
  CHECK(f.counters.records == 1);
}

TEST_CASE("method codes: GET POST PUT DELETE, others 0 with the name kept") {
  fixture f;
  f.send(c2s, "POST /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
              "PUT /b HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
              "DELETE /c HTTP/1.1\r\n\r\n"
              "PROPFIND /d HTTP/1.1\r\nDepth: 1\r\n\r\n"
              "M-SEARCH * HTTP/1.1\r\n\r\n");
  auto r = f.requests();
  REQUIRE(r.size() == 5);
  CHECK(r[0]->method() == 2);
  CHECK(r[1]->method() == 3);
  CHECK(r[2]->method() == 4);
  CHECK(r[3]->method() == 0);
  CHECK(r[3]->method_name() == "PROPFIND");
  CHECK(r[4]->method_name() == "M-SEARCH");
  CHECK(r[4]->path() == "*");
}

TEST_CASE("every RFC 9110 method token is a request: name as sent, METHOD 0, counted") {
  fixture f;
  const std::string stream = "MKCALENDAR /cal/ HTTP/1.1\r\nHost: h\r\n\r\n"
                             "QUERY /q HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
                             "SOURCE /live.mp3 HTTP/1.0\r\n\r\n"
                             "get /lower HTTP/1.1\r\n\r\n"
                             "X-MS-ENUMATTS /x HTTP/1.1\r\n\r\n"
                             "!#$%&'*+-.^_`|~09az /tchar HTTP/1.1\r\n\r\n"
                             "GET /last HTTP/1.1\r\n\r\n";
  f.send(c2s, stream);
  auto r = f.requests();
  REQUIRE(r.size() == 7);
  const char* names[] = {"MKCALENDAR", "QUERY", "SOURCE", "get", "X-MS-ENUMATTS",
                         "!#$%&'*+-.^_`|~09az", "GET"};
  const char* paths[] = {"/cal/", "/q", "/live.mp3", "/lower", "/x", "/tchar", "/last"};
  for (size_t i = 0; i < 7; ++i) {
    CAPTURE(i);
    CHECK(r[i]->method_name() == names[i]);
    CHECK(r[i]->path() == paths[i]);
    CHECK(r[i]->method() == (i == 6 ? 1u : 0u)); // "get" is not GET (RFC 9110 §9.1)
  }
  CHECK(r[1]->http_version() == "HTTP/1.1");
  CHECK(r[2]->http_version() == "HTTP/1.0");
  CHECK(f.counters.extra[requests_extension_method] == 5);

  // Pipelined, split into two segments at every byte: the same records.
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    CAPTURE(cut);
    fixture g;
    g.send(c2s, stream.substr(0, cut));
    g.send(c2s, stream.substr(cut));
    auto q = g.requests();
    REQUIRE(q.size() == 7);
    for (size_t i = 0; i < 7; ++i)
      CHECK(q[i]->method_name() == names[i]);
    CHECK(out_seqs(g) == out_seqs(f));
  }
}

TEST_CASE("what is no method token gives no request") {
  fixture f;
  f.send(c2s, "(GET) /a HTTP/1.1\r\n\r\n" + std::string(65, 'M') + " /b HTTP/1.1\r\n\r\n"
              "GET\t/c HTTP/1.1\r\n\r\nFOO /d RTSP/1.0\r\n\r\n" + get("/ok"));
  CHECK(f.paths() == std::vector<std::string>{"/ok"});
}

TEST_CASE("the HTTP/2 preface is no request: parsing stops") {
  fixture f;
  f.send(c2s, std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04", 22) + get("/x"));
  CHECK(f.requests().empty());
  CHECK(f.p->state() == parser_state::done);
  CHECK(f.counters.extra[h2_prefaces] == 1);
}

TEST_CASE("header names are case-insensitive, values trimmed, no space needed") {
  fixture f;
  f.send(c2s, "GET / HTTP/1.1\r\nhOsT:wwww.lan:8080\r\nUSER-AGENT:   ua  \t\r\n\r\n");
  auto r = f.requests();
  REQUIRE(r.size() == 1);
  CHECK(r[0]->hostname() == "wwww.lan:8080");
  CHECK(r[0]->user_agent() == "ua");
}

TEST_CASE("several Cookie fields are joined with '; '") {
  fixture f;
  f.send(c2s, "GET / HTTP/1.1\r\nCookie: a=1\r\nHost: h\r\ncookie: b=2\r\nCookie: c=3\r\n\r\n");
  REQUIRE(f.requests().size() == 1);
  CHECK(f.requests()[0]->cookie() == "a=1; b=2; c=3");
}

TEST_CASE("obs-fold continuation lines extend the previous value") {
  fixture f;
  f.send(c2s,
         "GET / HTTP/1.1\r\nUser-Agent: Mozilla/5.0\r\n  (X11;\r\n\tLinux)\r\nHost: h\r\n\r\n");
  REQUIRE(f.requests().size() == 1);
  CHECK(f.requests()[0]->user_agent() == "Mozilla/5.0 (X11; Linux)");
  CHECK(f.requests()[0]->hostname() == "h");
}

TEST_CASE("bare LF line endings are accepted") {
  fixture f;
  f.send(c2s, "GET /lf HTTP/1.0\nHost: lf.example\nUser-Agent: x\n\nGET /two HTTP/1.0\n\n");
  auto r = f.requests();
  REQUIRE(r.size() == 2);
  CHECK(r[0]->hostname() == "lf.example");
  CHECK(r[0]->http_version() == "HTTP/1.0");
  CHECK(r[1]->path() == "/two");
}

TEST_CASE("runs of spaces in the request line are tolerated") {
  fixture f;
  f.send(c2s, "GET      /very_long_uri HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(f.requests().size() == 1);
  CHECK(f.requests()[0]->path() == "/very_long_uri");
  CHECK(f.requests()[0]->http_version() == "HTTP/1.1");
}

TEST_CASE("pipelined requests in one segment get their own sequence numbers") {
  fixture f;
  const std::string a = get("/a"), b = get("/b"), c = get("/c");
  f.send(c2s, a + b + c);
  auto r = f.requests();
  REQUIRE(r.size() == 3);
  CHECK(f.paths() == std::vector<std::string>{"/a", "/b", "/c"});
  CHECK(r[0]->tcp_sequence() == 1000);
  CHECK(r[1]->tcp_sequence() == 1000 + a.size());
  CHECK(r[2]->tcp_sequence() == 1000 + a.size() + b.size());
  CHECK(f.out[1].tcp_seq == 1000 + a.size());
}

// A whole conversation exercising every framing rule; used whole and split.
const std::string client_stream =
  "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
  "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 31\r\n\r\n"
  "GET /fake HTTP/1.1\r\nHost: x\r\n\r\n"
  "POST /3 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
  "5;ext=1\r\nhello\r\n1A\r\nGET /fake2 HTTP/1.1\r\n\r\nxxx\r\n0\r\nTrailer: t\r\n\r\n"
  "HEAD /4 HTTP/1.1\r\nHost: h\r\n\r\n"
  "GET /5 HTTP/1.1\r\nHost: h\r\n\r\n"
  "GET /6 HTTP/1.1\r\nHost: h\r\n\r\n";
const std::string server_stream =
  "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 21\r\n\r\n"
  "HTTP/1.1 999 FAKE\r\n\r\n"
  "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
  "10\r\nHTTP/1.1 500 X\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n"
  "HTTP/1.1 204 No Content\r\n\r\n"
  "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" // HEAD: no body
  "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n"
  "HTTP/1.1 302 Found\r\nLocation: http://else.where/\r\nContent-Length: 0\r\n\r\n";

void check_conversation(const fixture& f) {
  CHECK(f.paths() == std::vector<std::string>{"/1", "/2", "/3", "/4", "/5", "/6"});
  auto rep = f.replies();
  REQUIRE(rep.size() == 6);
  CHECK(rep[0]->result_code() == 200);
  CHECK(rep[0]->content_type() == "text/html");
  CHECK(rep[0]->content_length() == 21);
  CHECK(rep[1]->result_code() == 201);
  CHECK(rep[2]->result_code() == 204);
  CHECK(rep[3]->content_length() == 100000);
  CHECK(rep[4]->result_code() == 304);
  CHECK(rep[5]->result_code() == 302);
  CHECK(rep[5]->location() == "http://else.where/");
  CHECK(f.counters.violations == 0);
}

TEST_CASE("bodies are skipped exactly: Content-Length, chunked, HEAD, 304") {
  fixture f;
  f.send(c2s, client_stream);
  f.send(s2c, server_stream);
  check_conversation(f);
}

TEST_CASE("any split into segments gives the same records") {
  for (size_t chunk : {1, 2, 3, 7, 13, 64}) {
    CAPTURE(chunk);
    fixture f;
    f.send(c2s, client_stream, chunk);
    f.send(s2c, server_stream, chunk);
    check_conversation(f);
  }
}

TEST_CASE("request sequence numbers survive byte-by-byte delivery") {
  fixture f;
  const std::string a = get("/a");
  f.send(c2s, a + get("/b"), 1);
  auto r = f.requests();
  REQUIRE(r.size() == 2);
  CHECK(r[0]->tcp_sequence() == 1000);
  CHECK(r[1]->tcp_sequence() == 1000 + a.size());
}

TEST_CASE("replies are parsed but not emitted when http_parse_reply is off") {
  fixture f(false);
  f.send(c2s, client_stream);
  f.send(s2c, server_stream);
  CHECK(f.replies().empty());
  CHECK(f.paths().size() == 6);
  CHECK(f.counters.messages == 6 + 6);
}

TEST_CASE("Expect: 100-continue: the interim response does not consume the request") {
  fixture f;
  f.send(c2s, "POST /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
  f.send(s2c, "HTTP/1.1 100 Continue\r\n\r\n");
  f.send(c2s, "DATA");
  f.send(c2s, "HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n");
  f.send(s2c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
              "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"
              "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  CHECK(f.paths() == std::vector<std::string>{"/up", "/h"});
  auto rep = f.replies();
  REQUIRE(rep.size() == 4);
  CHECK(rep[0]->result_code() == 100);
  CHECK(rep[1]->result_code() == 200);
  CHECK(rep[2]->result_code() == 200);
  CHECK(rep[3]->result_code() == 404); // HEAD response had no body
}

TEST_CASE("a response without length runs to the end of the connection") {
  fixture f;
  f.send(c2s, get("/"));
  f.send(s2c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbody\r\nHTTP/1.1 200 OK\r\n\r\n");
  CHECK(f.replies().size() == 1);
  CHECK(f.replies()[0]->content_length() == 0);
}

TEST_CASE("CONNECT 200 turns the flow into a tunnel: parsing stops") {
  fixture f;
  f.send(c2s, "CONNECT apache.org:443 HTTP/1.1\r\nHost: apache.org:443\r\n\r\n");
  f.send(s2c, "HTTP/1.0 200 Connection Established\r\n\r\n");
  CHECK(f.p->state() == parser_state::done);
  f.send(c2s, get("/inside-tunnel"));
  auto r = f.requests();
  REQUIRE(r.size() == 1);
  CHECK(r[0]->method_name() == "CONNECT");
  CHECK(r[0]->path() == "apache.org:443");
  CHECK(r[0]->method() == 0);
}

TEST_CASE("CONNECT refused: the flow stays HTTP") {
  fixture f;
  f.send(c2s, "CONNECT a:443 HTTP/1.1\r\n\r\n");
  f.send(s2c, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 3\r\n\r\nno!");
  f.send(c2s, "CONNECT a:443 HTTP/1.1\r\nProxy-Authorization: x\r\n\r\n");
  CHECK(f.p->state() == parser_state::confirmed);
  CHECK(f.requests().size() == 2);
}

TEST_CASE("101 Switching Protocols stops parsing") {
  fixture f;
  f.send(c2s, "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
  f.send(s2c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
  CHECK(f.p->state() == parser_state::done);
  f.send(c2s, get("/not-http"));
  CHECK(f.requests().size() == 1);
}

TEST_CASE("garbage between requests: resync at the next request line") {
  fixture f;
  f.send(c2s, get("/a") + "\x01\x02 binary junk\r\nmore junk without method\r\n" + get("/b"));
  f.send(c2s, "\x16\x03\x01 no newline here ");
  f.send(c2s, "still junk\r\n" + get("/c"));
  CHECK(f.paths() == std::vector<std::string>{"/a", "/b", "/c"});
  CHECK(f.p->state() == parser_state::confirmed);
}

TEST_CASE("resync: a message at a segment start ends the skipped binary line") {
  fixture f;
  f.send(c2s, get("/a") + get("/b"));
  f.lose(s2c, 500); // the first response's head is lost
  f.send(s2c, "\xff\xd8 jpeg tail without newline");
  f.send(s2c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  REQUIRE(f.replies().size() == 1);
  CHECK(f.replies()[0]->result_code() == 200);
}

TEST_CASE("a response side recovers after a malformed status line") {
  fixture f;
  f.send(c2s, get("/a") + get("/b"));
  f.send(s2c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nXTTP/1.1 junk\r\n"
              "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  auto rep = f.replies();
  REQUIRE(rep.size() == 2);
  CHECK(rep[1]->result_code() == 404);
}

TEST_CASE("a flow that never looks like HTTP is detached after max_buffered bytes") {
  fixture f;
  f.opts.max_buffered = 1000;
  f.reset();
  std::string junk;
  for (int i = 0; i < 200; ++i)
    junk += "SSH-2.0-OpenSSH\r\n";
  f.send(c2s, junk);
  CHECK(f.p->state() == parser_state::violated);
  CHECK(f.counters.violations == 1);
  f.send(c2s, get("/late"));
  CHECK(f.out.empty());
}

TEST_CASE("binary data without newlines while probing also detaches") {
  fixture f;
  f.opts.max_buffered = 4096;
  f.reset();
  f.send(c2s, std::string(20000, '\x17'));
  CHECK(f.p->state() == parser_state::violated);
}

TEST_CASE("requests seen in the server-to-client direction still parse (reversed flow)") {
  fixture f;
  f.send(s2c, get("/rev", "rev.example"));
  f.send(c2s, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
  REQUIRE(f.requests().size() == 1);
  CHECK(f.out[0].dir == s2c);
  CHECK(f.replies().size() == 1);
}

TEST_CASE("gaps: inside a body only shorten it") {
  fixture f;
  f.send(c2s, "POST /a HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123456789");
  f.lose(c2s, 80);
  f.send(c2s, "0123456789" + get("/b"));
  CHECK(f.paths() == std::vector<std::string>{"/a", "/b"});
  CHECK(f.counters.gaps == 1);
}

TEST_CASE("gaps: ending exactly at the body end, and past it") {
  fixture f;
  f.send(c2s, "POST /a HTTP/1.1\r\nContent-Length: 100\r\n\r\n");
  f.lose(c2s, 100);
  f.send(c2s, get("/b"));
  f.send(c2s, "POST /c HTTP/1.1\r\nContent-Length: 10\r\n\r\n");
  f.lose(c2s, 10 + 25); // the body and the start of the next request
  f.send(c2s, "ost: lost\r\n\r\n" + get("/d"));
  CHECK(f.paths() == std::vector<std::string>{"/a", "/b", "/c", "/d"});
}

TEST_CASE("gaps: inside a header block drop the partial request") {
  fixture f;
  f.send(c2s, "GET /lost HTTP/1.1\r\nHost: h\r\nUser-Ag");
  f.lose(c2s, 30);
  f.send(c2s, "rest of headers\r\n\r\n" + get("/next"));
  CHECK(f.paths() == std::vector<std::string>{"/next"});
}

TEST_CASE("gaps: inside chunked data and in a read-to-close body") {
  fixture f;
  f.send(c2s, "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n0123");
  f.lose(c2s, 20);
  f.send(c2s, "456789ab\r\n0\r\n\r\n" + get("/b"));
  f.send(s2c, "HTTP/1.0 200 OK\r\n\r\nabc");
  f.lose(s2c, 1000);
  f.send(s2c, "def");
  CHECK(f.paths() == std::vector<std::string>{"/a", "/b"});
  CHECK(f.replies().size() == 1);
}

TEST_CASE("max_field: values are cut on a UTF-8 boundary and counted") {
  fixture f;
  f.opts.max_field = 10;
  f.reset();
  // "/" + 4 x U+00E9 (2 bytes each) + "xyz": the cut falls inside a character.
  f.send(c2s, "GET /\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9xyz HTTP/1.1\r\nHost: short\r\n\r\n");
  REQUIRE(f.requests().size() == 1);
  CHECK(f.requests()[0]->path() == "/\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9x");
  CHECK(f.requests()[0]->hostname() == "short");
  CHECK(f.counters.truncated_fields == 1);

  fixture g;
  g.opts.max_field = 4;
  g.reset();
  g.send(c2s, "GET /\xc3\xa9\xc3\xa9 HTTP/1.1\r\n\r\n");
  REQUIRE(g.requests().size() == 1);
  CHECK(g.requests()[0]->path() == "/\xc3\xa9");
}

TEST_CASE("invalid UTF-8 becomes U+FFFD") {
  fixture f;
  f.send(c2s, "GET /a\xff\xc3z\xe2\x82y\xc0\xaf\xed\xa0\x80\x80\x80 HTTP/1.1\r\n"
              "Cookie: x=\x80\r\n\r\n");
  REQUIRE(f.requests().size() == 1);
  const std::string r = "\xef\xbf\xbd";
  CHECK(f.requests()[0]->path() == "/a" + r + r + "z" + r + "y" + r + r + r + r);
  CHECK(f.requests()[0]->cookie() == "x=\xef\xbf\xbd");
}

TEST_CASE("max_line: an over-long request line is cut but still reported") {
  fixture f;
  f.opts.max_line = 64;
  f.reset();
  const std::string long_path = "/" + std::string(200, 'a');
  f.send(c2s, "GET " + long_path + " HTTP/1.1\r\nHost: h\r\n\r\n" + get("/next"), 7);
  auto r = f.requests();
  REQUIRE(r.size() == 2);
  CHECK(r[0]->path() == long_path.substr(0, 60));
  CHECK(r[0]->hostname() == "h");
  CHECK(r[1]->path() == "/next");
  CHECK(f.counters.limit_hits >= 1);
}

TEST_CASE("max_headers: extra headers only feed framing") {
  fixture f;
  f.opts.max_headers = 2;
  f.reset();
  f.send(c2s, "POST / HTTP/1.1\r\nA: 1\r\nB: 2\r\nHost: late\r\nContent-Length: 3\r\n\r\nabc" +
                get("/next"));
  auto r = f.requests();
  REQUIRE(r.size() == 2);
  CHECK(r[0]->hostname().empty());
  CHECK(r[1]->path() == "/next");
  CHECK(f.counters.limit_hits == 1);
}

TEST_CASE("max_buffered bounds a header block") {
  fixture f;
  f.opts.max_buffered = 200;
  f.reset();
  std::string req = "GET /big HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 20; ++i)
    req += "X-Pad: 0123456789\r\n";
  f.send(c2s, req + "\r\n" + get("/next"));
  CHECK(f.paths() == std::vector<std::string>{"/big", "/next"});
  CHECK(f.counters.limit_hits == 1);
}

TEST_CASE("max_records_per_flow caps the records of one flow") {
  fixture f;
  f.opts.max_records_per_flow = 2;
  f.reset();
  f.send(c2s, get("/1") + get("/2") + get("/3"));
  CHECK(f.out.size() == 2);
  CHECK(f.counters.limit_hits == 1);
}

TEST_CASE("finish() reports a request whose header block never ended") {
  fixture f;
  f.send(c2s, "GET /partial HTTP/1.1\r\nHost: part.example\r\nCookie: a=b");
  CHECK(f.out.empty());
  f.p->finish(99, f.out);
  REQUIRE(f.requests().size() == 1);
  CHECK(f.requests()[0]->cookie() == "a=b");
  CHECK(f.out[0].ts_ns == 99);
}

TEST_CASE("flow_host keeps the first Host") {
  fixture f;
  f.send(c2s, get("/", "first.example") + get("/", "second.example"));
  CHECK(f.p->flow_host() == "first.example");
}

TEST_CASE("probe: request lines and status lines, not SIP/RTSP or junk") {
  auto probe = [](const std::string& s) {
    return http_probe(reinterpret_cast<const uint8_t*>(s.data()), s.size(), c2s);
  };
  CHECK(probe("GET / HTTP/1.1\r\n"));
  CHECK(probe("POST /upload"));
  CHECK(probe("PROPFIND /dav/ HTTP/1.1\r\nDepth: 1\r\n"));
  CHECK(probe("HTTP/1.1 200 OK\r\n"));
  CHECK(probe("HTTP/1.0 404"));
  CHECK_FALSE(probe("OPTIONS sip:bob@example.com SIP/2.0\r\n"));
  CHECK_FALSE(probe("OPTIONS rtsp://cam/stream RTSP/1.0\r\n"));
  CHECK_FALSE(probe("OPTIONS rtsp://cam/stream"));
  CHECK_FALSE(probe("INVITE sip:bob@example.com SIP/2.0\r\n"));
  CHECK_FALSE(probe("SIP/2.0 200 OK\r\n"));
  CHECK_FALSE(probe("HTTP/2.0 200\r\n"));
  // Any other method token: only a whole line, token SP target SP HTTP/1.x.
  CHECK(probe("GETX / HTTP/1.1\r\n"));
  CHECK(probe("get / HTTP/1.1\r\n"));
  CHECK(probe("MKCALENDAR /cal/ HTTP/1.1\r\n"));
  CHECK(probe("QUERY /search HTTP/1.1\r\nHost: h\r\n"));
  CHECK(probe("X-MS-ENUMATTS http://h/x HTTP/1.0\n"));
  CHECK(probe("FOO h.example:443 HTTP/1.1\r\n"));
  CHECK_FALSE(probe("GETX / HTTP/1.1"));         // line not complete
  CHECK_FALSE(probe("GETX /"));
  CHECK_FALSE(probe("GETX / HTTP/2.0\r\n"));     // strict version
  CHECK_FALSE(probe("GETX / HTTP/1.2\r\n"));
  CHECK_FALSE(probe("GETX / http/1.1\r\n"));
  CHECK_FALSE(probe("GETX  / HTTP/1.1\r\n"));    // single spaces only
  CHECK_FALSE(probe("GETX / HTTP/1.1 \r\n"));
  CHECK_FALSE(probe("220 ready for HTTP/1.1\r\n")); // four words
  CHECK_FALSE(probe("NICK bar HTTP/1.1\r\n"));   // target of no request-target form
  CHECK_FALSE(probe("DESCRIBE rtsp://cam/s RTSP/1.0\r\n"));
  CHECK_FALSE(probe("REGISTER sip:example.com SIP/2.0\r\n"));
  CHECK_FALSE(probe("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
  CHECK_FALSE(probe("(GET) / HTTP/1.1\r\n"));    // not a token
  CHECK_FALSE(probe(std::string(65, 'A') + " / HTTP/1.1\r\n")); // over max_method
  CHECK(probe(std::string(64, 'A') + " / HTTP/1.1\r\n"));
  CHECK_FALSE(probe("\x16\x03\x01\x02\x00\x01"));
  CHECK_FALSE(probe("GE"));
  CHECK_FALSE(http_probe(nullptr, 0, c2s));
}

TEST_CASE("registry entry") {
  const protocol_entry e = http_protocol_entry();
  CHECK(e.id == app_protocol::http);
  CHECK(std::string(e.name) == "http");
  CHECK((e.make_stream != nullptr));
  CHECK((e.make_datagram != nullptr));
  CHECK(e.udp_ports == std::vector<uint16_t>{1900});
  CHECK((e.probe != nullptr));
  CHECK(std::find(e.tcp_ports.begin(), e.tcp_ports.end(), 80) != e.tcp_ports.end());
  CHECK(std::find(e.tcp_ports.begin(), e.tcp_ports.end(), 3128) != e.tcp_ports.end());
}

TEST_CASE("message helpers") {
  using namespace metaprobe::http;
  uint64_t n = 0;
  CHECK(parse_chunk_size("1a;name=val", n));
  CHECK(n == 26);
  CHECK(parse_chunk_size("0", n));
  CHECK(n == 0);
  CHECK_FALSE(parse_chunk_size("zz", n));
  CHECK_FALSE(parse_chunk_size("1 2", n));
  CHECK_FALSE(parse_chunk_size("ffffffffffffffffff", n));
  CHECK(is_chunked("gzip, Chunked"));
  CHECK_FALSE(is_chunked("chunked, gzip"));
  CHECK(parse_content_length("123", n));
  CHECK(n == 123);
  CHECK_FALSE(parse_content_length("12a", n));
  CHECK_FALSE(parse_content_length("", n));
  status_line sl;
  CHECK(parse_status_line("HTTP/1.1 200", sl));
  CHECK(sl.code == 200);
  CHECK(parse_status_line("HTTP/1.1 404 Not Found", sl));
  CHECK(sl.phrase == "Not Found");
  CHECK_FALSE(parse_status_line("HTTP/1.1 2000 OK", sl));
  CHECK_FALSE(parse_status_line("HTTP/1.1 OK", sl));
  request_line rl;
  CHECK(parse_request_line("GET /nover", false, rl)); // HTTP/0.9
  CHECK(rl.no_version);
  CHECK(parse_request_line("GET /a;cat /etc/passwd|?x HTTP/1.1", false, rl));
  CHECK(rl.target == "/a;cat");
  CHECK(rl.version == "HTTP/1.1");
}

TEST_CASE("UPnP event methods are framed but not reported") {
  fixture f;
  f.send(c2s, "SUBSCRIBE /evt HTTP/1.1\r\nHost: 10.0.0.1:5005\r\nContent-Length: 4\r\n\r\nGET "
              "NOTIFY /x HTTP/1.1\r\nHost: h\r\n\r\n" + get("/real"));
  CHECK(f.paths() == std::vector<std::string>{"/real"});
  CHECK(f.counters.messages == 3);
}

TEST_CASE("datagram mode: one message per datagram (SSDP)") {
  parser_options opts;
  opts.http_parse_reply = true;
  parser_counters counters;
  auto p = make_http_datagram_parser(opts, counters);
  record_sink out;
  auto send = [&](direction d, const std::string& s) {
    p->deliver(d, reinterpret_cast<const uint8_t*>(s.data()), s.size(), 1, out);
  };
  send(c2s, "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n"
            "MX: 1\r\nST: ssdp:all\r\n\r\n");
  send(c2s, "M-SEARCH * HTTP/1.1\r\nHOST: [FF02::C]:1900\r\nST: ssdp:all"); // no final CRLF
  send(c2s, "\x01\x02 not http at all");
  send(s2c, "HTTP/1.1 200 OK\r\nLOCATION: http://10.0.0.2:80/desc.xml\r\nCONTENT-LENGTH: 5\r\n\r\n"
            "GET / HTTP/1.1\r\n\r\n");
  send(c2s, "NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n");
  REQUIRE(out.size() == 3);
  CHECK(out[0].record.clickstream().method_name() == "M-SEARCH");
  CHECK(out[0].record.clickstream().hostname() == "239.255.255.250:1900");
  CHECK(out[0].record.clickstream().path() == "*");
  CHECK(out[0].tcp_seq == 0);
  CHECK(out[1].record.clickstream().hostname() == "[FF02::C]:1900");
  CHECK(out[2].record.http_reply().location() == "http://10.0.0.2:80/desc.xml");
  CHECK(p->state() == parser_state::confirmed);
  CHECK(p->flow_host() == "239.255.255.250:1900");
  CHECK(counters.limit_hits == 0);
}
