// SPDX-License-Identifier: Apache-2.0
// Rough throughput of classifier_core::process() on one core with synthetic
// traffic (not a ctest). Builds every packet batch first, then times only
// process() plus the clearing of its output, as the classifier actor would.
//
// Traffic: `concurrent` flows alive at once, replaced as they finish:
//   40% TCP port 80 (parser: open/data/close events, zero copy)
//   40% TCP port 443 (protocol by port, no parser: statistics only)
//   10% TCP on other ports (probed, then unknown)
//   10% UDP port 53 (parser: datagram events), query + answer
// TCP flows: handshake, `data_packets` segments of 1200 bytes alternating
// directions (a quarter of the flows send two segments out of order), FIN,
// FIN, ACK.
//
// Build (release, from a configured build dir BUILD):
//   g++ -std=c++17 -O2 -DNDEBUG -I actors -I BUILD/proto tests/perf/classifier_perf.cpp \
//     BUILD/actors/classifier/libmp_classifier.a BUILD/actors/capture/libmp_capture.a \
//     BUILD/actors/parsers/libmp_parsers.a BUILD/actors/parsers/*/libmp_parser_*.a \
//     BUILD/actors/core/libmp_core.a BUILD/proto/libmp_proto.a -lprotobuf -lspdlog -lfmt -lpcap -lpthread
// Usage: classifier_perf [total_packets] [concurrent_flows]

#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "capture/decoder.hpp"
#include "classifier/classifier_core.hpp"

using namespace metaprobe;

namespace {

constexpr uint8_t fin = 0x01, syn = 0x02, psh = 0x08, ack = 0x10;

struct flow_gen {
  ip_address c, s;
  uint16_t cp = 0, sp = 0;
  uint8_t proto = 6;
  uint32_t cseq = 1000, sseq = 5000;
  int step = 0;
  int steps = 0;
  bool reorder = false; // swap the client's 2nd and 3rd data segments
};

struct generator {
  std::vector<uint8_t> payload = std::vector<uint8_t>(1600, 'x');
  uint32_t next_id = 0;
  int data_packets = 30;

  flow_gen make() {
    flow_gen f;
    uint32_t id = next_id++;
    uint8_t a[4] = {10, static_cast<uint8_t>(id >> 16), static_cast<uint8_t>(id >> 8),
                    static_cast<uint8_t>(id)};
    uint8_t b[4] = {93, 184, static_cast<uint8_t>(id % 7), 34};
    f.c = ip_address::v4(a);
    f.s = ip_address::v4(b);
    f.cp = static_cast<uint16_t>(1024 + id % 60000);
    int kind = static_cast<int>(id % 10);
    if (kind < 4) {
      f.sp = 80;
    } else if (kind < 8) {
      f.sp = 443;
    } else if (kind < 9) {
      f.sp = static_cast<uint16_t>(20000 + id % 1000);
    } else {
      f.sp = 53;
      f.proto = 17;
    }
    f.steps = f.proto == 17 ? 2 : 3 + data_packets + 3;
    f.reorder = id % 4 == 1;
    return f;
  }

