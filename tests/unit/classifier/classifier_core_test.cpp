// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "classifier/classifier_core.hpp"
#include "classifier_harness.hpp"

using namespace metaprobe;
using namespace metaprobe::test;

namespace {

bool probe_get(const uint8_t* d, size_t n, direction) {
  return n >= 4 && std::memcmp(d, "GET ", 4) == 0;
}
bool probe_dns(const uint8_t* d, size_t n, direction) {
  return n >= 4 && std::memcmp(d, "DNS!", 4) == 0;
}
bool probe_quic(const uint8_t* d, size_t n, direction) {
  return n >= 4 && std::memcmp(d, "QUIC", 4) == 0;
}

// A registry with the shapes that matter to the classifier: parsers exist
// for "http" (TCP) and "dns" (UDP + TCP); "tls" and "quic" are known by port
// or probe but have no parser.
std::vector<protocol_entry> fake_registry() {
  std::vector<protocol_entry> r(4);
  r[0].id = app_protocol::http;
  r[0].name = "http";
  r[0].tcp_ports = {80};
  r[0].probe = probe_get;
  r[0].make_stream = no_stream;
  r[1].id = app_protocol::dns;
  r[1].name = "dns";
  r[1].tcp_ports = {53};
  r[1].udp_ports = {53};
  r[1].probe = probe_dns;
  r[1].make_stream = no_stream;
  r[1].make_datagram = no_datagram;
  r[2].id = app_protocol::tls;
  r[2].name = "tls";
  r[2].tcp_ports = {443};
  r[3].id = app_protocol::quic;
  r[3].name = "quic";
  r[3].udp_ports = {443};
  r[3].probe = probe_quic;
  return r;
}

struct harness : classifier_harness {
  harness() : classifier_harness(fake_registry(), 3, 1000) {}
  stream_batch& sb(app_protocol p) {
    REQUIRE(out.per_proto.size() > static_cast<size_t>(p));
    return out.per_proto[static_cast<size_t>(p)];
  }
  std::vector<stream_event> events(app_protocol p, stream_event_kind k) {
    std::vector<stream_event> r;
    for (auto& e : sb(p).events)
      if (e.kind == k)
        r.push_back(e);
    return r;
  }
  // Stream bytes of one direction as the parser would see them ('#' = gap).
  std::string text(app_protocol p, direction d) {
    std::string s;
    auto& batch = sb(p);
    for (auto& e : batch.events) {
      if (e.dir != d)
        continue;
      if (e.kind == stream_event_kind::data || e.kind == stream_event_kind::datagram)
        s.append(reinterpret_cast<const char*>(batch.data_of(e)), e.len);
      else if (e.kind == stream_event_kind::gap)
        s.append(e.len, '#');
    }
    return s;
  }
  std::vector<stream_event_kind> kinds(app_protocol p) {
    std::vector<stream_event_kind> k;
    for (auto& e : sb(p).events)
      k.push_back(e.kind);
    return k;
  }
};

using K = stream_event_kind;

// Client a (10.0.0.9:5555) to server b (10.0.0.1:port): a is the higher
// address, so orientation does not follow the canonical key order.
endpoint_pair pair_on(uint16_t port, uint8_t proto = 6) {
  endpoint_pair e;
  e.a = v4(10, 0, 0, 9);
  e.b = v4(10, 0, 0, 1);
  e.pa = 5555;
  e.pb = port;
  e.proto = proto;
  return e;
}

// Three-way handshake: client ISN 100, server ISN 500.
void handshake(batch_builder& b, const endpoint_pair& e, uint64_t t0) {
  b.tcp(e, true, t0, syn, 100);
  b.tcp(e, false, t0 + 10 * ms, syn | ack, 500, {}, 101);
  b.tcp(e, true, t0 + 30 * ms, ack, 101, {}, 501);
}

} // namespace

