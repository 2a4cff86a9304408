// SPDX-License-Identifier: Apache-2.0
// Raw metadata items of the classifier (classifier_core.hpp, "Raw metadata")
// and the raw_meta_protocols list (core/raw_meta.hpp).
#include <doctest/doctest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "classifier/classifier_core.hpp"
#include "core/raw_meta.hpp"
#include "classifier_harness.hpp"

using namespace metaprobe;
using namespace metaprobe::test;

namespace {

bool probe_sip(const uint8_t* d, size_t n, direction) {
  return n >= 7 && std::memcmp(d, "INVITE ", 7) == 0;
}

// SIP (UDP and TCP 5060, probe), FTP (TCP 21) and HTTP (TCP 80), each with
// a parser.
std::vector<protocol_entry> raw_registry() {
  std::vector<protocol_entry> r(3);
  r[0].id = app_protocol::sip;
  r[0].name = "sip";
  r[0].tcp_ports = {5060};
  r[0].udp_ports = {5060};
  r[0].probe = probe_sip;
  r[0].make_stream = no_stream;
  r[0].make_datagram = no_datagram;
  r[1].id = app_protocol::ftp;
  r[1].name = "ftp";
  r[1].tcp_ports = {21};
  r[1].make_stream = no_stream;
  r[2].id = app_protocol::http;
  r[2].name = "http";
  r[2].tcp_ports = {80};
  r[2].make_stream = no_stream;
  return r;
}

struct harness : classifier_harness {
  harness() : classifier_harness(raw_registry(), 1, 7) {}
  const flow_info& info_of(const raw_packet& r) const {
    REQUIRE(r.info_index < out.flows.raw_infos.size());
    return out.flows.raw_infos[r.info_index];
  }
};

endpoint_pair pair_on(uint16_t port, uint8_t proto) {
  endpoint_pair e;
  e.a = v4(10, 0, 0, 9);
  e.b = v4(10, 0, 0, 1);
  e.pa = 5555;
  e.pb = port;
  e.proto = proto;
  return e;
}

} // namespace

TEST_CASE("raw_meta_protocols: names, codes, errors") {
  std::vector<app_protocol> got;
  CHECK(parse_raw_meta_protocols("", &got).empty());
  CHECK(got.empty());
  CHECK(parse_raw_meta_protocols(" SIP , 4,xmpp,sip ", &got).empty());
  CHECK(got == std::vector<app_protocol>{app_protocol::sip, app_protocol::ftp, app_protocol::xmpp});
  got.clear();
  CHECK(parse_raw_meta_protocols("5,6,7", &got).empty());
  CHECK(got == std::vector<app_protocol>{app_protocol::smtp, app_protocol::pop3,
                                         app_protocol::imap});
  CHECK(parse_raw_meta_protocols("sip,http", nullptr).find("unknown protocol 'http'") == 0);
  CHECK(parse_raw_meta_protocols("sip,,ftp", nullptr).find("unknown protocol ''") == 0);
  CHECK(parse_raw_meta_protocols("2", nullptr).find("unknown protocol '2'") == 0);
  CHECK(parse_raw_meta_protocols("icq", nullptr) ==
        "'icq' (META_PROTO 9, icq) is not detected by metaprobe; expected a comma-separated "
        "list of sip, ftp, smtp, pop3, imap, xmpp or their META_PROTO codes 3..8");
  CHECK(parse_raw_meta_protocols("13", nullptr).find("(META_PROTO 13, zello)") != std::string::npos);
  CHECK(meta_proto_of(app_protocol::sip) == 3);
  CHECK(meta_proto_of(app_protocol::ftp) == 4);
  CHECK(meta_proto_of(app_protocol::smtp) == 5);
  CHECK(meta_proto_of(app_protocol::pop3) == 6);
  CHECK(meta_proto_of(app_protocol::imap) == 7);
  CHECK(meta_proto_of(app_protocol::xmpp) == 8);
  CHECK(meta_proto_of(app_protocol::http) == 0);
  CHECK(meta_proto_of(app_protocol::unknown) == 0);
}

TEST_CASE("classifier raw: nothing without selected protocols") {
  harness h;
  h.b.udp(pair_on(5060, 17), true, 0, "INVITE sip:x SIP/2.0\r\n");
  h.run();
  CHECK(h.out.flows.raw.empty());
  CHECK(h.out.flows.raw_infos.empty());
  CHECK(h.c().counters().raw_packets == 0);
}

