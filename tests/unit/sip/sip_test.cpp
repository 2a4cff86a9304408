// SPDX-License-Identifier: Apache-2.0
// Unit tests of the SIP parser (datagram and stream framing, fields, limits).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "parsers/sip/sip_message.hpp"
#include "parsers/sip/sip_parser.hpp"

using namespace metaprobe;

namespace {

constexpr auto c2s = direction::client_to_server;
constexpr auto s2c = direction::server_to_client;

const std::string register_msg =
  "REGISTER sip:10.192.60.4 SIP/2.0\r\n"
  "Via: SIP/2.0/UDP 10.231.142.84:5060;branch=z9hG4bK-41c244;rport\r\n"
  "From: <sip:26841945@10.192.60.4>;tag=c085d8\r\n"
  "To: <sip:26841945@10.192.60.4>\r\n"
  "Call-ID: c15740-ae78e54-13c4-38\r\n"
  "CSeq: 28715 REGISTER\r\n"
  "User-Agent: Phone/1.0\r\n"
  "Content-Length: 0\r\n"
  "\r\n";

const std::string sdp_body = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n";

std::string invite_compact() {
  return "INVITE sip:bob@example.com SIP/2.0\r\n"
         "v: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n"
         "v: SIP/2.0/TCP [2001:db8::9]:5070;branch=x, SIP/2.0/UDP proxy.example.net\r\n"
         "f: \"Alice <A>\" <sip:alice@example.com;transport=udp>;tag=1928301774\r\n"
         "t: Bob <sip:bob@example.com>\r\n"
         "i: a84b4c76e66710@pc33.example.com\r\n"
         "CSeq: 314159 INVITE\r\n"
         "c: application/sdp\r\n"
         "l: " + std::to_string(sdp_body.size()) + "\r\n"
         "\r\n" + sdp_body;
}

const std::string ok_response =
  "SIP/2.0 200 OK\r\n"
  "Via: SIP/2.0/UDP 10.231.142.84:5060;branch=z9hG4bK-41c244;rport=5060\r\n"
  "From: <sip:26841945@10.192.60.4>;tag=c085d8\r\n"
  "To: <sip:26841945@10.192.60.4>;tag=ccvjxkoy\r\n"
  "Call-ID: c15740-ae78e54-13c4-38\r\n"
  "CSeq: 28716 REGISTER\r\n"
  "Server: Registrar\r\n"
  "Content-Length: 0\r\n"
  "\r\n";

struct fixture {
  parser_options opts;
  parser_counters counters;
  record_sink out;
  uint32_t seq[2] = {1000, 5000};
  std::unique_ptr<stream_parser> stream;
  std::unique_ptr<datagram_parser> dgram;

  fixture() { reset(); }
  void reset() {
    stream = make_sip_stream_parser(opts, counters);
    dgram = make_sip_datagram_parser(opts, counters);
  }
  void datagram(direction d, const std::string& data) {
    dgram->deliver(d, reinterpret_cast<const uint8_t*>(data.data()), data.size(), 7, out);
  }
  void send(direction d, const std::string& data, size_t chunk = 0) {
    const size_t step = chunk ? chunk : data.size();
    for (size_t i = 0; i < data.size(); i += step) {
      const size_t n = std::min(step, data.size() - i);
      stream->deliver(d, reinterpret_cast<const uint8_t*>(data.data() + i), n, 9,
                      seq[static_cast<int>(d)], out);
      seq[static_cast<int>(d)] += static_cast<uint32_t>(n);
    }
  }
  void lose(direction d, size_t n) {
    stream->gap(d, n);
    seq[static_cast<int>(d)] += static_cast<uint32_t>(n);
  }
  const v1::Sip& sip(size_t i) const { return out.at(i).record.sip(); }
  std::vector<std::string> codes() const {
    std::vector<std::string> v;
    for (const auto& r : out)
      v.push_back(r.record.sip().msg_code());
    return v;
  }
};

bool probe(const std::string& s) {
  return sip_probe(reinterpret_cast<const uint8_t*>(s.data()), s.size(), c2s);
}

} // namespace