TEST_CASE("classifier: TCP flow on a parser port, orientation, events, summary") {
  harness h;
  auto e = pair_on(80);
  handshake(h.b, e, 0);
  h.b.tcp(e, true, 40 * ms, ack | psh, 101, "GET / HTTP/1.1\r\n\r\n");
  h.b.tcp(e, false, 50 * ms, ack | psh, 501, "HTTP/1.1 200 OK\r\n\r\n");
  auto batch = h.run();
  CHECK(h.c().active_flows() == 1);
  CHECK(h.kinds(app_protocol::http) == std::vector<K>{K::open, K::data, K::data});
  auto& sb = h.sb(app_protocol::http);
  REQUIRE(sb.infos.size() == 1);
  const flow_info& info = sb.infos[0];
  CHECK(info.client == e.a);
  CHECK(info.server == e.b);
  CHECK(info.client_port == 5555);
  CHECK(info.server_port == 80);
  CHECK(info.proto == app_protocol::http);
  CHECK(info.l4_proto == 6);
  CHECK(info.session_id != 0);
  CHECK(session_id_generator::worker_of(info.session_id) == 3);
  // Zero copy: pointers into the packet batch, which is kept in sources once.
  REQUIRE(sb.sources.size() == 1);
  CHECK(sb.sources[0] == batch);
  auto data = h.events(app_protocol::http, K::data);
  REQUIRE(data.size() == 2);
  CHECK(data[0].source == 0);
  CHECK(data[0].ptr == batch->packets[3].payload());
  CHECK(data[0].dir == direction::client_to_server);
  CHECK(data[0].seq == 101);
  CHECK(data[1].dir == direction::server_to_client);
  CHECK(h.text(app_protocol::http, direction::server_to_client) == "HTTP/1.1 200 OK\r\n\r\n");
  CHECK(h.out.flows.summaries.empty());

  h.c().flush_all(1 * sec, h.out);
  auto close = h.events(app_protocol::http, K::close);
  REQUIRE(close.size() == 1);
  REQUIRE(sb.summaries.size() == 1);
  const flow_summary& s = sb.summaries[close[0].info_index];
  CHECK(s.reason == flow_end_reason::forced);
  CHECK(s.info.flow_id == info.flow_id);
  CHECK(s.dir[0].packets == 3);
  CHECK(s.dir[1].packets == 2);
  CHECK(s.dir[0].bytes == 40 + 40 + 40 + 18);
  CHECK(s.dir[0].tcp_flags == (syn | ack | psh));
  CHECK(s.dir[1].first_ts_ns == 10 * ms);
  CHECK(s.dir[1].last_ts_ns == 50 * ms);
  CHECK(s.rtt_half_ms == 15);
  CHECK(h.c().active_flows() == 0);
  CHECK(h.c().counters().detected_port == 1);
  CHECK(h.c().counters().flows_ended[static_cast<size_t>(flow_end_reason::forced)] == 1);
}

TEST_CASE("classifier: a first-seen SYN/ACK makes its receiver the client") {
  harness h;
  auto e = pair_on(9999);
  h.b.tcp(e, false, 0, syn | ack, 500, {}, 101);
  h.b.tcp(e, true, 1 * ms, ack, 101, {}, 501);
  h.run();
  h.c().flush_all(1 * sec, h.out);
  REQUIRE(h.out.flows.summaries.size() == 1);
  const auto& s = h.out.flows.summaries[0];
  CHECK(s.info.client == e.a);
  CHECK(s.info.server_port == 9999);
  CHECK(s.dir[0].packets == 1);
  CHECK(s.dir[0].tcp_flags == ack);
  CHECK(s.dir[1].tcp_flags == (syn | ack));
  CHECK(s.rtt_half_ms == 0); // no SYN seen
}

TEST_CASE("classifier: the first packet's sender is the client otherwise") {
  harness h;
  auto e = pair_on(7777, 17);
  h.b.udp(e, false, 0, "from-b");     // b speaks first
  h.b.udp(e, true, 1 * ms, "from-a");
  h.b.udp(e, true, 2 * ms, "again");
  h.run();
  h.c().flush_all(1 * sec, h.out);
  REQUIRE(h.out.flows.summaries.size() == 1);
  const auto& s = h.out.flows.summaries[0];
  CHECK(s.info.client == e.b);
  CHECK(s.info.client_port == 7777);
  CHECK(s.info.server_port == 5555);
  CHECK(s.dir[0].packets == 1);
  CHECK(s.dir[1].packets == 2);
  CHECK(s.dir[1].bytes == 28 + 6 + 28 + 5);
  CHECK(h.c().counters().flows_created == 1);
}