TEST_CASE("classifier raw: one item per packet of a selected UDP flow, zero copy") {
  harness h;
  h.opts.raw_protocols = {app_protocol::sip};
  auto e = pair_on(5060, 17);
  h.b.udp(e, true, 1 * ms, "INVITE sip:bob SIP/2.0\r\n");
  h.b.udp(e, false, 2 * ms, "SIP/2.0 100 Trying\r\n");
  h.b.udp(e, true, 3 * ms, ""); // an empty datagram is still a packet
  h.b.tcp(pair_on(80, 6), true, 4 * ms, syn, 1); // HTTP: not selected
  auto batch = h.run();
  auto& fb = h.out.flows;
  REQUIRE(fb.raw.size() == 3);
  CHECK(fb.raw_infos.size() == 1); // one info per flow per batch
  CHECK(fb.sources.size() == 1);
  CHECK(fb.sources[0] == batch);
  const direction want_dir[3] = {direction::client_to_server, direction::server_to_client,
                                 direction::client_to_server};
  for (size_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    const raw_packet& r = fb.raw[i];
    CHECK(r.dir == want_dir[i]);
    CHECK(r.meta_proto == 3);
    CHECK(r.proto == app_protocol::sip);
    CHECK(r.tcp_flags == 0);
    CHECK(r.tcp_seq == 0);
    CHECK(r.ts_ns == (i + 1) * ms);
    CHECK(r.source == 0);
    // RAW_DATA is the whole IP packet: it starts at the IP header.
    CHECK(fb.data_of(r) == batch->packets[i].data + batch->packets[i].l3_off);
    CHECK(r.len == batch->packets[i].l3_len);
    const flow_info& info = h.info_of(r);
    CHECK(info.client == e.a);
    CHECK(info.server_port == 5060);
    CHECK(info.proto == app_protocol::sip);
  }
  CHECK(std::string(reinterpret_cast<const char*>(fb.data_of(fb.raw[1])) + 28, 7) == "SIP/2.0");
  const auto& c = h.c().counters();
  CHECK(c.raw_packets == 3);
  CHECK(c.raw_bytes == batch->packets[0].l3_len + batch->packets[1].l3_len +
                           batch->packets[2].l3_len);
  CHECK(c.raw_truncated == 0);
  CHECK(c.raw_dropped == 0);
  // The flow's info is sent again with the next output batch.
  h.out.clear();
  h.b.udp(e, false, 5 * ms, "SIP/2.0 200 OK\r\n");
  h.run();
  REQUIRE(h.out.flows.raw.size() == 1);
  REQUIRE(h.out.flows.raw_infos.size() == 1);
  CHECK(h.out.flows.raw_infos[0].flow_id == h.info_of(h.out.flows.raw[0]).flow_id);
}

TEST_CASE("classifier raw: every TCP packet of a selected flow, flags and sequence") {
  harness h;
  h.opts.raw_protocols = {app_protocol::ftp, app_protocol::sip};
  auto e = pair_on(21, 6);
  h.b.tcp(e, true, 0, syn, 100);
  h.b.tcp(e, false, 1 * ms, syn | ack, 500, {}, 101);
  h.b.tcp(e, true, 2 * ms, ack, 101, {}, 501);
  h.b.tcp(e, false, 3 * ms, psh | ack, 501, "220 ready\r\n", 101);
  h.b.tcp(e, true, 4 * ms, psh | ack, 101, "USER anonymous\r\n", 512);
  h.b.tcp(e, true, 4 * ms, psh | ack, 101, "USER anonymous\r\n", 512); // retransmission
  h.b.tcp(e, true, 5 * ms, fin | ack, 117, {}, 512);
  h.b.tcp(pair_on(80, 6), true, 6 * ms, syn, 1);
  auto batch = h.run();
  auto& fb = h.out.flows;
  REQUIRE(fb.raw.size() == 7);
  CHECK(fb.raw[0].tcp_flags == syn);
  CHECK(fb.raw[0].tcp_seq == 100);
  CHECK(fb.raw[1].dir == direction::server_to_client);
  CHECK(fb.raw[1].tcp_flags == (syn | ack));
  CHECK(fb.raw[1].tcp_seq == 500);
  CHECK(fb.raw[4].tcp_seq == 101);
  CHECK(fb.raw[6].tcp_flags == (fin | ack));
  for (size_t i = 0; i < fb.raw.size(); ++i) {
    CAPTURE(i);
    CHECK(fb.raw[i].meta_proto == 4);
    CHECK(fb.raw[i].proto == app_protocol::ftp);
    CHECK(fb.data_of(fb.raw[i]) == batch->packets[i].data);
  }
  CHECK(h.c().counters().raw_packets == 7);
}

