// SPDX-License-Identifier: Apache-2.0
// Unit tests of the WebSocket de-framer (RFC 6455) and of SIP over
// WebSocket (RFC 7118) after an HTTP/1.1 Upgrade.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "parsers/http/http_parser.hpp"
#include "parsers/sip/sip_parser.hpp"
#include "parsers/sip/sip_ws.hpp"
#include "parsers/websocket/ws_frame.hpp"
#include "parsers/websocket/ws_handshake.hpp"
#include "ws_stream.hpp"

using namespace metaprobe;
using metaprobe::test::client_frame;
using metaprobe::test::frame_spec;
using metaprobe::test::server_frame;
using metaprobe::test::ws_frame;
namespace ws = metaprobe::websocket;

namespace {

constexpr auto c2s = direction::client_to_server;
constexpr auto s2c = direction::server_to_client;

// Collects what a de-framer delivers.
struct collector : ws::message_handler {
  std::vector<std::pair<ws::opcode, std::string>> messages;
  std::vector<ws::opcode> controls;
  void on_message(ws::opcode op, std::string_view payload) override {
    messages.emplace_back(op, std::string(payload));
  }
  void on_control(ws::opcode op) override { controls.push_back(op); }
};

struct deframe {
  ws::counters c;
  ws::deframer d;
  collector h;
  explicit deframe(size_t max_message = 65536) : d(max_message, c) {}
  void feed(const std::string& s, size_t chunk = 0) {
    const size_t step = chunk ? chunk : (s.empty() ? 1 : s.size());
    for (size_t i = 0; i < s.size(); i += step)
      d.feed(reinterpret_cast<const uint8_t*>(s.data() + i), std::min(step, s.size() - i), h);
  }
  std::vector<std::string> texts() const {
    std::vector<std::string> v;
    for (const auto& m : h.messages)
      v.push_back(m.second);
    return v;
  }
};

// What JsSIP (tryit.jssip.net, a browser) sends to open the WebSocket.
const std::string jssip_upgrade =
  "GET / HTTP/1.1\r\n"
  "Host: sip-ws.example.com:8080\r\n"
  "Connection: Upgrade\r\n"
  "Pragma: no-cache\r\n"
  "Cache-Control: no-cache\r\n"
  "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0\r\n"
  "Upgrade: websocket\r\n"
  "Origin: https://tryit.jssip.net\r\n"
  "Sec-WebSocket-Version: 13\r\n"
  "Accept-Encoding: gzip, deflate\r\n"
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
  "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
  "Sec-WebSocket-Protocol: sip\r\n"
  "\r\n";

// What Kamailio's websocket module answers (no extension accepted).
const std::string kamailio_101 =
  "HTTP/1.1 101 Switching Protocols\r\n"
  "Sec-WebSocket-Protocol: sip\r\n"
  "Upgrade: websocket\r\n"
  "Connection: upgrade\r\n"
  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
  "Server: kamailio (5.6.4 (x86_64/linux))\r\n"
  "Content-Length: 0\r\n"
  "\r\n";

// RFC 7118 §B.1 REGISTER and its 200 OK (no Content-Length: the WebSocket
// message delimits the SIP message).
const std::string sip_register =
  "REGISTER sip:proxy.example.com SIP/2.0\r\n"
  "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks\r\n"
  "From: sip:alice@example.com;tag=65bnmj.34asd\r\n"
  "To: sip:alice@example.com\r\n"
  "Call-ID: aiuy7k9njasd\r\n"
  "CSeq: 1 REGISTER\r\n"
  "Max-Forwards: 70\r\n"
  "Supported: path, outbound, gruu\r\n"
  "User-Agent: JsSIP 3.10.0\r\n"
  "Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws>;reg-id=1"
  ";+sip.instance=\"<urn:uuid:f81-7dec-14a06cf1>\"\r\n"
  "\r\n";

const std::string sip_200 =
  "SIP/2.0 200 OK\r\n"
  "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks;rport=56214"
  ";received=192.0.2.10\r\n"
  "From: sip:alice@example.com;tag=65bnmj.34asd\r\n"
  "To: sip:alice@example.com;tag=12isjljn8\r\n"
  "Call-ID: aiuy7k9njasd\r\n"
  "CSeq: 1 REGISTER\r\n"
  "Supported: outbound, gruu\r\n"
  "Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws>;reg-id=1;expires=3600\r\n"
  "Server: kamailio (5.6.4 (x86_64/linux))\r\n"
  "Content-Length: 0\r\n"
  "\r\n";

const std::string sdp =
  "v=0\r\no=- 4242 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
  "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";

const std::string sip_invite =
  "INVITE sip:bob@example.com SIP/2.0\r\n"
  "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK776asdhds\r\n"
  "Max-Forwards: 69\r\n"
  "To: <sip:bob@example.com>\r\n"
  "From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n"
  "Call-ID: a84b4c76e66710@df7jal23ls0d.invalid\r\n"
  "CSeq: 314159 INVITE\r\n"
  "Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws;ob>\r\n"
  "Content-Type: application/sdp\r\n"
  "Content-Length: " + std::to_string(sdp.size()) + "\r\n"
  "\r\n" + sdp;

// A SIP/HTTP flow fed to the HTTP parser, both directions.
struct flow {
  parser_options opts;
  parser_counters counters;
  std::unique_ptr<stream_parser> p;
  record_sink out;
  uint32_t seq[2] = {1000, 9000};