TEST_CASE("classifier: inactive timeout ends idle flows") {
  harness h;
  h.opts.inactive_timeout_ns = 30 * sec;
  h.b.udp(pair_on(7000, 17), true, 0, "x");
  h.b.udp(pair_on(7001, 17), true, 5 * sec, "y");
  h.run();
  h.c().advance_time(29 * sec, h.out);
  CHECK(h.out.flows.summaries.empty());
  h.c().advance_time(30 * sec, h.out);
  REQUIRE(h.out.flows.summaries.size() == 1);
  CHECK(h.out.flows.summaries[0].reason == flow_end_reason::idle);
  CHECK(h.out.flows.summaries[0].info.server_port == 7000);
  CHECK(h.c().active_flows() == 1);
  h.c().advance_time(35 * sec, h.out);
  CHECK(h.out.flows.summaries.size() == 2);
  CHECK(h.c().counters().flows_ended[static_cast<size_t>(flow_end_reason::idle)] == 2);
}

TEST_CASE("classifier: active timeout reports deltas and keeps the flow") {
  harness h;
  h.opts.active_timeout_ns = 10 * sec;
  auto e = pair_on(7000, 17);
  for (uint64_t t = 0; t <= 24; t += 2)
    h.b.udp(e, true, t * sec, "p");
  h.run();
  REQUIRE(h.out.flows.summaries.size() == 2);
  const auto& r1 = h.out.flows.summaries[0];
  const auto& r2 = h.out.flows.summaries[1];
  CHECK(r1.reason == flow_end_reason::active);
  CHECK(r1.dir[0].packets == 5);   // 0..8 s
  CHECK(r1.dir[0].first_ts_ns == 0);
  CHECK(r1.dir[0].last_ts_ns == 8 * sec);
  CHECK(r2.reason == flow_end_reason::active);
  CHECK(r2.dir[0].packets == 5);   // 10..18 s
  CHECK(r2.dir[0].first_ts_ns == 10 * sec);
  CHECK(r2.info.session_id == r1.info.session_id);
  CHECK(r2.info.first_ts_ns == 0);
  h.c().flush_all(30 * sec, h.out);
  REQUIRE(h.out.flows.summaries.size() == 3);
  CHECK(h.out.flows.summaries[2].reason == flow_end_reason::forced);
  CHECK(h.out.flows.summaries[2].dir[0].packets == 3); // 20..24 s
  CHECK(h.c().counters().flows_created == 1);
}

TEST_CASE("classifier: active report of a parsed flow is a close event with reason active") {
  harness h;
  h.opts.active_timeout_ns = 10 * sec;
  auto e = pair_on(53, 17);
  h.b.udp(e, true, 0, "q1");
  h.b.udp(e, true, 11 * sec, "q2");
  h.run();
  CHECK(h.kinds(app_protocol::dns) == std::vector<K>{K::open, K::datagram, K::close, K::datagram});
  auto& sb = h.sb(app_protocol::dns);
  REQUIRE(sb.summaries.size() == 1);
  CHECK(sb.summaries[0].reason == flow_end_reason::active);
  CHECK(h.c().active_flows() == 1);
}

TEST_CASE("classifier: FIN both ways ends the flow after the linger") {
  harness h;
  h.opts.tcp_close_linger_ns = 2 * sec;
  auto e = pair_on(9000);
  handshake(h.b, e, 0);
  h.b.tcp(e, true, 1 * sec, fin | ack, 101, {}, 501);
  h.b.tcp(e, false, 1 * sec + 1 * ms, fin | ack, 501, {}, 102);
  h.b.tcp(e, true, 1 * sec + 2 * ms, ack, 102, {}, 502); // last ACK: same flow
  h.run();
  CHECK(h.c().active_flows() == 1);
  h.c().advance_time(3 * sec, h.out); // linger counts from the second FIN
  CHECK(h.out.flows.summaries.empty());
  h.c().advance_time(3 * sec + 1 * ms, h.out);
  REQUIRE(h.out.flows.summaries.size() == 1);
  CHECK(h.out.flows.summaries[0].reason == flow_end_reason::end);
  CHECK(h.out.flows.summaries[0].dir[0].packets == 4);
  CHECK(h.c().counters().flows_created == 1);
  CHECK(h.c().active_flows() == 0);
}

