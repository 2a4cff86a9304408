// SPDX-License-Identifier: Apache-2.0
// Unit tests of the correlator: FlowMeta filling and the expected-connection
// table that gives FTP data flows the control flow's SESSION_ID.
#include <doctest/doctest.h>

#include <array>
#include <vector>

#include "correlator/correlator.hpp"
#include "correlator/expectations.hpp"
#include "correlator/subscriber_source.hpp"

using namespace metaprobe;

namespace {

constexpr uint64_t sec = 1000000000ull;
constexpr uint8_t tcp = 6;
constexpr uint8_t udp = 17;

ip_address v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  const std::array<uint8_t, 4> x{a, b, c, d};
  return ip_address::v4(x.data());
}

ip_address v6(uint16_t first, uint16_t last) {
  std::array<uint8_t, 16> x{};
  x[0] = static_cast<uint8_t>(first >> 8);
  x[1] = static_cast<uint8_t>(first);
  x[14] = static_cast<uint8_t>(last >> 8);
  x[15] = static_cast<uint8_t>(last);
  return ip_address::v6(x.data());
}

flow_info flow(uint64_t session, ip_address client, uint16_t cport, ip_address server,
               uint16_t sport, uint64_t first_ts, uint8_t proto = tcp) {
  flow_info f;
  f.flow_id = session;
  f.session_id = session;
  f.client = client;
  f.server = server;
  f.client_port = cport;
  f.server_port = sport;
  f.l4_proto = proto;
  f.first_ts_ns = first_ts;
  return f;
}

// The FTP parser's data-connection record on control flow `ctl`, answered
// at `ts` (the record goes client -> server).
record_batch ftp_record(const flow_info& ctl, uint64_t ts, expected_connection e,
                        direction dir = direction::client_to_server) {
  record_batch b;
  b.infos.push_back(ctl);
  record_batch::item it;
  it.rec.record.mutable_ftp()->set_mode(e.mode);
  it.rec.record.mutable_ftp()->set_result_code(e.mode ? 227 : 200);
  it.rec.ts_ns = ts;
  it.rec.dir = dir;
  it.rec.expect = e;
  it.info_index = 0;
  b.items.push_back(std::move(it));
  return b;
}

expected_connection expect(ip_address server, uint16_t port, uint8_t mode) {
  expected_connection e;
  e.server = server;
  e.server_port = port;
  e.mode = mode;
  return e;
}

flow_summary summary(const flow_info& f, uint64_t end_ts,
                     flow_end_reason why = flow_end_reason::end) {
  flow_summary s;
  s.info = f;
  s.reason = why;
  for (auto& d : s.dir) {
    d.packets = 3;
    d.bytes = 300;
    d.first_ts_ns = f.first_ts_ns;
    d.last_ts_ns = end_ts;
  }
  return s;
}

// SESSION_IDs of the fullflow records the summaries give.
std::vector<uint64_t> fullflow_sessions(correlator& c, std::vector<flow_summary> s) {
  export_batches out;
  c.process(std::move(s), out);
  std::vector<uint64_t> ids;
  for (const auto& r : out.groups[static_cast<int>(sink_group::fullflow)])
    ids.push_back(r.fullflow().meta().session_id());
  return ids;
}

uint64_t record_session(correlator& c, record_batch b) {
  export_batches out;
  c.process(std::move(b), out);
  for (const auto& g : out.groups)
    for (const auto& r : g)
      if (r.has_ftp())
        return r.ftp().meta().session_id();
  return 0;
}

const ip_address ftp_client = v4(192, 168, 1, 212);
const ip_address ftp_server = v4(90, 130, 70, 73);

} // namespace

TEST_CASE("correlator: passive IPv4 data flow takes the control SESSION_ID") {
  correlator c({});
  const auto ctl = flow(100, ftp_client, 50694, ftp_server, 21, 0);
  CHECK(record_session(c, ftp_record(ctl, 1 * sec, expect(ftp_server, 25685, 1))) == 100);
  CHECK(c.expectations().counters().learned == 1);
  CHECK(c.expectations().expectations() == 1);

  const auto data = flow(200, ftp_client, 50695, ftp_server, 25685, 1 * sec + 300000);
  auto ids = fullflow_sessions(c, {summary(data, 2 * sec)});
  REQUIRE(ids.size() == 2); // both directions
  CHECK(ids[0] == 100);
  CHECK(ids[1] == 100);
  CHECK(c.expectations().counters().matched == 1);
  CHECK(c.expectations().expectations() == 0); // consumed
  CHECK(c.expectations().bindings() == 0);     // final summary: released

  // The control flow itself and unrelated flows keep their own ids.
  CHECK(fullflow_sessions(c, {summary(ctl, 9 * sec)}) == std::vector<uint64_t>{100, 100});
  const auto other = flow(300, ftp_client, 50700, ftp_server, 80, 3 * sec);
  CHECK(fullflow_sessions(c, {summary(other, 4 * sec)}) == std::vector<uint64_t>{300, 300});
}