TEST_CASE("sip probe: request and status lines, not HTTP") {
  CHECK(probe(register_msg));
  CHECK(probe(ok_response));
  CHECK(probe("OPTIONS sip:100@1.1.1.1 SIP/2.0\r\n"));
  CHECK(probe("\r\n\r\nINVITE sip:a@b SIP/2.0\r\n"));
  CHECK(probe("INVITE sip:bob@exa"));           // partial line
  CHECK(probe("SIP/2.0 180 Ringing"));          // partial status line
  CHECK_FALSE(probe("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK_FALSE(probe("HTTP/1.1 200 OK\r\n"));
  CHECK_FALSE(probe("INVITE sip:a@b HTTP/1.1\r\n"));
  CHECK_FALSE(probe("SIP/2.0 2000 OK\r\n"));
  CHECK_FALSE(probe("\x16\x03\x01\x00\x10garbage"));
  CHECK_FALSE(probe("short"));
}

TEST_CASE("sip message helpers") {
  CHECK(sip::address_uri("<sip:a@b>;tag=1") == "sip:a@b");
  CHECK(sip::address_uri("sip:a@b;tag=1") == "sip:a@b");
  CHECK(sip::address_uri("\"x <y>\" <sips:c@d;ob>") == "sips:c@d;ob");
  CHECK(sip::address_uri("  \"only a name\"  ") == "");
  CHECK(sip::address_uri("Bob <sip:bob@x") == "sip:bob@x");
  CHECK(sip::cseq_method("1 INVITE") == "INVITE");
  CHECK(sip::cseq_method("  7   ACK ") == "ACK");
  CHECK(sip::cseq_method("7") == "");
  CHECK(sip::classify_header("F") == sip::header_id::from);
  CHECK(sip::classify_header("CALL-ID") == sip::header_id::call_id);
  CHECK(sip::classify_header("x") == sip::header_id::other);
  CHECK(sip::is_sip_version("sip/2.0"));
  CHECK_FALSE(sip::is_sip_version("SIP/2"));
  std::vector<std::string> hosts;
  const size_t n = sip::for_each_via_host(
    "SIP/2.0/UDP a.example:5060;branch=1, SIP / 2.0 / TCP [::1]:9;x=\"q,r\", bogus", 8,
    [&](std::string_view h) { hosts.emplace_back(h); });
  CHECK(n == 2);
  CHECK(hosts == std::vector<std::string>{"a.example", "::1"});
}

TEST_CASE("sip datagram: request fields") {
  fixture f;
  f.datagram(c2s, register_msg);
  REQUIRE(f.out.size() == 1);
  const auto& s = f.sip(0);
  CHECK(s.msg_code() == "REGISTER");
  CHECK(s.status_code() == 0);
  CHECK(s.uri() == "sip:10.192.60.4");
  CHECK(s.from() == "sip:26841945@10.192.60.4");
  CHECK(s.to() == "sip:26841945@10.192.60.4");
  CHECK(s.callid() == "c15740-ae78e54-13c4-38");
  CHECK(s.uagent() == "Phone/1.0");
  CHECK(s.ctype() == "");
  CHECK(s.gateways() == "10.231.142.84");
  CHECK(f.out[0].dir == c2s);
  CHECK(f.out[0].ts_ns == 7);
  CHECK(f.dgram->state() == parser_state::confirmed);
}

TEST_CASE("sip datagram: response takes the CSeq method") {
  fixture f;
  f.datagram(s2c, ok_response);
  REQUIRE(f.out.size() == 1);
  CHECK(f.sip(0).msg_code() == "REGISTER");
  CHECK(f.sip(0).status_code() == 200);
  CHECK(f.sip(0).uri() == "");
  CHECK(f.sip(0).uagent() == ""); // Server is not User-Agent
  CHECK(f.out[0].dir == s2c);
}

TEST_CASE("sip datagram: compact headers, folding, several Via") {
  fixture f;
  f.datagram(c2s, invite_compact());
  REQUIRE(f.out.size() == 1);
  const auto& s = f.sip(0);
  CHECK(s.msg_code() == "INVITE");
  CHECK(s.uri() == "sip:bob@example.com");
  CHECK(s.from() == "sip:alice@example.com;transport=udp");
  CHECK(s.to() == "sip:bob@example.com");
  CHECK(s.callid() == "a84b4c76e66710@pc33.example.com");
  CHECK(s.ctype() == "application/sdp");
  CHECK(s.gateways() == "pc33.example.com,2001:db8::9,proxy.example.net");

  fixture g;
  g.datagram(c2s, "MESSAGE sip:x@y SIP/2.0\r\nUser-Agent: long\r\n  agent\r\n\tname\r\n"
                  "Call-ID:\r\n abc\r\n\r\n");
  REQUIRE(g.out.size() == 1);
  CHECK(g.sip(0).uagent() == "long agent name");
  CHECK(g.sip(0).callid() == "abc");
}

TEST_CASE("sip datagram: several messages, missing length, no empty line") {
  fixture f;
  f.datagram(c2s, invite_compact() + register_msg + "\r\n");
  CHECK(f.codes() == std::vector<std::string>{"INVITE", "REGISTER"});
  // Without Content-Length the body runs to the end of the datagram.
  f.out.clear();
  f.datagram(c2s, "NOTIFY sip:a@b SIP/2.0\r\nCall-ID: 1\r\n\r\n" + register_msg);
  CHECK(f.codes() == std::vector<std::string>{"NOTIFY"});
  // A datagram cut before the empty line still counts.
  f.out.clear();
  f.datagram(c2s, "BYE sip:a@b SIP/2.0\r\nCall-ID: 2\r\nFrom: <sip:c@d>");
  REQUIRE(f.out.size() == 1);
  CHECK(f.sip(0).from() == "sip:c@d");
  // Keep-alives are no messages.
  f.out.clear();
  f.datagram(c2s, "\r\n\r\n");
  f.datagram(c2s, "     ");
  CHECK(f.out.empty());
  // Space keep-alives never detach a probing flow (sip-calls-udp.pcap).
  fixture g;
  for (int i = 0; i < 10; ++i)
    g.datagram(c2s, "     ");
  g.datagram(c2s, std::string("\0\0\0\0", 4));
  CHECK(g.dgram->state() == parser_state::probing);
  g.datagram(c2s, register_msg);
  CHECK(g.out.size() == 1);
  CHECK(f.dgram->state() == parser_state::confirmed);
}

TEST_CASE("sip datagram: junk detaches while probing, is ignored after") {
  fixture f;
  for (uint32_t i = 0; i + 1 < sip_engine::probe_bad_datagrams; ++i)
    f.datagram(c2s, "\x01\x02 not sip at all\r\n");
  CHECK(f.dgram->state() == parser_state::probing);
  f.datagram(c2s, "jaK\n");
  CHECK(f.dgram->state() == parser_state::violated);
  CHECK(f.counters.violations == 1);
  f.datagram(c2s, register_msg);
  CHECK(f.out.empty());

  fixture g;
  g.datagram(c2s, register_msg);
  for (int i = 0; i < 10; ++i)
    g.datagram(c2s, "garbage\r\n");
  g.datagram(s2c, ok_response);
  CHECK(g.out.size() == 2);
  CHECK(g.dgram->state() == parser_state::confirmed);
}

TEST_CASE("sip stream: split anywhere, several per segment, bodies") {
  const std::string two = invite_compact() + "\r\n" + register_msg;
  for (size_t chunk : {1, 2, 3, 7, 64, 0}) {
    CAPTURE(chunk);
    fixture f;
    f.send(c2s, two, chunk);
    REQUIRE(f.codes() == std::vector<std::string>{"INVITE", "REGISTER"});
    CHECK(f.out[0].tcp_seq == 1000);
    CHECK(f.out[1].tcp_seq == 1000 + invite_compact().size() + 2);
    CHECK(f.stream->state() == parser_state::confirmed);
  }
}

TEST_CASE("sip stream: body with a start line inside is skipped") {
  fixture f;
  const std::string body = "SIP/2.0 200 OK\r\n\r\n";
  f.send(c2s, "MESSAGE sip:a@b SIP/2.0\r\nContent-Length: " + std::to_string(body.size()) +
                "\r\n\r\n" + body + register_msg, 5);
  CHECK(f.codes() == std::vector<std::string>{"MESSAGE", "REGISTER"});
}

TEST_CASE("sip stream: gaps") {
  fixture f;
  const std::string inv = invite_compact();
  const size_t head = inv.size() - sdp_body.size();
  f.send(c2s, inv.substr(0, head + 3));
  f.lose(c2s, 5);                                   // inside the body: only shortens it
  f.send(c2s, inv.substr(head + 8) + register_msg);
  CHECK(f.codes() == std::vector<std::string>{"INVITE", "REGISTER"});

  f.out.clear();
  f.send(c2s, register_msg.substr(0, 20));
  f.lose(c2s, 10);                                  // inside headers: resync
  f.send(c2s, register_msg.substr(30) + ok_response);
  CHECK(f.codes() == std::vector<std::string>{"REGISTER"});
  CHECK(f.sip(0).status_code() == 200);
  CHECK(f.counters.gaps == 2);
}

TEST_CASE("sip stream: junk detaches while probing, resyncs after") {
  fixture f;
  f.send(c2s, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  CHECK(f.stream->state() == parser_state::violated);
  CHECK(f.out.empty());

  fixture g;
  g.send(c2s, register_msg + "junk line\r\nmore junk\r\n\r\n" + register_msg);
  CHECK(g.out.size() == 2);
  CHECK(g.stream->state() == parser_state::confirmed);
}

TEST_CASE("sip limits") {
  fixture f;
  f.opts.max_field = 8;
  f.opts.max_records_per_flow = 2;
  f.reset();
  f.datagram(c2s, register_msg);
  REQUIRE(f.out.size() == 1);
  CHECK(f.sip(0).callid() == "c15740-a");
  CHECK(f.counters.truncated_fields > 0);
  f.datagram(c2s, register_msg);
  f.datagram(c2s, register_msg);
  CHECK(f.out.size() == 2);
  CHECK(f.counters.limit_hits >= 1);

  fixture g;
  g.opts.max_buffered = 100;
  g.reset();
  g.send(c2s, "INVITE sip:a@b SIP/2.0\r\n" + std::string(200, 'X') + ": y\r\n");
  CHECK(g.stream->state() == parser_state::violated);
  CHECK(g.counters.limit_hits == 1);

  fixture h;
  h.opts.max_headers = 2;
  h.opts.max_line = 30;
  h.reset();
  h.send(c2s, "OPTIONS sip:a@b SIP/2.0\r\nCall-ID: 1\r\nX: 1\r\nY: 2\r\nFrom: <sip:z@z>\r\n"
              "User-Agent: " + std::string(100, 'u') + "\r\n"
              "Content-Length: 4\r\n\r\nbody" + register_msg);
  REQUIRE(h.out.size() == 2);
  CHECK(h.sip(0).from() == "");  // past max_headers
  CHECK(h.sip(1).msg_code() == "REGISTER"); // Content-Length still framed
  CHECK(h.counters.limit_hits >= 1);
}

TEST_CASE("sip: invalid UTF-8 becomes U+FFFD") {
  fixture f;
  f.datagram(c2s, "INFO sip:a@b SIP/2.0\r\nUser-Agent: ab\xff\r\n\r\n");
  REQUIRE(f.out.size() == 1);
  CHECK(f.sip(0).uagent() == "ab\xef\xbf\xbd");
}