  // Fills `p` with the next packet of `f`; false when the flow is over.
  bool next(flow_gen& f, uint64_t ts, decoded_packet& p) {
    if (f.step >= f.steps)
      return false;
    int i = f.step++;
    bool from_client = true;
    uint8_t flags = ack;
    uint32_t len = 0;
    if (f.proto == 17) {
      from_client = i == 0;
      len = from_client ? 40 : 120;
    } else if (i == 0) {
      flags = syn;
    } else if (i == 1) {
      flags = syn | ack;
      from_client = false;
    } else if (i == 2) {
      flags = ack;
    } else if (i < 3 + data_packets) {
      from_client = (i % 2) == 1;
      flags = ack | psh;
      len = 1200;
    } else if (i == 3 + data_packets) {
      flags = fin | ack;
    } else if (i == 4 + data_packets) {
      flags = fin | ack;
      from_client = false;
    }
    p = decoded_packet{};
    p.status = decode_status::ok;
    p.ts_ns = ts;
    p.data = payload.data();
    p.cap_len = p.wire_len = 54 + len;
    p.ip_version = 4;
    p.l4_proto = f.proto;
    p.src = from_client ? f.c : f.s;
    p.dst = from_client ? f.s : f.c;
    p.sport = from_client ? f.cp : f.sp;
    p.dport = from_client ? f.sp : f.cp;
    p.l3_len = p.l3_wire_len = static_cast<uint16_t>(40 + len);
    p.l3_off = 0;
    p.l4_off = 20;
    p.payload_off = 40; // IPv4 + TCP headers (UDP: 8 more bytes of payload room)
    p.payload_len = static_cast<uint16_t>(len);
    p.tcp_flags = flags;
    p.flow_hash = flow_hash_of(p.src, p.dst, p.sport, p.dport, p.l4_proto);
    uint32_t& seq = from_client ? f.cseq : f.sseq;
    p.tcp_seq = seq;
    p.tcp_ack = from_client ? f.sseq : f.cseq;
    if (f.reorder && from_client && i == 5) {
      p.tcp_seq = seq + len; // ahead of the hole
      return true;
    }
    if (f.reorder && from_client && i == 7) {
      p.tcp_seq = seq;       // fills the hole
      seq += 2 * len;
      return true;
    }
    if (flags & syn)
      seq += 1;
    seq += len;
    if (flags & fin)
      seq += 1;
    return true;
  }
};

} // namespace

int main(int argc, char** argv) {
  size_t total = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 2'000'000;
  size_t concurrent = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 20'000;
  const size_t batch_size = 256;

  generator gen;
  std::vector<flow_gen> live(concurrent);
  for (auto& f : live)
    f = gen.make();
  std::vector<packet_batch_ptr> batches;
  uint64_t ts = 1'700'000'000'000'000'000ull;
  size_t made = 0, cursor = 0;
  while (made < total) {
    auto b = std::make_shared<packet_batch>();
    b->packets.resize(batch_size);
    for (auto& p : b->packets) {
      flow_gen& f = live[cursor];
      while (!gen.next(f, ts, p))
        f = gen.make();
      // 1 in 50 data segments swapped with the next one of its flow: out of order
      cursor = (cursor * 7 + 1) % concurrent;
      ts += 2'000; // 500k packets per second of packet time
      ++made;
    }
    batches.push_back(std::move(b));
  }

  classifier_options opts;
  opts.max_flows = 1u << 17;
  classifier_core core(opts, 0, session_id_generator(0, 1));
  classifier_output out;
  timespec c0{}, c1{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
  auto t0 = std::chrono::steady_clock::now();
  size_t events = 0, summaries = 0;
  for (const auto& b : batches) {
    core.process(b, out);
    for (auto& sb : out.per_proto)
      events += sb.events.size();
    summaries += out.flows.summaries.size();
    out.clear();
  }
  core.flush_all(ts, out);
  auto t1 = std::chrono::steady_clock::now();
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
  double wall = std::chrono::duration<double>(t1 - t0).count();
  // CPU time of this thread: the figure that matters on a shared machine.
  double s = static_cast<double>(c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) / 1e9;
  const auto& c = core.counters();
  std::printf("packets %zu in %.3f s CPU (%.3f s wall): %.2f Mpps; flows %llu, events %zu, summaries %zu, "
              "zero-copy %.1f MB, copied %.1f MB, tcp ooo %llu\n",
              made, s, wall, made / s / 1e6, static_cast<unsigned long long>(c.flows_created), events,
              summaries, c.bytes_zero_copy / 1e6, c.bytes_copied / 1e6,
              static_cast<unsigned long long>(c.tcp.out_of_order));
  return 0;
}