TEST_CASE("classifier: RST ends the flow; linger 0 ends it at once") {
  harness h;
  h.opts.tcp_close_linger_ns = 0;
  auto e = pair_on(9000);
  handshake(h.b, e, 0);
  h.b.tcp(e, false, 1 * sec, rst, 501);
  h.run();
  h.c().advance_time(1 * sec, h.out);
  REQUIRE(h.out.flows.summaries.size() == 1);
  CHECK(h.out.flows.summaries[0].reason == flow_end_reason::end);
  CHECK(h.out.flows.summaries[0].dir[1].tcp_flags == (syn | ack | rst));
}

TEST_CASE("classifier: a SYN on a closed tuple starts a new flow (port reuse)") {
  harness h;
  auto e = pair_on(9000);
  handshake(h.b, e, 0);
  h.b.tcp(e, true, 1 * sec, fin | ack, 101, {}, 501);
  h.b.tcp(e, false, 1 * sec, fin | ack, 501, {}, 102);
  h.b.tcp(e, true, 1 * sec + 500 * ms, syn, 9000);
  h.run();
  REQUIRE(h.out.flows.summaries.size() == 1);
  CHECK(h.out.flows.summaries[0].reason == flow_end_reason::end);
  CHECK(h.c().counters().port_reuse == 1);
  CHECK(h.c().counters().flows_created == 2);
  CHECK(h.c().active_flows() == 1);
}

TEST_CASE("classifier: a full table evicts the least recently used flow") {
  harness h;
  h.opts.max_flows = 2;
  h.b.udp(pair_on(7000, 17), true, 0, "a");
  h.b.udp(pair_on(7001, 17), true, 1 * ms, "b");
  h.b.udp(pair_on(7000, 17), true, 2 * ms, "a2"); // 7000 is now more recent
  h.b.udp(pair_on(7002, 17), true, 3 * ms, "c");
  h.run();
  REQUIRE(h.out.flows.summaries.size() == 1);
  CHECK(h.out.flows.summaries[0].reason == flow_end_reason::evicted);
  CHECK(h.out.flows.summaries[0].info.server_port == 7001);
  CHECK(h.c().counters().evictions == 1);
  CHECK(h.c().counters().table_full == 1);
  CHECK(h.c().active_flows() == 2);
}

TEST_CASE("classifier: detection by probe on a non-standard port") {
  harness h;
  auto e = pair_on(8081);
  handshake(h.b, e, 0);
  h.b.tcp(e, true, 40 * ms, ack | psh, 101, "GET /x HTTP/1.1\r\n\r\n");
  h.run();
  CHECK(h.kinds(app_protocol::http) == std::vector<K>{K::open, K::data});
  CHECK(h.c().counters().detected_probe == 1);
  CHECK(h.sb(app_protocol::http).infos[0].proto == app_protocol::http);
}

TEST_CASE("classifier: bytes held while probing reach the parser once a probe accepts") {
  harness h;
  auto e = pair_on(9100);
  handshake(h.b, e, 0);
  h.b.tcp(e, true, 40 * ms, ack | psh, 101, "HELLO");      // no probe matches
  h.b.tcp(e, false, 50 * ms, ack | psh, 501, "DNS!reply"); // dns probe matches
  h.b.tcp(e, true, 60 * ms, ack | psh, 106, "more");
  h.run();
  CHECK(h.kinds(app_protocol::dns) == std::vector<K>{K::open, K::data, K::data, K::data});
  CHECK(h.events(app_protocol::dns, K::gap).empty());
  CHECK(h.text(app_protocol::dns, direction::client_to_server) == "HELLOmore");
  CHECK(h.text(app_protocol::dns, direction::server_to_client) == "DNS!reply");
  CHECK(h.c().counters().detected_probe == 1);
  CHECK(h.c().counters().probe_bytes == 14);
}

