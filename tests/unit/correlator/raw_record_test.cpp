// SPDX-License-Identifier: Apache-2.0
// The correlator's raw records (correlator.hpp, "Raw metadata").
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/subscribers.hpp"
#include "correlator/correlator.hpp"

using namespace metaprobe;

namespace {

ip_address v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  uint8_t x[4] = {a, b, c, d};
  return ip_address::v4(x);
}

std::string bytes(const ip_address& a) {
  return std::string(reinterpret_cast<const char*>(a.bytes.data()), a.size());
}

// One SIP-over-TCP flow 10.0.0.9:5555 -> 10.0.0.1:5060 with two raw packets
// (client SYN, server SYN/ACK) whose bytes live in flow_batch::bytes, and
// one flow summary of a flow without a parser.
flow_batch sample() {
  flow_batch in;
  flow_info info;
  info.flow_id = 4;
  info.session_id = 0x1122334455667788ull;
  info.client = v4(10, 0, 0, 9);
  info.server = v4(10, 0, 0, 1);
  info.client_port = 5555;
  info.server_port = 5060;
  info.l4_proto = 6;
  info.proto = app_protocol::sip;
  info.l2.has_ethernet = true;
  for (uint8_t i = 0; i < 6; ++i) {
    info.l2.src_mac[i] = static_cast<uint8_t>(0xa0 + i);
    info.l2.dst_mac[i] = static_cast<uint8_t>(0xb0 + i);
  }
  info.l2.vlan_id = 100;
  in.raw_infos.push_back(info);
  const std::string ip1 = std::string("\x45\x00\x00\x28", 4) + std::string(36, '\x01');
  const std::string ip2 = std::string("\x45\x00\x00\x2c", 4) + std::string(40, '\x02');
  in.bytes.assign(ip1.begin(), ip1.end());
  in.bytes.insert(in.bytes.end(), ip2.begin(), ip2.end());
  raw_packet r;
  r.info_index = 0;
  r.ts_ns = 1'700'000'000'500'000'000ull;
  r.dir = direction::client_to_server;
  r.tcp_flags = 0x02;
  r.tcp_seq = 100;
  r.proto = app_protocol::sip;
  r.meta_proto = 3;
  r.source = raw_packet::own_bytes;
  r.offset = 0;
  r.len = static_cast<uint32_t>(ip1.size());
  in.raw.push_back(r);
  r.ts_ns += 1'000'000'000ull;
  r.dir = direction::server_to_client;
  r.tcp_flags = 0x12;
  r.tcp_seq = 500;
  r.offset = static_cast<uint32_t>(ip1.size());
  r.len = static_cast<uint32_t>(ip2.size());
  in.raw.push_back(r);
  flow_summary s;
  s.info = info;
  s.info.proto = app_protocol::unknown;
  s.dir[0].packets = 1;
  s.dir[0].bytes = 40;
  in.summaries.push_back(s);
  return in;
}

} // namespace