  explicit flow(bool replies = false, size_t max_buffered = 65536) {
    opts.http_parse_reply = replies;
    opts.max_buffered = max_buffered;
    p = make_http_parser(opts, counters);
  }
  void send(direction d, const std::string& data, size_t chunk = 0) {
    const size_t step = chunk ? chunk : (data.empty() ? 1 : data.size());
    for (size_t i = 0; i < data.size(); i += step) {
      const size_t n = std::min(step, data.size() - i);
      p->deliver(d, reinterpret_cast<const uint8_t*>(data.data() + i), n, 7,
                 seq[static_cast<int>(d)], out);
      seq[static_cast<int>(d)] += static_cast<uint32_t>(n);
    }
  }
  std::vector<const v1::Sip*> sips() const {
    std::vector<const v1::Sip*> v;
    for (const auto& r : out)
      if (r.record.has_sip())
        v.push_back(&r.record.sip());
    return v;
  }
  size_t clicks() const {
    size_t n = 0;
    for (const auto& r : out)
      n += r.record.has_clickstream();
    return n;
  }
  uint64_t extra(http_counter c) const { return counters.extra[c]; }
};

// The records the SIP parser gives for the same messages over TCP.
std::vector<std::string> sip_over_tcp(const std::vector<std::pair<direction, std::string>>& msgs) {
  parser_options opts;
  parser_counters counters;
  auto p = make_sip_stream_parser(opts, counters);
  record_sink out;
  for (const auto& [d, m] : msgs)
    p->deliver(d, reinterpret_cast<const uint8_t*>(m.data()), m.size(), 7, 0, out);
  std::vector<std::string> v;
  for (auto& r : out) {
    r.record.mutable_sip()->clear_meta();
    v.push_back(r.record.SerializeAsString());
  }
  return v;
}

std::vector<std::string> serialized_sips(const record_sink& out,
                                         std::vector<direction>* dirs = nullptr) {
  std::vector<std::string> v;
  for (const auto& r : out)
    if (r.record.has_sip()) {
      v.push_back(r.record.SerializeAsString());
      if (dirs)
        dirs->push_back(r.dir);
    }
  return v;
}

} // namespace

// ---------------------------------------------------------------- de-framer

TEST_CASE("deframer: unmasked server frame and masked client frame") {
  deframe f;
  f.feed(server_frame("hello") + client_frame("world", 0x2));
  REQUIRE(f.h.messages.size() == 2);
  CHECK(f.h.messages[0].first == ws::opcode::text);
  CHECK(f.h.messages[0].second == "hello");
  CHECK(f.h.messages[1].first == ws::opcode::binary);
  CHECK(f.h.messages[1].second == "world");
  CHECK(f.c.frames == 2);
  CHECK(f.c.messages == 2);
  CHECK_FALSE(f.d.failed());
}