TEST_CASE("correlator: one data connection per announcement") {
  correlator c({});
  const auto ctl = flow(100, ftp_client, 50694, ftp_server, 21, 0);
  record_session(c, ftp_record(ctl, 1 * sec, expect(ftp_server, 25685, 1)));
  const auto first = flow(200, ftp_client, 50695, ftp_server, 25685, 2 * sec);
  const auto second = flow(201, ftp_client, 50696, ftp_server, 25685, 3 * sec);
  CHECK(fullflow_sessions(c, {summary(first, 4 * sec)}) == std::vector<uint64_t>{100, 100});
  CHECK(fullflow_sessions(c, {summary(second, 5 * sec)}) == std::vector<uint64_t>{201, 201});
  CHECK(c.expectations().counters().matched == 1);
}

TEST_CASE("correlator: active mode, the FTP server connects to the client's endpoint") {
  correlator c({});
  const auto ctl = flow(100, ftp_client, 50694, ftp_server, 21, 0);
  // PORT 192,168,1,212,7,208 accepted at 1 s.
  record_session(c, ftp_record(ctl, 1 * sec, expect(ftp_client, 2000, 0)));
  // The data flow's client is the FTP server (port 20), its server the
  // announced endpoint.
  const auto data = flow(200, ftp_server, 20, ftp_client, 2000, 1 * sec + 5000);
  CHECK(fullflow_sessions(c, {summary(data, 2 * sec)}) == std::vector<uint64_t>{100, 100});
  // A flow the other way round (the client connecting to the server's
  // port 2000) is not the announced one.
  record_session(c, ftp_record(ctl, 3 * sec, expect(ftp_client, 2001, 0)));
  const auto wrong = flow(201, ftp_client, 2001, ftp_server, 40000, 4 * sec);
  CHECK(fullflow_sessions(c, {summary(wrong, 5 * sec)}) == std::vector<uint64_t>{201, 201});
}

TEST_CASE("correlator: IPv6, EPSV's address is the control flow's server") {
  correlator c({});
  const ip_address cli = v6(0x2a00, 0x11);
  const ip_address srv = v6(0x2a00, 0x1);
  const auto ctl = flow(100, cli, 44724, srv, 21, 0);
  // 229 (|||6446|): address family 0 = the record's destination.
  record_session(c, ftp_record(ctl, 1 * sec, expect(ip_address{}, 6446, 1)));
  const auto data = flow(200, cli, 44725, srv, 6446, 2 * sec);
  CHECK(fullflow_sessions(c, {summary(data, 3 * sec)}) == std::vector<uint64_t>{100, 100});

  // A capture that started mid-session can orient the control flow the
  // other way round: the record's destination is then the flow's client.
  const auto rev = flow(101, srv, 21, cli, 44730, 0);
  record_session(c, ftp_record(rev, 4 * sec, expect(ip_address{}, 6447, 1),
                               direction::server_to_client));
  const auto data2 = flow(201, cli, 44731, srv, 6447, 5 * sec);
  CHECK(fullflow_sessions(c, {summary(data2, 6 * sec)}) == std::vector<uint64_t>{101, 101});

  // EPRT |2|...|: an IPv6 active endpoint.
  record_session(c, ftp_record(ctl, 7 * sec, expect(cli, 50123, 0)));
  const auto active = flow(202, srv, 20, cli, 50123, 8 * sec);
  CHECK(fullflow_sessions(c, {summary(active, 9 * sec)}) == std::vector<uint64_t>{100, 100});
  // An IPv4 flow to the same port numbers does not match an IPv6 endpoint.
  record_session(c, ftp_record(ctl, 10 * sec, expect(srv, 6500, 1)));
  const auto v4flow = flow(203, ftp_client, 1, ftp_server, 6500, 11 * sec);
  CHECK(fullflow_sessions(c, {summary(v4flow, 12 * sec)}) == std::vector<uint64_t>{203, 203});
  CHECK(c.expectations().counters().matched == 3);
}

