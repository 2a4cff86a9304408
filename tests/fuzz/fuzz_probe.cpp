// SPDX-License-Identifier: Apache-2.0
// Fuzzes detection by content (parsers/common/redetect.hpp) as the
// classifier runs it on a TCP flow of an unknown port: the registry's TCP
// probe candidates, the accumulated starts, turns, pieces probed alone
// (mid-stream pick-up), the byte and probe bounds. Both sides' fuzz bytes
// arrive in random segments (and gaps) until a verdict.
// Invariants (abort on violation): the bytes held stay within max_bytes;
// the probe runs within max_probes and max_solo; on a detection the pieces
// handed back are exactly the pieces given, in order (same direction,
// sequence number and bytes, the last one possibly cut by the bound), or,
// when the match was on a piece probed alone, gaps of the same lengths up
// to that piece; the detected protocol is a candidate.
//
// Input: [0] flags (bit1 tiny limits, bit2 gaps)  [1..4] PRNG seed
//        [5..6] client byte count (big endian), then client, server bytes.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_driver.hpp"
#include "parsers/common/redetect.hpp"

using namespace metaprobe;
using fuzz::check;

namespace {

// The classifier's candidates: a probe, and a TCP parser or TCP ports.
const stream_redetector::candidates& tcp_candidates() {
  static const stream_redetector::candidates c = [] {
    stream_redetector::candidates out;
    for (const protocol_entry& e : protocol_registry())
      if (e.probe && (e.make_stream || !e.tcp_ports.empty()))
        out.push_back(&e);
    return out;
  }();
  return c;
}

class probe_flow {
public:
  probe_flow(size_t max_bytes, uint32_t max_probes, uint32_t max_solo)
    : d_(tcp_candidates(), max_bytes, max_probes, max_solo), max_bytes_(max_bytes),
      max_probes_(max_probes) {}

  void deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts, uint32_t seq,
               record_sink&) {
    stream_piece p;
    p.dir = dir;
    p.seq = seq;
    p.ts_ns = ts;
    p.bytes.assign(reinterpret_cast<const char*>(data), len);
    add(std::move(p));
  }
  void gap(direction dir, size_t len) {
    stream_piece p;
    p.dir = dir;
    p.gap = len;
    add(std::move(p));
  }
  void finish(uint64_t, record_sink&) {
    if (d_.state() == stream_redetector::verdict::pending)
      d_.finish();
    check(d_.state() != stream_redetector::verdict::pending);
    verify();
  }

private:
  void add(stream_piece p) {
    if (d_.state() != stream_redetector::verdict::pending)
      return;
    if (p.gap > 0 || !p.bytes.empty())
      given_.push_back(p);
    d_.add(std::move(p));
    check(d_.held_bytes() <= max_bytes_);
    check(max_probes_ == 0 || d_.probes_run() <= max_probes_);
  }
  void verify() {
    if (d_.state() != stream_redetector::verdict::detected)
      return;
    bool known = false;
    for (const protocol_entry* e : tcp_candidates())
      known |= e == d_.detected();
    check(known);
    const std::vector<stream_piece> back = d_.take_pieces();
    check(back.size() == given_.size());
    for (size_t i = 0; i < back.size() && i < given_.size(); ++i) {
      const stream_piece& b = back[i];
      const stream_piece& g = given_[i];
      check(b.dir == g.dir && b.seq == g.seq);
      const bool last = i + 1 == back.size();
      if (d_.resynced() && !last) {
        check(b.bytes.empty() && b.gap == (g.gap ? g.gap : g.bytes.size()));
        continue;
      }
      check(b.gap == g.gap);
      if (last) // possibly cut by the byte bound
        check(b.bytes.size() <= g.bytes.size() && g.bytes.compare(0, b.bytes.size(), b.bytes) == 0);
      else
        check(b.bytes == g.bytes);
    }
  }

  stream_redetector d_;
  size_t max_bytes_;
  uint32_t max_probes_;
  std::vector<stream_piece> given_;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::two_sided_input in;
  if (!fuzz::split_two_sided(data, size, in))
    return 0;
  const bool tiny = (in.flags & 2) != 0;
  probe_flow flow(tiny ? 64 : 4096, tiny ? 4 : stream_redetector::default_max_probes,
                  tiny ? 2 : 8);
  fuzz::segmenting cut;
  cut.big = 512;
  cut.small = 8; // the splits that matter here: a few bytes at a time
  record_sink out;
  fuzz::feed_both_sides(flow, in, (in.flags & 4) != 0, out, cut);
  return 0;
}