TEST_CASE("deframer: 7-, 16- and 64-bit lengths, also non-minimal ones") {
  const std::string small(125, 'a'), mid(126, 'b'), big(70000, 'c');
  deframe f(100000);
  frame_spec masked;
  masked.masked = true;
  f.feed(ws_frame(small, masked) + ws_frame(mid, masked) + ws_frame(big, masked));
  frame_spec long_form;
  long_form.length_form = 64;
  f.feed(ws_frame("x", long_form));
  long_form.length_form = 16;
  f.feed(ws_frame("y", long_form));
  CHECK(f.texts() == std::vector<std::string>{small, mid, big, "x", "y"});
  CHECK(f.c.protocol_errors == 0);
}

TEST_CASE("deframer: a fragmented message with ping and pong between the fragments") {
  const std::string stream = client_frame("REGISTER sip:a", 0x1, false) +
                             client_frame("", 0x9) + // ping
                             client_frame(" SIP/2.0", 0x0, false) +
                             client_frame("", 0xA) + // pong
                             client_frame("\r\n\r\n", 0x0, true);
  for (size_t chunk : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{7}}) {
    CAPTURE(chunk);
    deframe f;
    f.feed(stream, chunk);
    CHECK(f.texts() == std::vector<std::string>{"REGISTER sip:a SIP/2.0\r\n\r\n"});
    CHECK(f.h.controls == std::vector<ws::opcode>{ws::opcode::ping, ws::opcode::pong});
    CHECK(f.c.frames == 5);
    CHECK(f.c.control_frames == 2);
  }
}

TEST_CASE("deframer: every split of a frame into two deliveries gives the message") {
  const std::string frame = ws_frame(std::string(300, 'z'), [] {
    frame_spec s;
    s.masked = true;
    return s;
  }());
  for (size_t cut = 0; cut <= frame.size(); ++cut) {
    CAPTURE(cut);
    deframe f;
    f.feed(frame.substr(0, cut));
    f.feed(frame.substr(cut));
    REQUIRE(f.h.messages.size() == 1);
    CHECK(f.h.messages[0].second == std::string(300, 'z'));
  }
}

TEST_CASE("deframer: a message over the bound is skipped and counted, framing goes on") {
  deframe f(16);
  f.feed(client_frame(std::string(10, 'a'), 0x1, false) + client_frame(std::string(10, 'b'), 0x0) +
         client_frame("short"));
  CHECK(f.texts() == std::vector<std::string>{"short"});
  CHECK(f.c.oversize == 1);
  CHECK(f.d.buffered() == 0);
  deframe g(16);
  g.feed(server_frame(std::string(16, 'x')));
  CHECK(g.texts() == std::vector<std::string>{std::string(16, 'x')});
}

TEST_CASE("deframer: permessage-deflate (RSV1) messages are skipped and counted") {
  deframe f;
  frame_spec deflated;
  deflated.rsv = 4;
  f.feed(ws_frame("\xf2\x48\xcd\xc9\xc9\x07\x00", deflated) + server_frame("plain"));
  CHECK(f.texts() == std::vector<std::string>{"plain"});
  CHECK(f.c.compressed == 1);
}

TEST_CASE("deframer: one protocol error per rule stops the direction") {
  struct bad {
    const char* rule;
    std::string bytes;
  };
  frame_spec reserved_op;
  reserved_op.opcode = 0x3;
  frame_spec reserved_ctl;
  reserved_ctl.opcode = 0xB;
  frame_spec rsv2;
  rsv2.rsv = 2;
  frame_spec rsv3;
  rsv3.rsv = 1;
  frame_spec ping_nofin;
  ping_nofin.opcode = 0x9;
  ping_nofin.fin = false;
  frame_spec ping_long;
  ping_long.opcode = 0x9;
  frame_spec ping_rsv1;
  ping_rsv1.opcode = 0x9;
  ping_rsv1.rsv = 4;
  frame_spec top;
  top.length_form = 64;
  top.top_bit = true;
  const std::vector<bad> cases = {
    {"reserved data opcode", ws_frame("x", reserved_op)},
    {"reserved control opcode", ws_frame("x", reserved_ctl)},
    {"RSV2", ws_frame("x", rsv2)},
    {"RSV3", ws_frame("x", rsv3)},
    {"fragmented control frame", ws_frame("", ping_nofin)},
    {"control frame over 125 bytes", ws_frame(std::string(126, 'p'), ping_long)},
    {"RSV1 on a control frame", ws_frame("", ping_rsv1)},
    {"continuation without a message", server_frame("x", 0x0)},
    {"new message inside a fragmented one", server_frame("a", 0x1, false) + server_frame("b")},
    {"64-bit length with its top bit set", ws_frame("x", top)},
  };
  for (const auto& c : cases) {
    CAPTURE(c.rule);
    deframe f;
    f.feed(c.bytes + server_frame("after"));
    CHECK(f.d.failed());
    CHECK(f.c.protocol_errors == 1);
    CHECK(f.h.messages.empty());
  }
}