TEST_CASE("correlator: raw packets become Raw records in the meta group") {
  correlator_options o;
  o.bridge_channel_num = 7;
  correlator c(o);
  export_batches out;
  flow_batch in = sample();
  c.process(std::move(in), out);
  auto& meta = out.groups[static_cast<int>(sink_group::meta)];
  REQUIRE(meta.size() == 2);
  CHECK(out.groups[static_cast<int>(sink_group::fullflow)].size() == 1); // the summary
  CHECK(c.counters().raw_records == 2);

  REQUIRE(meta[0].has_raw());
  const v1::Raw& a = meta[0].raw();
  CHECK(a.meta().time_stamp() == 1'700'000'000u);
  CHECK(a.meta().ip_source() == bytes(v4(10, 0, 0, 9)));
  CHECK(a.meta().ip_destination() == bytes(v4(10, 0, 0, 1)));
  CHECK(a.meta().port_source() == 5555);
  CHECK(a.meta().port_destination() == 5060);
  CHECK(a.meta().protocol() == 6);
  CHECK(a.meta().session_id() == 0x1122334455667788ull);
  CHECK(a.meta().vlan_id() == 100);
  CHECK(a.meta().bridge_channel_num() == 7);
  CHECK(a.meta().source_mac() == "\xa0\xa1\xa2\xa3\xa4\xa5");
  CHECK(a.meta().login().empty());
  CHECK(a.dir_data() == 0);
  CHECK(a.flw_dir() == 0); // no subscriber map: the client is the subscriber
  CHECK(a.vdpi_proto() == 5);
  CHECK(a.meta_proto() == 3);
  CHECK(a.tcp_flags() == 0x02);
  CHECK(a.tcp_sequence() == 100);
  REQUIRE(a.raw_data().size() == 40);
  CHECK(a.raw_data().compare(0, 4, std::string("\x45\x00\x00\x28", 4)) == 0);

  REQUIRE(meta[1].has_raw());
  const v1::Raw& b = meta[1].raw();
  CHECK(b.meta().time_stamp() == 1'700'000'001u);
  CHECK(b.meta().ip_source() == bytes(v4(10, 0, 0, 1)));
  CHECK(b.meta().port_source() == 5060);
  CHECK(b.meta().port_destination() == 5555);
  CHECK(b.meta().source_mac() == "\xb0\xb1\xb2\xb3\xb4\xb5");
  CHECK(b.dir_data() == 1);
  CHECK(b.flw_dir() == 1);
  CHECK(b.tcp_flags() == 0x12);
  CHECK(b.tcp_sequence() == 500);
  REQUIRE(b.raw_data().size() == 44);
  CHECK(b.raw_data().compare(0, 4, std::string("\x45\x00\x00\x2c", 4)) == 0);
}

TEST_CASE("correlator: with a subscriber map, FLW_DIR follows the subscriber's side") {
  // The subscriber is the server (e.g. a SIP phone reached from outside).
  subscriber_map subs;
  subs.add(v4(10, 0, 0, 1), "alice");
  correlator_options o;
  o.subscribers = &subs;
  correlator c(o);
  export_batches out;
  c.process(sample(), out);
  auto& meta = out.groups[static_cast<int>(sink_group::meta)];
  REQUIRE(meta.size() == 2);
  // client -> server = inet -> subs
  CHECK(meta[0].raw().dir_data() == 0);
  CHECK(meta[0].raw().flw_dir() == 1);
  CHECK(meta[0].raw().meta().login() == "alice");
  CHECK(meta[1].raw().dir_data() == 1);
  CHECK(meta[1].raw().flw_dir() == 0);

  // Neither side known: the client is taken for the subscriber.
  subscriber_map other;
  other.add(v4(192, 0, 2, 1), "bob");
  o.subscribers = &other;
  correlator c2(o);
  export_batches out2;
  c2.process(sample(), out2);
  auto& m2 = out2.groups[static_cast<int>(sink_group::meta)];
  REQUIRE(m2.size() == 2);
  CHECK(m2[0].raw().flw_dir() == 0);
  CHECK(m2[1].raw().flw_dir() == 1);
}

TEST_CASE("correlator: raw data referenced in a packet batch, bad index skipped") {
  correlator c(correlator_options{});
  flow_batch in = sample();
  auto pb = std::make_shared<packet_batch>();
  pb->arena = {0x60, 0x00, 0x00, 0x00, 0x99};
  in.sources.push_back(pb);
  in.raw[0].source = 0;
  in.raw[0].ptr = pb->arena.data();
  in.raw[0].len = 4;
  in.raw[1].info_index = 9; // no such info: skipped
  export_batches out;
  c.process(std::move(in), out);
  auto& meta = out.groups[static_cast<int>(sink_group::meta)];
  REQUIRE(meta.size() == 1);
  CHECK(meta[0].raw().raw_data() == std::string("\x60\x00\x00\x00", 4));
}
