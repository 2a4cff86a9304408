// SPDX-License-Identifier: Apache-2.0
// DNS on ports that are not DNS's, end to end through the classifier with
// the real protocol registry: the strict probe claims the flow, the DNS
// parser gets both directions, and the answer's records come from the same
// flow as the query's (same flow id, so the correlator gives them one
// SESSION_ID). Random UDP on such a port is not claimed.
#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <random>
#include <string>

#include "../classifier/classifier_harness.hpp"
#include "parsers/dns/dns_parser.hpp"
#include "parsers/registry.hpp"

using namespace metaprobe;
using namespace metaprobe::test;

namespace {

struct wire {
  std::string b;
  wire& u8(unsigned v) {
    b.push_back(static_cast<char>(v & 0xff));
    return *this;
  }
  wire& u16(unsigned v) { return u8(v >> 8).u8(v); }
  wire& u32(uint32_t v) { return u16(v >> 16).u16(v & 0xffff); }
  wire& name(const std::string& dotted) {
    size_t i = 0;
    while (i < dotted.size()) {
      size_t j = dotted.find('.', i);
      if (j == std::string::npos)
        j = dotted.size();
      u8(static_cast<unsigned>(j - i));
      b.append(dotted, i, j - i);
      i = j + 1;
    }
    return u8(0);
  }
};

std::string query(unsigned id) {
  return wire().u16(id).u16(0x0120).u16(1).u16(0).u16(0).u16(0).name("svc.example.net")
      .u16(1).u16(1).b;
}
std::string answer(unsigned id) {
  return wire().u16(id).u16(0x8180).u16(1).u16(1).u16(0).u16(0).name("svc.example.net")
      .u16(1).u16(1).u16(0xc00c).u16(1).u16(1).u32(60).u16(4).u32(0xc0000201).b;
}
std::string framed(const std::string& m) {
  return std::string{static_cast<char>(m.size() >> 8), static_cast<char>(m.size() & 0xff)} + m;
}

// Runs the DNS events of the classifier's output through real DNS parsers,
// one per flow, as the parser stage does.
struct dns_stage {
  parser_options opts;
  parser_counters counters;
  std::map<uint64_t, std::unique_ptr<datagram_parser>> udp;
  std::map<uint64_t, std::unique_ptr<stream_parser>> tcp;
  std::map<uint64_t, record_sink> out; // records per flow id
  size_t opened = 0;

  void run(const stream_batch& b) {
    const protocol_entry* e = find_protocol(app_protocol::dns);
    REQUIRE(e != nullptr);
    for (const stream_event& ev : b.events) {
      switch (ev.kind) {
      case stream_event_kind::open:
        ++opened;
        if (b.infos[ev.info_index].l4_proto == 6)
          tcp[ev.flow_id] = e->make_stream(opts, counters);
        else
          udp[ev.flow_id] = e->make_datagram(opts, counters);
        break;
      case stream_event_kind::datagram:
        REQUIRE(udp.count(ev.flow_id));
        udp[ev.flow_id]->deliver(ev.dir, b.data_of(ev), ev.len, ev.ts_ns, out[ev.flow_id]);
        break;
      case stream_event_kind::data:
        REQUIRE(tcp.count(ev.flow_id));
        tcp[ev.flow_id]->deliver(ev.dir, b.data_of(ev), ev.len, ev.ts_ns, ev.seq,
                                 out[ev.flow_id]);
        break;
      case stream_event_kind::gap:
        REQUIRE(tcp.count(ev.flow_id));
        tcp[ev.flow_id]->gap(ev.dir, ev.len);
        break;
      default:
        break;
      }
    }
  }
};

struct harness : classifier_harness {
  harness() : classifier_harness(protocol_registry(), 0, 77) {}
  const stream_batch& dns() {
    static const stream_batch empty;
    const auto i = static_cast<size_t>(app_protocol::dns);
    return out.per_proto.size() > i ? out.per_proto[i] : empty;
  }
};

endpoint_pair on_port(uint16_t port, uint8_t proto) {
  endpoint_pair e;
  e.a = v4(192, 0, 2, 10);
  e.b = v4(198, 51, 100, 53);
  e.pa = 41000;
  e.pb = port;
  e.proto = proto;
  return e;
}


void check_pair(const record_sink& recs, unsigned id) {
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].dir == direction::client_to_server);
  CHECK_FALSE(recs[0].record.dns().response());
  CHECK(recs[0].record.dns().domain() == "svc.example.net");
  CHECK(recs[1].dir == direction::server_to_client);
  CHECK(recs[1].record.dns().response());
  CHECK(recs[1].record.dns().rdata_text() == "192.0.2.1");
  CHECK(recs[0].record.dns().dns_id() == id);
  CHECK(recs[1].record.dns().dns_id() == id);
}

} // namespace

TEST_CASE("DNS over UDP on port 5300: probe claims the flow, query and answer on it") {
  harness h;
  auto e = on_port(5300, 17);
  h.b.udp(e, true, 1 * ms, query(0x4242));
  h.b.udp(e, false, 2 * ms, answer(0x4242));
  h.run();
  dns_stage st;
  st.run(h.dns());
  CHECK(st.opened == 1);
  REQUIRE(st.out.size() == 1);
  check_pair(st.out.begin()->second, 0x4242);
  CHECK(st.out.begin()->second[0].record.dns().transport() == 0);
}

TEST_CASE("DNS over TCP on port 8053, with the length prefix in the same or its own segment") {
  for (bool split_prefix : {false, true}) {
    CAPTURE(split_prefix);
    harness h;
    auto e = on_port(8053, 6);
    h.b.tcp(e, true, 0, syn, 100);
    h.b.tcp(e, false, 1 * ms, syn | ack, 500, {}, 101);
    h.b.tcp(e, true, 2 * ms, ack, 101, {}, 501);
    const std::string q = framed(query(0x0707));
    if (split_prefix) {
      h.b.tcp(e, true, 3 * ms, ack | psh, 101, q.substr(0, 2), 501);
      h.b.tcp(e, true, 4 * ms, ack | psh, 103, q.substr(2), 501);
    } else {
      h.b.tcp(e, true, 3 * ms, ack | psh, 101, q, 501);
    }
    const std::string a = framed(answer(0x0707));
    h.b.tcp(e, false, 5 * ms, ack | psh, 501, a, static_cast<uint32_t>(101 + q.size()));
    h.run();
    dns_stage st;
    st.run(h.dns());
    CHECK(st.opened == 1);
    REQUIRE(st.out.size() == 1);
    check_pair(st.out.begin()->second, 0x0707);
    CHECK(st.out.begin()->second[1].record.dns().transport() == 1);
  }
}

TEST_CASE("random UDP on a high port is not taken for DNS") {
  harness h;
  h.opts.max_flows = 4096;
  std::mt19937_64 rng(99);
  for (unsigned i = 0; i < 2000; ++i) {
    auto e = on_port(static_cast<uint16_t>(20000 + i), 17);
    std::string p(20 + rng() % 300, '\0');
    for (auto& c : p)
      c = static_cast<char>(rng() & 0xff);
    h.b.udp(e, true, i * ms, p);
  }
  h.run();
  dns_stage st;
  st.run(h.dns());
  CHECK(st.opened == 0);
}