TEST_CASE("classifier: a probe start split at every byte is found, nothing lost") {
  const std::string msg = "GET /split HTTP/1.1\r\n\r\n";
  for (size_t first : {size_t{1}, size_t{2}, size_t{3}, size_t{5}, size_t{0}}) {
    CAPTURE(first);
    harness h;
    auto e = pair_on(8081);
    handshake(h.b, e, 0);
    uint32_t seq = 101;
    size_t at = 0;
    uint64_t t = 40 * ms;
    while (at < msg.size()) {
      // first == 0: byte by byte; else `first` bytes, then the rest.
      size_t n = first == 0 ? 1 : (at == 0 ? first : msg.size() - at);
      h.b.tcp(e, true, t++, ack | psh, seq, msg.substr(at, n));
      seq += static_cast<uint32_t>(n);
      at += n;
    }
    h.run();
    CHECK(h.c().counters().detected_probe == 1);
    CHECK(h.c().counters().detected_midstream == 0);
    CHECK(h.text(app_protocol::http, direction::client_to_server) == msg);
  }
}

TEST_CASE("classifier: a flow picked up mid-stream is found on a later segment") {
  harness h;
  auto e = pair_on(8082);
  // No handshake: the capture started inside a keep-alive connection.
  h.b.tcp(e, false, 10 * ms, ack | psh, 9001, "...tail of a body");
  h.b.tcp(e, false, 11 * ms, ack | psh, 9018, "more body");
  h.b.tcp(e, false, 12 * ms, ack | psh, 9027, "GET  is not a request here");
  h.run();
  // The third segment is probed alone (the first sender is the client: no
  // SYN was seen).
  CHECK(h.c().counters().detected_probe == 1);
  CHECK(h.c().counters().detected_midstream == 1);
  auto gaps = h.events(app_protocol::http, K::gap);
  REQUIRE(gaps.size() == 2); // the two earlier segments
  CHECK(gaps[0].seq == 9001);
  CHECK(gaps[0].len == 17);
  CHECK(h.text(app_protocol::http, direction::client_to_server) ==
        std::string(26, '#') + "GET  is not a request here");
}

TEST_CASE("classifier: bytes held while probing are bounded (max_probe_bytes)") {
  harness h;
  h.opts.max_probe_bytes = 100;
  h.opts.max_probe_packets = 0;
  auto e = pair_on(9300);
  handshake(h.b, e, 0);
  uint32_t seq = 101;
  for (int i = 0; i < 10; ++i) {
    h.b.tcp(e, true, (40 + i) * ms, ack | psh, seq, std::string(30, 'x'));
    seq += 30;
  }
  h.run();
  CHECK(h.c().counters().undetected == 1);
  CHECK(h.c().counters().probe_overflow == 1);
  CHECK(h.c().counters().probe_bytes <= 120); // what the bound allowed (+ the last piece)
  for (auto& b : h.out.per_proto)
    CHECK(b.events.empty());
}

TEST_CASE("classifier: a flow stays unknown after max_probe_packets") {
  harness h;
  h.opts.max_probe_packets = 3;
  auto e = pair_on(9200);
  handshake(h.b, e, 0);
  uint32_t seq = 101;
  for (int i = 0; i < 4; ++i) {
    h.b.tcp(e, true, (40 + i) * ms, ack | psh, seq, "nope");
    seq += 4;
  }
  h.b.tcp(e, true, 50 * ms, ack | psh, seq, "GET / late");
  h.run();
  h.c().flush_all(1 * sec, h.out);
  CHECK(h.c().counters().undetected == 1);
  CHECK(h.c().counters().detected_probe == 0);
  REQUIRE(h.out.flows.summaries.size() == 1);
  CHECK(h.out.flows.summaries[0].info.proto == app_protocol::unknown);
  CHECK(h.out.empty() == false);
  for (auto& b : h.out.per_proto)
    CHECK(b.events.empty());
}