TEST_CASE("deframer: close ends the direction") {
  deframe f;
  f.feed(server_frame("one") + server_frame("\x03\xe8", 0x8) + server_frame("two"));
  CHECK(f.texts() == std::vector<std::string>{"one"});
  CHECK(f.d.closed());
  CHECK(f.h.controls == std::vector<ws::opcode>{ws::opcode::close});
}

TEST_CASE("deframer: gaps inside a payload drop that message only; elsewhere framing is lost") {
  const std::string a = client_frame("lost-some-bytes");
  deframe f;
  f.feed(a.substr(0, 8));
  f.d.gap(4);
  f.feed(a.substr(12) + client_frame("next"));
  CHECK(f.texts() == std::vector<std::string>{"next"});
  CHECK(f.c.damaged == 1);
  deframe g;
  g.feed(a.substr(0, 1));
  g.d.gap(3); // inside the header
  g.feed(a.substr(4));
  CHECK(g.d.failed());
  CHECK(g.c.gap_failures == 1);
  deframe h;
  h.feed(a.substr(0, 8));
  h.d.gap(a.size()); // past the frame's end
  CHECK(h.d.failed());
}

TEST_CASE("handshake tokens") {
  CHECK(ws::list_has_token("websocket", "websocket"));
  CHECK(ws::list_has_token("WebSocket", "websocket"));
  CHECK(ws::list_has_token("h2c, websocket/13", "websocket"));
  CHECK(ws::list_has_token("xmpp, sip", "sip"));
  CHECK(ws::list_has_token(" SIP ", "sip"));
  CHECK_FALSE(ws::list_has_token("sips", "sip"));
  CHECK_FALSE(ws::list_has_token("msrp", "sip"));
  CHECK_FALSE(ws::list_has_token("", "sip"));
}

// ---------------------------------------------------------------- SIP over WebSocket

TEST_CASE("JsSIP REGISTER through Kamailio: the same SIP records as over TCP") {
  flow f(true);
  f.send(c2s, jssip_upgrade);
  f.send(s2c, kamailio_101);
  f.send(c2s, client_frame(sip_register));
  f.send(s2c, server_frame(sip_200));
  REQUIRE(f.out.size() == 4);
  CHECK(f.out[0].record.clickstream().method_name() == "GET");
  CHECK(f.out[0].record.clickstream().hostname() == "sip-ws.example.com:8080");
  CHECK(f.out[1].record.http_reply().result_code() == 101);
  auto s = f.sips();
  REQUIRE(s.size() == 2);
  CHECK(s[0]->msg_code() == "REGISTER");
  CHECK(s[0]->status_code() == 0);
  CHECK(s[0]->uri() == "sip:proxy.example.com");
  CHECK(s[0]->from() == "sip:alice@example.com");
  CHECK(s[0]->to() == "sip:alice@example.com");
  CHECK(s[0]->callid() == "aiuy7k9njasd");
  CHECK(s[0]->uagent() == "JsSIP 3.10.0");
  CHECK(s[0]->gateways() == "df7jal23ls0d.invalid");
  CHECK(s[1]->msg_code() == "REGISTER");
  CHECK(s[1]->status_code() == 200);
  CHECK(s[1]->uri() == "");
  CHECK(s[1]->to() == "sip:alice@example.com");
  CHECK(f.out[2].dir == c2s);
  CHECK(f.out[3].dir == s2c);
  CHECK(serialized_sips(f.out) == sip_over_tcp({{c2s, sip_register}, {s2c, sip_200}}));
  CHECK(f.p->state() == parser_state::confirmed);
  CHECK(f.extra(upgrades) == 1);
  CHECK(f.extra(websocket_upgrades) == 1);
  CHECK(f.extra(websocket_sip) == 1);
  CHECK(f.extra(ws_messages) == 2);
  CHECK(f.extra(ws_frames) == 2);
  CHECK(f.p->flow_host() == "sip-ws.example.com:8080");
}