TEST_CASE("classifier raw: RAW_DATA is capped at raw_max_bytes (counted)") {
  harness h;
  h.opts.raw_protocols = {app_protocol::sip};
  h.opts.raw_max_bytes = 30;
  auto e = pair_on(5060, 17);
  h.b.udp(e, true, 0, "INVITE sip:bob SIP/2.0\r\n"); // 28 + 24 bytes
  h.b.udp(e, false, 1 * ms, "x");                     // 29 bytes: kept whole
  auto batch = h.run();
  auto& fb = h.out.flows;
  REQUIRE(fb.raw.size() == 2);
  CHECK(fb.raw[0].len == 30);
  CHECK(fb.raw[1].len == 29);
  CHECK(h.c().counters().raw_truncated == 1);
  CHECK(h.c().counters().raw_bytes == 59);
}

TEST_CASE("classifier raw: at most raw_max_packets per flow, the rest counted") {
  harness h;
  h.opts.raw_protocols = {app_protocol::sip};
  h.opts.raw_max_packets = 2;
  auto e = pair_on(5060, 17);
  auto other = pair_on(5060, 17);
  other.pa = 6666;
  for (int i = 0; i < 5; ++i)
    h.b.udp(e, i % 2 == 0, static_cast<uint64_t>(i) * ms, "OPTIONS sip:x SIP/2.0\r\n");
  h.b.udp(other, true, 6 * ms, "OPTIONS sip:y SIP/2.0\r\n");
  h.run();
  auto& fb = h.out.flows;
  REQUIRE(fb.raw.size() == 3); // two of the first flow, one of the other
  CHECK(fb.raw_infos.size() == 2);
  CHECK(h.info_of(fb.raw[2]).client_port == 6666);
  CHECK(h.c().counters().raw_packets == 3);
  CHECK(h.c().counters().raw_dropped == 3);
  // The bound holds over the flow's life, across output batches.
  h.out.clear();
  h.b.udp(e, true, 7 * ms, "BYE sip:x SIP/2.0\r\n");
  h.run();
  CHECK(h.out.flows.raw.empty());
  CHECK(h.c().counters().raw_dropped == 4);
}

TEST_CASE("classifier raw: packets before a probe match are not exported") {
  harness h;
  h.opts.raw_protocols = {app_protocol::sip};
  auto e = pair_on(7000, 17); // no port match: probed
  h.b.udp(e, true, 0, "hello");
  h.b.udp(e, true, 1 * ms, "INVITE sip:bob SIP/2.0\r\n");
  h.b.udp(e, false, 2 * ms, "SIP/2.0 180 Ringing\r\n");
  h.run();
  auto& fb = h.out.flows;
  REQUIRE(fb.raw.size() == 2);
  CHECK(fb.raw[0].ts_ns == 1 * ms);
  CHECK(fb.raw[1].dir == direction::server_to_client);
}

TEST_CASE("classifier raw: an IP-reassembled datagram is one item, copied") {
  harness h;
  h.opts.raw_protocols = {app_protocol::sip};
  ip_address a = v4(192, 0, 2, 1), b = v4(192, 0, 2, 60);
  std::string payload = "INVITE sip:bob@example.org SIP/2.0\r\n\r\n!";
  auto l4 = udp_header_and_payload(5060, 5060, payload); // 47 bytes
  std::vector<uint8_t> part1(l4.begin(), l4.begin() + 24), part2(l4.begin() + 24, l4.end());
  h.b.raw(ipv4_packet(a, b, 17, part1, 0x77, 0, true), 1 * ms);
  h.b.raw(ipv4_packet(a, b, 17, part2, 0x77, 24, false), 2 * ms);
  h.run();
  auto& fb = h.out.flows;
  REQUIRE(fb.raw.size() == 1);
  const raw_packet& r = fb.raw[0];
  CHECK(r.source == raw_packet::own_bytes);
  CHECK(fb.sources.empty());
  REQUIRE(r.len == 20 + l4.size());
  const uint8_t* d = fb.data_of(r);
  CHECK(d[0] == 0x45);
  CHECK(d[9] == 17);
  CHECK(std::memcmp(d + 12, a.bytes.data(), 4) == 0);
  CHECK(std::string(reinterpret_cast<const char*>(d) + 28, payload.size()) == payload);
}
