// SPDX-License-Identifier: Apache-2.0
// Random traffic (fixed seeds) through a classifier with tiny limits: every
// flow table, reassembly and timeout path gets hit, and the output must keep
// the invariants of flow_checker.hpp.

#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "classifier/classifier_core.hpp"
#include "flow_checker.hpp"
#include "test_packets.hpp"

using namespace metaprobe;
using namespace metaprobe::test;

namespace {

classifier_counters run_random(uint32_t seed, bool real_registry) {
  std::mt19937 rng(seed);
  auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  classifier_options opts;
  opts.max_flows = 8;
  opts.max_ooo_bytes = 256;
  opts.max_ooo_segments = 4;
  opts.inactive_timeout_ns = 1 * sec;
  opts.active_timeout_ns = 2 * sec;
  opts.tcp_close_linger_ns = 100 * ms;
  opts.max_probe_packets = 2;
  opts.expire_per_packet = 2;
  std::vector<protocol_entry> none;
  classifier_core core(opts, 2, session_id_generator(2, seed),
                       real_registry ? protocol_registry() : none);
  classifier_output out;
  checker chk;

  const ip_address addrs[] = {v4(10, 0, 0, 1), v4(10, 0, 0, 2), v4(192, 168, 1, 7),
                              v4(172, 16, 0, 9)};
  const uint16_t ports[] = {80, 53, 443, 1234, 5000, 8080};
  const uint8_t flag_set[] = {syn, syn | ack, ack, ack | psh, fin | ack, rst, rst | ack, 0, fin};
  const char* starts[] = {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n", "",
                          "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"};
  uint32_t seqs[64] = {};
  for (auto& s : seqs)
    s = static_cast<uint32_t>(rng());
  uint64_t ts = 1 * sec;
  uint64_t bad = 0;
  for (int round = 0; round < 200; ++round) {
    batch_builder b;
    int n = 1 + static_cast<int>(pick(64));
    for (int i = 0; i < n; ++i) {
      ts += pick(30) * ms;
      if (pick(50) == 0)
        ts -= std::min<uint64_t>(ts, 5 * ms); // a little disorder in time
      uint32_t kind = pick(40);
      if (kind == 0) {
        b.bad(decode_status::malformed, ts);
        ++bad;
        continue;
      }
      // Half the packets belong to two long-lived "hot" flows (active
      // timeouts, deep reordering), the rest to many short ones (evictions).
      bool hot = pick(2) == 0;
      const ip_address& c = hot ? addrs[0] : addrs[pick(2)];
      const ip_address& s = hot ? addrs[2] : addrs[2 + pick(2)];
      uint16_t cp = hot ? ports[3] : ports[3 + pick(3)];
      uint16_t sp = hot ? ports[pick(2)] : ports[pick(6)];
      if (kind == 1) { // a fragmented UDP datagram, sometimes incomplete
        std::string payload(8 + 8 * pick(8), 'f');
        auto l4 = udp_header_and_payload(cp, sp, payload);
        size_t cut = 8 * (1 + pick(static_cast<uint32_t>(l4.size() / 8)));
        cut = std::min(cut, l4.size() - 1);
        cut -= cut % 8;
        if (cut == 0)
          cut = 8;
        std::vector<uint8_t> p1(l4.begin(), l4.begin() + static_cast<long>(cut));
        std::vector<uint8_t> p2(l4.begin() + static_cast<long>(cut), l4.end());
        uint16_t id = static_cast<uint16_t>(pick(4));
        b.raw(ipv4_packet(c, s, 17, p1, id, 0, true), ts);
        if (pick(3))
          b.raw(ipv4_packet(c, s, 17, p2, id, static_cast<uint16_t>(cut), false), ts);
        continue;
      }
      bool tcp = hot || pick(3) != 0;
      bool from_client = pick(2) == 0;
      std::string payload = starts[pick(4)];
      payload.resize(pick(3) ? payload.size() : pick(200), 'x');
      endpoint_pair e{c, s, cp, sp, static_cast<uint8_t>(tcp ? 6 : 17)};
      if (!tcp) {
        b.udp(e, from_client, ts, payload);
        continue;
      }
      uint32_t& base = seqs[(cp * 7u + sp * 3u + (from_client ? 1u : 0u) +
                             static_cast<uint32_t>(c.bytes[3]) * 11u + s.bytes[3]) % 64];
      uint8_t flags = pick(10) == 0 ? static_cast<uint8_t>(pick(256)) : flag_set[pick(9)];
      if (hot && pick(8))
        flags = ack; // keep hot flows open most of the time
      uint32_t seq = base + static_cast<uint32_t>(static_cast<int32_t>(pick(600)) - 200);
      if (pick(2))
        seq = base;
      if (seq == base)
        base += static_cast<uint32_t>(payload.size()) + ((flags & (syn | fin)) ? 1u : 0u);
      b.tcp(e, from_client, ts, flags, seq, payload);
    }
    core.process(b.build(), out);
    chk.take(out);
    if (pick(5) == 0) {
      core.advance_time(ts + pick(3000) * ms, out);
      chk.take(out);
    }
  }
  core.flush_all(ts, out);
  chk.take(out);
  const auto& cn = core.counters();
  uint64_t ok = cn.by_status[static_cast<size_t>(decode_status::ok)];
  CHECK(chk.errors == 0);
  CHECK(cn.by_status[static_cast<size_t>(decode_status::malformed)] == bad);
  CHECK(chk.summary_packets - chk.summary_fragments == ok - cn.fragments);
  CHECK(chk.final_summaries == cn.flows_created);
  CHECK(chk.open_flows.empty());
  CHECK(core.active_flows() == 0);
  CHECK(cn.evictions > 0);
  CHECK(cn.flows_created > 8);
  return cn;
}

} // namespace

TEST_CASE("classifier: random traffic with tiny limits keeps the invariants") {
  classifier_counters sum;
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    CAPTURE(seed);
    auto c = run_random(seed, true);
    sum.parser_flows += c.parser_flows;
    sum.events += c.events;
    sum.reassembled += c.reassembled;
    sum.port_reuse += c.port_reuse;
    sum.tcp.gaps += c.tcp.gaps;
    sum.tcp.limit_drops += c.tcp.limit_drops;
    sum.tcp.out_of_order += c.tcp.out_of_order;
    sum.tcp.retransmitted += c.tcp.retransmitted;
    for (size_t i = 0; i < sum.flows_ended.size(); ++i)
      sum.flows_ended[i] += c.flows_ended[i];
  }
  // The random traffic did reach the paths it is meant to stress.
  CHECK(sum.parser_flows > 0);
  CHECK(sum.reassembled > 0);
  CHECK(sum.tcp.gaps > 0);
  CHECK(sum.tcp.limit_drops > 0);
  CHECK(sum.tcp.out_of_order > 0);
  CHECK(sum.tcp.retransmitted > 0);
  CHECK(sum.flows_ended[static_cast<size_t>(flow_end_reason::idle)] > 0);
  CHECK(sum.flows_ended[static_cast<size_t>(flow_end_reason::active)] > 0);
  CHECK(sum.flows_ended[static_cast<size_t>(flow_end_reason::end)] > 0);
  CHECK(sum.flows_ended[static_cast<size_t>(flow_end_reason::evicted)] > 0);
  MESSAGE("events " << sum.events << ", port reuse " << sum.port_reuse << ", gaps "
                    << sum.tcp.gaps << ", limit drops " << sum.tcp.limit_drops);
  run_random(99, false); // no protocols at all: statistics only
}