TEST_CASE("an INVITE with SDP split over two frames, a ping between, every segmentation") {
  const std::string trying = "SIP/2.0 100 Trying\r\n"
                             "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK776asdhds\r\n"
                             "From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n"
                             "To: <sip:bob@example.com>\r\n"
                             "Call-ID: a84b4c76e66710@df7jal23ls0d.invalid\r\n"
                             "CSeq: 314159 INVITE\r\n"
                             "Content-Length: 0\r\n\r\n";
  const std::string half1 = sip_invite.substr(0, 200), half2 = sip_invite.substr(200);
  const std::string client_frames =
    client_frame(half1, 0x1, false) + client_frame("ka", 0x9) + client_frame(half2, 0x0, true);
  const std::string server_frames = server_frame("ka", 0xA) + server_frame(trying);
  const std::vector<std::string> tcp = sip_over_tcp({{c2s, sip_invite}, {s2c, trying}});
  for (size_t chunk : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{5}, size_t{64}}) {
    CAPTURE(chunk);
    flow f;
    f.send(c2s, jssip_upgrade, chunk);
    f.send(s2c, kamailio_101, chunk);
    f.send(c2s, client_frames, chunk);
    f.send(s2c, server_frames, chunk);
    auto s = f.sips();
    REQUIRE(s.size() == 2);
    CHECK(s[0]->msg_code() == "INVITE");
    CHECK(s[0]->status_code() == 0);
    CHECK(s[0]->ctype() == "application/sdp");
    CHECK(s[1]->msg_code() == "INVITE");
    CHECK(s[1]->status_code() == 100);
    std::vector<direction> dirs;
    CHECK(serialized_sips(f.out, &dirs) == tcp);
    CHECK(dirs == std::vector<direction>{c2s, s2c});
    CHECK(f.extra(ws_control_frames) == 2);
    CHECK(f.extra(ws_frames) == 5);
  }
}

TEST_CASE("INVITE fields over WebSocket") {
  flow f;
  f.send(c2s, jssip_upgrade);
  f.send(s2c, kamailio_101);
  f.send(c2s, client_frame(sip_invite));
  auto s = f.sips();
  REQUIRE(s.size() == 1);
  CHECK(s[0]->msg_code() == "INVITE");
  CHECK(s[0]->uri() == "sip:bob@example.com");
  CHECK(s[0]->from() == "sip:alice@example.com");
  CHECK(s[0]->to() == "sip:bob@example.com");
  CHECK(s[0]->callid() == "a84b4c76e66710@df7jal23ls0d.invalid");
  CHECK(s[0]->ctype() == "application/sdp");
  CHECK(s[0]->gateways() == "df7jal23ls0d.invalid");
}

TEST_CASE("frames the client sent before the 101 reached the parser are held, then used") {
  flow f;
  f.send(c2s, jssip_upgrade + client_frame(sip_register));
  CHECK(f.sips().empty());
  f.send(s2c, kamailio_101 + server_frame(sip_200)); // 101 and a frame in one segment
  auto s = f.sips();
  REQUIRE(s.size() == 2);
  CHECK(s[0]->status_code() == 0);
  CHECK(s[1]->status_code() == 200);
  CHECK(f.clicks() == 1);
}