TEST_CASE("classifier: port match without a parser: protocol set, summary only") {
  harness h;
  h.b.tcp(pair_on(443), true, 0, syn, 1);
  h.b.udp(pair_on(443, 17), true, 0, "QUIC?");
  h.b.udp(pair_on(4433, 17), true, 0, "QUIC by probe");
  h.run();
  h.c().flush_all(1 * sec, h.out);
  REQUIRE(h.out.flows.summaries.size() == 3);
  int tls = 0, quic = 0;
  for (auto& s : h.out.flows.summaries) {
    tls += s.info.proto == app_protocol::tls;
    quic += s.info.proto == app_protocol::quic;
  }
  CHECK(tls == 1);
  CHECK(quic == 2);
  for (auto& b : h.out.per_proto)
    CHECK(b.events.empty());
}

TEST_CASE("classifier: out-of-order data is copied, in-order data is not") {
  harness h;
  auto e = pair_on(80);
  handshake(h.b, e, 0);
  h.b.tcp(e, true, 40 * ms, ack, 106, "WORLD");  // early
  h.b.tcp(e, true, 41 * ms, ack, 101, "HELLO");
  h.run();
  auto data = h.events(app_protocol::http, K::data);
  REQUIRE(data.size() == 2);
  CHECK(data[0].source == 0);
  CHECK(data[1].source == stream_event::own_bytes);
  CHECK(h.text(app_protocol::http, direction::client_to_server) == "HELLOWORLD");
  CHECK(h.c().counters().bytes_copied == 5);
  CHECK(h.c().counters().bytes_zero_copy == 5);
  CHECK(h.c().counters().tcp.out_of_order == 1);
}

TEST_CASE("classifier: holes at the end become gaps before the close") {
  harness h;
  auto e = pair_on(80);
  handshake(h.b, e, 0);
  h.b.tcp(e, true, 40 * ms, ack, 101, "aaa");
  h.b.tcp(e, true, 41 * ms, ack, 110, "ccc"); // 104..109 lost
  h.run();
  h.c().flush_all(1 * sec, h.out);
  CHECK(h.kinds(app_protocol::http) == std::vector<K>{K::open, K::data, K::gap, K::data, K::close});
  CHECK(h.text(app_protocol::http, direction::client_to_server) == "aaa######ccc");
}

TEST_CASE("classifier: payload cut by the snap length reaches the parser as a gap") {
  harness h;
  auto e = pair_on(80);
  handshake(h.b, e, 0);
  auto& p = h.b.tcp(e, true, 40 * ms, ack, 101, "GET /"); // 5 of 25 bytes captured
  p.l3_wire_len = static_cast<uint16_t>(p.l3_wire_len + 20);
  p.wire_len += 20;
  h.b.tcp(e, true, 41 * ms, ack, 126, "next");
  h.run();
  CHECK(h.text(app_protocol::http, direction::client_to_server) == "GET /####################next");
  CHECK(h.c().counters().tcp.out_of_order == 0);
  h.c().flush_all(1 * sec, h.out);
  auto& sums = h.sb(app_protocol::http).summaries;
  REQUIRE(sums.size() == 1);
  CHECK(sums[0].dir[0].bytes == 40 + 40 + 65 + 44); // wire IP lengths
}

TEST_CASE("classifier: retransmissions count per direction") {
  harness h;
  auto e = pair_on(9300);
  handshake(h.b, e, 0);
  h.b.tcp(e, true, 40 * ms, ack, 101, "data");
  h.b.tcp(e, true, 240 * ms, ack, 101, "data");
  h.b.tcp(e, false, 250 * ms, ack, 501, "resp");
  h.run();
  h.c().flush_all(1 * sec, h.out);
  REQUIRE(h.out.flows.summaries.size() == 1);
  CHECK(h.out.flows.summaries[0].dir[0].retransmissions == 1);
  CHECK(h.out.flows.summaries[0].dir[1].retransmissions == 0);
}