TEST_CASE("correlator: a flow that started before the announcement or too late keeps its id") {
  expectation_options o;
  o.window_ns = 120 * sec;
  o.hold_ns = 300 * sec;
  correlator c({0, nullptr, o});
  const auto ctl = flow(100, ftp_client, 50694, ftp_server, 21, 0);
  record_session(c, ftp_record(ctl, 10 * sec, expect(ftp_server, 25685, 1)));
  const auto before = flow(200, ftp_client, 50695, ftp_server, 25685, 9 * sec);
  CHECK(fullflow_sessions(c, {summary(before, 11 * sec)}) == std::vector<uint64_t>{200, 200});
  const auto late = flow(201, ftp_client, 50696, ftp_server, 25685, 131 * sec);
  CHECK(fullflow_sessions(c, {summary(late, 132 * sec)}) == std::vector<uint64_t>{201, 201});
  CHECK(c.expectations().counters().matched == 0);
  // Still in the table (a flow that started in time may report later) ...
  CHECK(c.expectations().expectations() == 1);
  const auto in_time = flow(202, ftp_client, 50697, ftp_server, 25685, 129 * sec);
  CHECK(fullflow_sessions(c, {summary(in_time, 400 * sec)}) == std::vector<uint64_t>{100, 100});
}

TEST_CASE("correlator: UDP flows do not match") {
  correlator c({});
  const auto ctl = flow(100, ftp_client, 50694, ftp_server, 21, 0);
  record_session(c, ftp_record(ctl, 1 * sec, expect(ftp_server, 25685, 1)));
  const auto dgram = flow(200, ftp_client, 50695, ftp_server, 25685, 2 * sec, udp);
  CHECK(fullflow_sessions(c, {summary(dgram, 3 * sec)}) == std::vector<uint64_t>{200, 200});
  CHECK(c.expectations().expectations() == 1);
}

TEST_CASE("correlator: a matched flow keeps the control id until its final summary") {
  correlator c({});
  const auto ctl = flow(100, ftp_client, 50694, ftp_server, 21, 0);
  record_session(c, ftp_record(ctl, 1 * sec, expect(ftp_server, 25685, 1)));
  const auto data = flow(200, ftp_client, 50695, ftp_server, 25685, 2 * sec);
  // Active-timeout reports, then the end.
  CHECK(fullflow_sessions(c, {summary(data, 302 * sec, flow_end_reason::active)}) ==
        std::vector<uint64_t>{100, 100});
  CHECK(c.expectations().bindings() == 1);
  CHECK(fullflow_sessions(c, {summary(data, 602 * sec, flow_end_reason::active)}) ==
        std::vector<uint64_t>{100, 100});
  CHECK(fullflow_sessions(c, {summary(data, 700 * sec, flow_end_reason::end)}) ==
        std::vector<uint64_t>{100, 100});
  CHECK(c.expectations().bindings() == 0);
  CHECK(c.expectations().counters().matched == 1);
}

TEST_CASE("correlator: a data flow reported before the announcement keeps its id") {
  // The ordering caveat: the summary path overtook the record path.
  correlator c({});
  const auto ctl = flow(100, ftp_client, 50694, ftp_server, 21, 0);
  const auto data = flow(200, ftp_client, 50695, ftp_server, 25685, 2 * sec);
  CHECK(fullflow_sessions(c, {summary(data, 3 * sec)}) == std::vector<uint64_t>{200, 200});
  record_session(c, ftp_record(ctl, 1 * sec, expect(ftp_server, 25685, 1)));
  CHECK(c.expectations().counters().matched == 0);
  CHECK(c.expectations().expectations() == 1); // expires later, unmatched
}

TEST_CASE("expectation table: expiry in packet time") {
  expectation_options o;
  o.window_ns = 120 * sec;
  o.hold_ns = 30 * sec;
  expectation_table t(o);
  t.learn(ftp_server, 1000, 1, 100, 10 * sec);
  t.learn(ftp_server, 1001, 1, 100, 20 * sec);
  t.advance(160 * sec); // exactly 10 s + 150 s: still kept
  CHECK(t.expectations() == 2);
  t.advance(160 * sec + 1);
  CHECK(t.expectations() == 1);
  CHECK(t.counters().expired == 1);
  t.advance(200 * sec);
  CHECK(t.expectations() == 0);
  CHECK(t.counters().expired == 2);
  // The clock never goes back; nothing is left to match.
  t.advance(5 * sec);
  CHECK(t.session_for(7, tcp, ftp_server, 1000, 15 * sec) == 7);
  CHECK(t.counters().matched == 0);
}