TEST_CASE("a refused upgrade: what the client sent meanwhile is parsed as HTTP") {
  flow f;
  f.send(c2s, jssip_upgrade + "GET /after HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(f.clicks() == 1);
  f.send(s2c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
  CHECK(f.clicks() == 2);
  CHECK(f.out.back().record.clickstream().path() == "/after");
  CHECK(f.extra(websocket_sip) == 0);
}

TEST_CASE("an upgrade request never answered: held bytes are HTTP at the bound and at the end") {
  const std::string upgrade = "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                              "Sec-WebSocket-Protocol: sip\r\n\r\n";
  flow f(false, 256);
  f.send(c2s, upgrade + "GET /one HTTP/1.1\r\n\r\n");
  CHECK(f.clicks() == 1);
  f.p->finish(9, f.out);
  CHECK(f.clicks() == 2);
  CHECK(f.out.back().record.clickstream().path() == "/one");
  flow g(false, 256);
  g.send(c2s, upgrade + "GET /two HTTP/1.1\r\n\r\n");
  g.send(c2s, std::string(300, 'x') + "\r\n");
  CHECK(g.clicks() == 2);
  CHECK(g.extra(upgrade_hold_overflow) == 1);
}

TEST_CASE("a WebSocket without the sip subprotocol is counted and ignored") {
  flow f;
  std::string req = jssip_upgrade;
  req.replace(req.find("Sec-WebSocket-Protocol: sip"), 27, "Sec-WebSocket-Protocol: chat");
  f.send(c2s, req);
  f.send(s2c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Protocol: chat\r\n\r\n");
  f.send(c2s, client_frame(sip_register));
  CHECK(f.sips().empty());
  CHECK(f.p->state() == parser_state::done);
  CHECK(f.extra(websocket_not_sip) == 1);
  CHECK(f.extra(websocket_sip) == 0);
  // A server that selects no subprotocol does not speak SIP either (RFC 7118 §4.1).
  flow g;
  g.send(c2s, jssip_upgrade);
  g.send(s2c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
  g.send(c2s, client_frame(sip_register));
  CHECK(g.sips().empty());
  CHECK(g.extra(websocket_not_sip) == 1);
}

TEST_CASE("other upgrades (h2c) stop parsing as before") {
  flow f;
  f.send(c2s, "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
              "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n");
  f.send(s2c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n");
  CHECK(f.p->state() == parser_state::done);
  CHECK(f.extra(upgrades) == 1);
  CHECK(f.extra(websocket_upgrades) == 0);
}

TEST_CASE("SIP over WebSocket: junk frames, close and oversize messages are counted") {
  flow f(false, 1024);
  f.send(c2s, jssip_upgrade);
  f.send(s2c, kamailio_101);
  f.send(c2s, client_frame(std::string(2000, 'j')) + client_frame(sip_register));
  f.send(s2c, server_frame(sip_200) + server_frame("\x03\xe8", 0x8));
  CHECK(f.sips().size() == 2);
  CHECK(f.extra(ws_oversize) == 1);
  CHECK(f.p->state() == parser_state::confirmed);
  f.send(c2s, client_frame("\x03\xe8", 0x8));
  CHECK(f.p->state() == parser_state::done); // both directions closed
  flow g;
  g.send(c2s, jssip_upgrade);
  g.send(s2c, kamailio_101);
  g.send(c2s, std::string("\x83\x00", 2)); // reserved opcode
  g.send(s2c, server_frame(sip_200));
  CHECK(g.extra(ws_protocol_errors) == 1);
  CHECK(g.sips().size() == 1); // the server side still works
}

TEST_CASE("SIP over WebSocket: a gap inside a frame loses that message only") {
  flow f;
  f.send(c2s, jssip_upgrade);
  f.send(s2c, kamailio_101);
  const std::string fr = client_frame(sip_register);
  f.send(c2s, fr.substr(0, 50));
  f.p->gap(c2s, 20);
  f.send(c2s, fr.substr(70) + client_frame(sip_invite));
  auto s = f.sips();
  REQUIRE(s.size() == 1);
  CHECK(s[0]->msg_code() == "INVITE");
  CHECK(f.extra(ws_damaged) == 1);
}

TEST_CASE("sip_ws_session on its own: keep-alive CRLF messages give nothing") {
  parser_options opts;
  parser_counters counters;
  sip_ws_session ws(opts, counters);
  record_sink out;
  const std::string bytes = client_frame("\r\n\r\n") + client_frame(sip_register, 0x2);
  ws.deliver(c2s, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 1, out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].record.sip().msg_code() == "REGISTER");
  const ws::counters c = ws.take_counters();
  CHECK(c.messages == 2);
  CHECK(ws.take_counters().messages == 0);
  CHECK(ws.sip_state() == parser_state::confirmed);
}