TEST_CASE("classifier: RTT without the final ACK uses SYN to SYN/ACK") {
  harness h;
  auto e = pair_on(9400);
  h.b.tcp(e, true, 0, syn, 100);
  h.b.tcp(e, false, 10 * ms, syn | ack, 500, {}, 101);
  h.run();
  h.c().flush_all(1 * sec, h.out);
  REQUIRE(h.out.flows.summaries.size() == 1);
  CHECK(h.out.flows.summaries[0].rtt_half_ms == 5);
}

TEST_CASE("classifier: UDP datagrams on a parser port") {
  harness h;
  auto e = pair_on(53, 17);
  h.b.udp(e, true, 0, "query");
  h.b.udp(e, false, 1 * ms, "answer");
  h.b.udp(e, true, 2 * ms, ""); // empty datagram: counted, not delivered
  auto batch = h.run();
  CHECK(h.kinds(app_protocol::dns) == std::vector<K>{K::open, K::datagram, K::datagram});
  auto& sb = h.sb(app_protocol::dns);
  CHECK(sb.sources.size() == 1);
  CHECK(sb.events[1].ptr == batch->packets[0].payload());
  CHECK(h.text(app_protocol::dns, direction::server_to_client) == "answer");
  // The next output batch references the next packet batch again.
  h.out.clear();
  h.b.udp(e, true, 3 * ms, "q2");
  auto batch2 = h.run();
  REQUIRE(h.sb(app_protocol::dns).sources.size() == 1);
  CHECK(h.sb(app_protocol::dns).sources[0] == batch2);
  CHECK(h.sb(app_protocol::dns).infos.empty()); // open was in the previous output
}

TEST_CASE("classifier: IP fragments are reassembled and counted as every fragment") {
  harness h;
  ip_address a = v4(192, 0, 2, 1), b = v4(192, 0, 2, 53);
  std::string payload = "DNS-query-payload-that-is-40-bytes-long!";
  auto l4 = udp_header_and_payload(33000, 53, payload); // 48 bytes
  std::vector<uint8_t> part1(l4.begin(), l4.begin() + 24), part2(l4.begin() + 24, l4.end());
  auto f1 = ipv4_packet(a, b, 17, part1, 0x4242, 0, true);
  auto f2 = ipv4_packet(a, b, 17, part2, 0x4242, 24, false);
  h.b.raw(f2, 1 * ms); // last fragment first
  h.b.raw(f1, 2 * ms);
  h.run();
  CHECK(h.c().counters().fragments == 2);
  CHECK(h.c().counters().reassembled == 1);
  CHECK(h.kinds(app_protocol::dns) == std::vector<K>{K::open, K::datagram});
  auto dg = h.events(app_protocol::dns, K::datagram);
  REQUIRE(dg.size() == 1);
  CHECK(dg[0].source == stream_event::own_bytes); // not in the packet batch
  CHECK(h.text(app_protocol::dns, direction::client_to_server) == payload);
  h.c().flush_all(1 * sec, h.out);
  auto& sums = h.sb(app_protocol::dns).summaries;
  REQUIRE(sums.size() == 1);
  CHECK(sums[0].dir[0].packets == 2);
  CHECK(sums[0].dir[0].fragments == 2);
  CHECK(sums[0].dir[0].bytes == f1.size() + f2.size());
  CHECK(sums[0].info.client_port == 33000);
  CHECK(sums[0].info.server_port == 53);
}

TEST_CASE("classifier: packets that did not decode are only counted") {
  harness h;
  h.b.bad(decode_status::non_ip, 0);
  h.b.bad(decode_status::truncated, 0);
  h.b.bad(decode_status::non_ip, 0);
  h.b.add(v4(1, 1, 1, 1), 0, v4(2, 2, 2, 2), 0, 1, 1 * ms, "icmp"); // ICMP
  h.run();
  const auto& c = h.c().counters();
  CHECK(c.packets == 4);
  CHECK(c.by_status[static_cast<size_t>(decode_status::non_ip)] == 2);
  CHECK(c.by_status[static_cast<size_t>(decode_status::truncated)] == 1);
  CHECK(c.by_status[static_cast<size_t>(decode_status::ok)] == 1);
  CHECK(c.non_tcp_udp == 1);
  CHECK(c.flows_created == 1);
}

