// SPDX-License-Identifier: Apache-2.0
// The parser stage's one re-detection path after in-band hand-overs
// (parsers/common/redetect.hpp, parser_host.hpp): CONNECT tunnels carrying
// TLS or HTTP, 101 upgrades, STARTTLS, TLS on HTTP's port, nested CONNECT;
// every split of the first inner bytes gives the same records.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "parsers/registry.hpp"
#include "parsers/stage/parser_host.hpp"
#include "parsers/common/redetect.hpp"

using namespace metaprobe;

namespace {

using bytes = std::string;
constexpr auto c2s = direction::client_to_server;
constexpr auto s2c = direction::server_to_client;

void put16(bytes& b, size_t v) {
  b.push_back(static_cast<char>(v >> 8));
  b.push_back(static_cast<char>(v));
}

// A TLS 1.2 record holding a ClientHello with SNI `sni`.
bytes client_hello_record(const std::string& sni) {
  bytes body;
  put16(body, 0x0303);
  body.append(32, '\x11');
  body.push_back(0); // no session id
  put16(body, 4);
  put16(body, 0x1301);
  put16(body, 0xc02b);
  body.push_back(1);
  body.push_back(0);
  bytes name;
  name.push_back(0);
  put16(name, sni.size());
  name += sni;
  bytes list;
  put16(list, name.size());
  list += name;
  bytes exts;
  put16(exts, 0);
  put16(exts, list.size());
  exts += list;
  put16(body, exts.size());
  body += exts;
  bytes hs;
  hs.push_back(1);
  hs.push_back(0);
  put16(hs, body.size());
  hs += body;
  bytes rec{"\x16\x03\x01", 3};
  put16(rec, hs.size());
  return rec + hs;
}

struct segment {
  direction dir;
  bytes data;
};

// Runs `segs` (in order) as one TCP flow of `entry`'s protocol through a
// parser host; returns its records and the host.
struct run_result {
  std::vector<parsed_record> records;
  std::vector<flow_summary> closed;
  parser_host_counters counters;
  std::map<std::string, uint64_t> chains;
};

run_result run_flow(app_protocol proto, uint16_t port, const std::vector<segment>& segs,
                    bool ssl_reply = false) {
  const protocol_entry* entry = find_protocol(proto);
  REQUIRE(entry != nullptr);
  parser_options opts;
  opts.http_parse_reply = false;
  opts.ssl_parse_reply = ssl_reply;
  parser_host host(*entry, opts);
  stream_batch in;
  in.proto = proto;
  flow_info info;
  info.flow_id = 1;
  info.session_id = 77;
  info.l4_proto = 6;
  info.proto = proto;
  info.client_port = 40000;
  info.server_port = port;
  in.infos.push_back(info);
  stream_event open;
  open.kind = stream_event_kind::open;
  open.flow_id = 1;
  in.events.push_back(open);
  uint32_t seq[2] = {1000, 5000};
  uint64_t ts = 1;
  for (const auto& s : segs) {
    stream_event ev;
    ev.kind = stream_event_kind::data;
    ev.dir = s.dir;
    ev.flow_id = 1;
    ev.ts_ns = ts++;
    ev.seq = seq[static_cast<size_t>(s.dir)];
    seq[static_cast<size_t>(s.dir)] += static_cast<uint32_t>(s.data.size());
    ev.source = stream_event::own_bytes;
    ev.offset = static_cast<uint32_t>(in.bytes.size());
    ev.len = static_cast<uint32_t>(s.data.size());
    in.bytes.insert(in.bytes.end(), s.data.begin(), s.data.end());
    in.events.push_back(ev);
  }
  flow_summary sum;
  sum.info = info;
  sum.reason = flow_end_reason::end;
  in.summaries.push_back(sum);
  stream_event close;
  close.kind = stream_event_kind::close;
  close.flow_id = 1;
  close.ts_ns = ts;
  in.events.push_back(close);
  record_batch out;
  host.process(in, out);
  run_result r;
  for (auto& it : out.items)
    r.records.push_back(std::move(it.rec));
  r.closed = out.closed;
  r.counters = host.host_counters();
  r.chains = host.chains();
  return r;
}

// `data` of direction `dir` cut so the first segment has `first` bytes
// (0: byte by byte).
std::vector<segment> split(direction dir, const bytes& data, size_t first) {
  std::vector<segment> out;
  if (first == 0) {
    for (char c : data)
      out.push_back({dir, bytes(1, c)});
    return out;
  }
  out.push_back({dir, data.substr(0, first)});
  if (first < data.size())
    out.push_back({dir, data.substr(first)});
  return out;
}

std::vector<segment> operator+(std::vector<segment> a, const std::vector<segment>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// "hostname path" of each clickstream record, in order.
std::vector<std::string> clicks(const run_result& r) {
  std::vector<std::string> out;
  for (const auto& p : r.records)
    if (p.record.has_clickstream())
      out.push_back(std::to_string(p.record.clickstream().host_type()) + " " +
                    p.record.clickstream().hostname() + " " + p.record.clickstream().path());
  return out;
}

const std::vector<size_t> splits = {1, 2, 3, 5, 0};

const bytes connect443 = "CONNECT www.example.test:443 HTTP/1.1\r\nHost: www.example.test:443\r\n\r\n";
const bytes connect80 = "CONNECT www.example.test:80 HTTP/1.1\r\nHost: www.example.test:80\r\n\r\n";
const bytes established = "HTTP/1.1 200 Connection established\r\n\r\n";
const bytes inner_get = "GET /inside HTTP/1.1\r\nHost: www.example.test\r\n\r\n";
const bytes inner_ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

} // namespace

TEST_CASE("stream_redetector: a ClientHello found at every split, HTTP found, noise given up") {
  const auto reg = stream_redetector::stream_candidates(protocol_registry());
  const bytes ch = client_hello_record("a.example");
  for (size_t first : splits) {
    CAPTURE(first);
    stream_redetector d(reg, 16384);
    for (auto& s : split(c2s, ch, first)) {
      stream_piece p;
      p.dir = s.dir;
      p.bytes = s.data;
      d.add(std::move(p));
    }
    REQUIRE(d.state() == stream_redetector::verdict::detected);
    CHECK(d.detected()->id == app_protocol::tls);
    bytes replay;
    for (auto& p : d.take_pieces())
      replay += p.bytes;
    // What was held is the start of the stream, nothing lost or reordered
    // (byte by byte the probe decides before the last byte).
    CHECK(replay.size() >= 6);
    CHECK(ch.compare(0, replay.size(), replay) == 0);
  }
  {
    stream_redetector d(reg, 16384);
    for (auto& s : split(c2s, inner_get, 2)) {
      stream_piece p;
      p.dir = s.dir;
      p.bytes = s.data;
      d.add(std::move(p));
    }
    REQUIRE(d.state() == stream_redetector::verdict::detected);
    CHECK(d.detected()->id == app_protocol::http);
  }
  {
    stream_redetector d(reg, 256);
    stream_piece p;
    p.dir = c2s;
    p.bytes = bytes(300, '\x9a');
    CHECK(d.add(std::move(p)) == stream_redetector::verdict::undetected);
    CHECK(d.reason() == stream_redetector::give_up::overflow);
    CHECK(d.held_bytes() == 256); // the bound holds
  }
  {
    stream_redetector d(reg, 256);
    stream_piece p;
    p.dir = c2s;
    p.bytes = "\x01\x02";
    d.add(std::move(p));
    CHECK(d.finish() == stream_redetector::verdict::undetected);
    CHECK(d.reason() == stream_redetector::give_up::ended);
  }
  {
    stream_redetector d(reg, 256);
    for (direction dir : {c2s, s2c}) {
      stream_piece p;
      p.dir = dir;
      p.gap = 10;
      d.add(std::move(p));
    }
    CHECK(d.state() == stream_redetector::verdict::undetected);
    CHECK(d.reason() == stream_redetector::give_up::gaps);
  }
}

TEST_CASE("stream_redetector: a turn probes the side that spoke, the probe bound holds") {
  const auto reg = stream_redetector::stream_candidates(protocol_registry());
  auto piece = [](direction dir, const bytes& b) {
    stream_piece p;
    p.dir = dir;
    p.bytes = b;
    return p;
  };
  {
    // "220 mail.example" (no SMTP yet: no), then " ESMTP ready" (not twice
    // the bytes: no probe by size); the client's first byte is the turn
    // that probes the server's whole greeting.
    stream_redetector d(reg, 16384);
    CHECK(d.add(piece(s2c, "220 mail.example.test")) == stream_redetector::verdict::pending);
    CHECK(d.add(piece(s2c, " ESMTP\r\n")) == stream_redetector::verdict::pending);
    CHECK(d.add(piece(c2s, "x")) == stream_redetector::verdict::detected);
    CHECK(d.detected()->id == app_protocol::smtp);
    CHECK(d.take_pieces().size() == 3); // every byte replayed, the client's too
  }
  {
    stream_redetector d(reg, 16384, 3);
    for (int i = 0; i < 64 && d.state() == stream_redetector::verdict::pending; ++i)
      d.add(piece(i % 2 ? s2c : c2s, "\x9a"));
    CHECK(d.state() == stream_redetector::verdict::undetected);
    CHECK(d.reason() == stream_redetector::give_up::probes);
    CHECK(d.probes_run() == 3);
  }
}

TEST_CASE("CONNECT tunnel carrying TLS: the SNI at every split of the ClientHello") {
  const bytes ch = client_hello_record("inner.example");
  std::vector<std::string> first_result;
  for (size_t first : splits) {
    CAPTURE(first);
    auto r = run_flow(app_protocol::http, 3128,
                      std::vector<segment>{{c2s, connect443}, {s2c, established}} +
                        split(c2s, ch, first));
    const auto c = clicks(r);
    REQUIRE(c.size() == 2);
    CHECK(c[0] == "1 www.example.test:443 www.example.test:443");
    CHECK(c[1] == "3 inner.example ");
    CHECK(r.counters.handovers[static_cast<size_t>(handover_kind::connect)] == 1);
    CHECK(r.counters.redetected == 1);
    CHECK(r.chains.at("http>tls") == 1);
    REQUIRE(r.closed.size() == 1);
    CHECK(r.closed[0].info.proto == app_protocol::tls); // the innermost protocol
    CHECK(r.closed[0].host == "inner.example");
    if (first_result.empty())
      first_result = c;
    CHECK(c == first_result);
  }
}

TEST_CASE("CONNECT tunnel carrying HTTP: the inner request at every split") {
  for (size_t first : splits) {
    CAPTURE(first);
    auto r = run_flow(app_protocol::http, 3128,
                      std::vector<segment>{{c2s, connect80}, {s2c, established}} +
                        split(c2s, inner_get, first) + std::vector<segment>{{s2c, inner_ok}});
    const auto c = clicks(r);
    REQUIRE(c.size() == 2);
    CHECK(c[1] == "1 www.example.test /inside");
    CHECK(r.chains.at("http>http") == 1);
    // The inner request's TCP sequence is where it starts in the stream.
    uint32_t seq = 0;
    for (const auto& p : r.records)
      if (p.record.has_clickstream() && p.record.clickstream().path() == "/inside")
        seq = p.tcp_seq;
    CHECK(seq == 1000 + connect80.size());
  }
}

TEST_CASE("CONNECT: bytes the client sent before the 200, and the 200's own segment") {
  const bytes ch = client_hello_record("eager.example");
  // The client does not wait for the 200 (its ClientHello is held).
  auto r = run_flow(app_protocol::http, 3128,
                    {{c2s, connect443 + ch.substr(0, 3)}, {c2s, ch.substr(3)},
                     {s2c, established}});
  auto c = clicks(r);
  REQUIRE(c.size() == 2);
  CHECK(c[1] == "3 eager.example ");
  // A refused CONNECT: what followed is HTTP again.
  r = run_flow(app_protocol::http, 3128,
               {{c2s, connect443}, {s2c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"},
                {c2s, inner_get}});
  c = clicks(r);
  REQUIRE(c.size() == 2);
  CHECK(c[1] == "1 www.example.test /inside");
  CHECK(r.counters.handovers[static_cast<size_t>(handover_kind::connect)] == 0);
}

TEST_CASE("nested CONNECT, and the layer bound") {
  const bytes ch = client_hello_record("deep.example");
  const bytes connect_b = "CONNECT b.example:443 HTTP/1.1\r\nHost: b.example:443\r\n\r\n";
  auto r = run_flow(app_protocol::http, 3128,
                    std::vector<segment>{{c2s, connect443}, {s2c, established}} +
                      split(c2s, connect_b, 2) + std::vector<segment>{{s2c, established}} +
                      split(c2s, ch, 2));
  auto c = clicks(r);
  REQUIRE(c.size() == 3);
  CHECK(c[1] == "1 b.example:443 b.example:443");
  CHECK(c[2] == "3 deep.example ");
  CHECK(r.chains.at("http>http>tls") == 1);
  // More CONNECTs than max_layers: the flow is left, counted.
  std::vector<segment> segs;
  for (size_t i = 0; i < parser_host::max_layers + 1; ++i) {
    segs.push_back({c2s, connect_b});
    segs.push_back({s2c, established});
  }
  segs.push_back({c2s, ch});
  r = run_flow(app_protocol::http, 3128, segs);
  CHECK(r.counters.layers_exceeded == 1);
  CHECK(clicks(r).size() == parser_host::max_layers);
}

TEST_CASE("101 Switching Protocols to something no probe knows: counted, given up") {
  auto r = run_flow(app_protocol::http, 80,
                    {{c2s, "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"},
                     {s2c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"},
                     {s2c, bytes("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9)}});
  CHECK(r.counters.handovers[static_cast<size_t>(handover_kind::upgrade)] == 1);
  CHECK(r.counters.redetect_ended == 1);
  CHECK(r.chains.at("http>unknown") == 1);
  CHECK(r.closed.at(0).info.proto == app_protocol::http);
}

TEST_CASE("STARTTLS: SMTP, POP3, IMAP, XMPP hand the rest to TLS at every split") {
  const bytes ch = client_hello_record("mail.example");
  struct mail_case {
    app_protocol proto;
    uint16_t port;
    std::vector<segment> before;
  };
  const std::vector<mail_case> cases = {
    {app_protocol::smtp, 25,
     {{s2c, "220 mx ESMTP\r\n"}, {c2s, "EHLO c\r\n"}, {s2c, "250-mx\r\n250 STARTTLS\r\n"},
      {c2s, "STARTTLS\r\n"}, {s2c, "220 2.0.0 Ready to start TLS\r\n"}}},
    {app_protocol::pop3, 110,
     {{s2c, "+OK POP3 ready\r\n"}, {c2s, "STLS\r\n"}, {s2c, "+OK Begin TLS\r\n"}}},
    {app_protocol::imap, 143,
     {{s2c, "* OK IMAP ready\r\n"}, {c2s, "a1 STARTTLS\r\n"}, {s2c, "a1 OK Begin TLS\r\n"}}},
    {app_protocol::xmpp, 5222,
     {{c2s, "<?xml version='1.0'?><stream:stream to='x' xmlns='jabber:client' "
            "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"},
      {s2c, "<?xml version='1.0'?><stream:stream from='x' id='1' xmlns='jabber:client' "
            "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'><stream:features>"
            "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>"},
      {c2s, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"},
      {s2c, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"}}},
  };
  for (const auto& mc : cases) {
    for (size_t first : splits) {
      CAPTURE(static_cast<int>(mc.proto));
      CAPTURE(first);
      auto r = run_flow(mc.proto, mc.port, mc.before + split(c2s, ch, first));
      const auto c = clicks(r);
      REQUIRE(c.size() == 1);
      CHECK(c[0] == "3 mail.example ");
      CHECK(r.counters.handovers[static_cast<size_t>(handover_kind::starttls)] == 1);
    }
  }
  // A refused STARTTLS hands nothing over.
  auto r = run_flow(app_protocol::smtp, 25,
                    {{s2c, "220 mx ESMTP\r\n"}, {c2s, "STARTTLS\r\n"},
                     {s2c, "454 4.7.0 TLS not available\r\n"}, {c2s, "QUIT\r\n"}});
  CHECK(r.counters.handovers[static_cast<size_t>(handover_kind::starttls)] == 0);
}

TEST_CASE("TLS on HTTP's port: the port's parser gives way to the probe that accepts") {
  const bytes ch = client_hello_record("port80.example");
  auto r = run_flow(app_protocol::http, 80, {{c2s, ch}});
  const auto c = clicks(r);
  REQUIRE(c.size() == 1);
  CHECK(c[0] == "3 port80.example ");
  CHECK(r.counters.handovers[static_cast<size_t>(handover_kind::port)] == 1);
  CHECK(r.chains.at("http>tls") == 1);
  // An HTTP request on HTTP's port is not touched.
  r = run_flow(app_protocol::http, 80, {{c2s, inner_get}});
  CHECK(r.counters.handovers[static_cast<size_t>(handover_kind::port)] == 0);
  CHECK(r.chains.empty());
}

TEST_CASE("a hand-over followed by noise: bounded, counted, no records") {
  bytes noise;
  for (size_t i = 0; i < parser_host::max_redetect_bytes + 100; ++i)
    noise.push_back(static_cast<char>(0x80 + (i * 7) % 100));
  auto r = run_flow(app_protocol::http, 3128,
                    std::vector<segment>{{c2s, connect443}, {s2c, established}} +
                      split(c2s, noise, 700));
  CHECK(r.counters.redetect_overflow == 1);
  CHECK(clicks(r).size() == 1);
  CHECK(r.counters.redetect_bytes <= noise.size());
}