TEST_CASE("expectation table: a newer announcement replaces the older") {
  expectation_table t;
  t.learn(ftp_server, 1000, 1, 100, 1 * sec);
  t.learn(ftp_server, 1000, 1, 101, 2 * sec);
  CHECK(t.expectations() == 1);
  CHECK(t.counters().learned == 2);
  CHECK(t.counters().expired == 1);
  CHECK(t.session_for(7, tcp, ftp_server, 1000, 3 * sec) == 101);
}

TEST_CASE("expectation table: capacity") {
  expectation_options o;
  o.capacity = 2;
  expectation_table t(o);
  t.learn(ftp_server, 1000, 1, 100, 1 * sec);
  t.learn(ftp_server, 1001, 1, 100, 1 * sec);
  t.learn(ftp_server, 1002, 1, 100, 1 * sec); // table full: not kept
  CHECK(t.expectations() == 2);
  CHECK(t.counters().learned == 2);
  CHECK(t.counters().dropped == 1);
  CHECK(t.session_for(7, tcp, ftp_server, 1002, 2 * sec) == 7);
  // Bindings are capped too: a third concurrent match is not remembered.
  CHECK(t.session_for(8, tcp, ftp_server, 1000, 2 * sec) == 100);
  CHECK(t.session_for(9, tcp, ftp_server, 1001, 2 * sec) == 100);
  t.learn(ftp_server, 1003, 1, 100, 2 * sec);
  CHECK(t.session_for(10, tcp, ftp_server, 1003, 3 * sec) == 100);
  CHECK(t.bindings() == 2);
  CHECK(t.counters().dropped == 2);
  CHECK(t.session_for(10, tcp, ftp_server, 1003, 3 * sec) == 10);
  CHECK(t.session_for(8, tcp, ftp_server, 1000, 3 * sec) == 100); // still bound
  t.release(8);
  CHECK(t.session_for(8, tcp, ftp_server, 1000, 3 * sec) == 8);
  // Invalid announcements are ignored.
  t.learn(ip_address{}, 1004, 1, 100, 3 * sec);
  t.learn(ftp_server, 0, 1, 100, 3 * sec);
  CHECK(t.counters().learned == 3);
}

TEST_CASE("expectation table: learn, match, release cycles leave nothing behind") {
  expectation_options o;
  o.capacity = 8;
  expectation_table t(o);
  for (uint16_t i = 0; i < 2000; ++i) {
    t.learn(ftp_server, static_cast<uint16_t>(1000 + i), 1, 100, 1 * sec);
    CHECK(t.session_for(5000 + i, tcp, ftp_server, static_cast<uint16_t>(1000 + i), 2 * sec) ==
          100);
    t.release(5000 + i);
  }
  CHECK(t.counters().matched == 2000);
  CHECK(t.counters().dropped == 0);
  CHECK(t.expectations() == 0);
  CHECK(t.bindings() == 0);
}

TEST_CASE("correlator: a replaced subscriber map applies from the next batch on (SIGHUP)") {
  const auto client = v4(10, 9, 0, 1);
  auto alice = std::make_shared<subscriber_map>();
  alice->add(client, "alice");
  auto bob = std::make_shared<subscriber_map>();
  bob->add(client, "bob");
  auto source = std::make_shared<subscriber_source>(alice);
  correlator_options o;
  o.subscriber_updates = source;
  correlator c(o);
  const auto f = flow(300, client, 40000, v4(10, 7, 0, 1), 80, sec);
  auto login = [&]() {
    export_batches out;
    c.process({summary(f, 2 * sec)}, out);
    const auto& g = out.groups[static_cast<int>(sink_group::fullflow)];
    REQUIRE(!g.empty());
    return g[0].fullflow().meta().login();
  };
  CHECK(login() == "alice");
  const auto v = source->version();
  source->replace(bob);
  CHECK(source->version() != v);
  alice.reset(); // the correlator's hold keeps nothing dangling either way
  CHECK(login() == "bob");
  source->replace(nullptr);
  CHECK(login().empty());
  CHECK(c.counters().logins_attached == 4); // two directions, two batches with a login
}