TEST_CASE("classifier: counters are published") {
  harness h;
  h.b.udp(pair_on(53, 17), true, 0, "q");
  h.run();
  stage_stats st;
  h.c().publish_counters(st, "classifier.3.");
  CHECK(st.get("classifier.3.packets") == 1);
  CHECK(st.get("classifier.3.flows_created") == 1);
  CHECK(st.get("classifier.3.parser_flows") == 1);
  CHECK(st.get("classifier.3.decode.ok") == 1);
}

TEST_CASE("classifier: the real registry detects HTTP by probe and DNS by port") {
  if (!find_protocol(app_protocol::http) || !find_protocol(app_protocol::dns)) {
    MESSAGE("http/dns parsers not registered: skipped");
    return;
  }
  classifier_options opts;
  opts.max_flows = 16;
  classifier_core core(opts, 0, session_id_generator(0, 1));
  classifier_output out;
  batch_builder b;
  auto e = pair_on(8123);
  handshake(b, e, 0);
  b.tcp(e, true, 40 * ms, ack | psh, 101, "GET /index.html HTTP/1.1\r\nHost: example.org\r\n\r\n");
  b.udp(pair_on(53, 17), true, 50 * ms, std::string("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12));
  auto batch = b.build();
  core.process(batch, out);
  auto& http = out.per_proto[static_cast<size_t>(app_protocol::http)];
  auto& dns = out.per_proto[static_cast<size_t>(app_protocol::dns)];
  REQUIRE(http.infos.size() == 1);
  CHECK(http.infos[0].server_port == 8123);
  REQUIRE(dns.infos.size() == 1);
  CHECK(dns.infos[0].server_port == 53);
}

TEST_CASE("classifier: a fragmented IP-in-IP packet opens after reassembly, its inner fragments too") {
  // The inner DNS datagram (48 bytes of UDP) is itself cut in two fragments;
  // the first inner fragment travels in an outer IPv4 packet (protocol 4)
  // that the underlay fragmented again; the second inner fragment travels in
  // one whole outer packet. Both levels reassemble into one DNS datagram of
  // the inner addresses, and the tunnel's layers are counted.
  harness h;
  ip_address a = v4(10, 9, 0, 1), b = v4(10, 9, 0, 53);          // inner (private)
  ip_address oa = v4(198, 51, 100, 1), ob = v4(198, 51, 100, 2); // tunnel endpoints
  std::string payload = "DNS-query-payload-that-is-40-bytes-long!";
  auto l4 = udp_header_and_payload(33000, 53, payload);
  std::vector<uint8_t> in1(l4.begin(), l4.begin() + 24), in2(l4.begin() + 24, l4.end());
  auto inner1 = ipv4_packet(a, b, 17, in1, 0x1111, 0, true);  // 44 bytes
  auto inner2 = ipv4_packet(a, b, 17, in2, 0x1111, 24, false);
  std::vector<uint8_t> o1(inner1.begin(), inner1.begin() + 16), o2(inner1.begin() + 16, inner1.end());
  h.b.raw(ipv4_packet(oa, ob, 4, o1, 0x2222, 0, true), 1 * ms);
  h.b.raw(ipv4_packet(oa, ob, 4, o2, 0x2222, 16, false), 2 * ms);
  h.b.raw(ipv4_packet(oa, ob, 4, inner2, 0x2223, 0, false), 3 * ms);
  h.run();
  const auto& c = h.c().counters();
  CHECK(c.reassembled == 2); // the outer datagram, then the inner one
  CHECK(c.reassembled_tunnels == 1);
  CHECK(c.decap[static_cast<size_t>(decap_kind::ip_in_ip)] == 1);
  CHECK(c.reassembled_bad == 0);
  CHECK(h.kinds(app_protocol::dns) == std::vector<K>{K::open, K::datagram});
  CHECK(h.text(app_protocol::dns, direction::client_to_server) == payload);
  h.c().flush_all(1 * sec, h.out);
  auto& sums = h.sb(app_protocol::dns).summaries;
  REQUIRE(sums.size() == 1);
  CHECK(sums[0].info.client == a);
  CHECK(sums[0].info.server == b);
}
