// SPDX-License-Identifier: Apache-2.0
// Fuzzes tcp_stream with segments whose sequence numbers, lengths and flags
// come from the input. Payload bytes are a function of their sequence number,
// so every delivered byte can be checked. Invariants (abort on violation):
//   - data and gaps come out contiguous, in sequence order;
//   - every delivered byte is the byte sent at that sequence number;
//   - no more data is delivered than was sent, and no empty chunk;
//   - consumed() equals delivered + gapped bytes;
//   - the buffer never holds more than its byte / segment limits;
//   - flush() leaves nothing buffered.
//
// Input: 8 header bytes
//   [0] max_ooo_bytes / 16   [1] max_ooo_segments (mod 32)   [2] bit0: SYN first,
//   bit1: track-only mode    [3..6] initial sequence number (big endian)  [7] unused
// then records of 4 bytes: int16 offset of the segment from the ISN (big
// endian, so segments land around the ISN and across a wrap when the ISN is
// near 2^32), length, flags (bit0 FIN, bit1 SYN, bit2 length * 8, bit3 the
// second half of the segment is cut by the capture).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "classifier/tcp_stream.hpp"

using namespace metaprobe;

namespace {

uint8_t byte_at(uint32_t seq) {
  return static_cast<uint8_t>((seq * 131u + 7u) >> 3);
}

void check(bool ok) {
  if (!ok)
    std::abort();
}

struct verifier final : tcp_stream_sink {
  bool have_next = false;
  uint32_t next = 0;
  uint64_t data_bytes = 0;
  uint64_t gap_bytes = 0;
  bool track_only = false;

  void advance(uint32_t seq, uint32_t len) {
    check(len > 0);
    if (have_next)
      check(seq == next);
    have_next = true;
    next = seq + len;
  }
  void on_data(uint32_t seq, const uint8_t* data, uint32_t len, bool buffered) override {
    advance(seq, len);
    data_bytes += len;
    if (!data) {
      check(track_only && buffered);
      return;
    }
    for (uint32_t i = 0; i < len; ++i)
      check(data[i] == byte_at(seq + i));
  }
  void on_gap(uint32_t seq, uint32_t len) override {
    advance(seq, len);
    gap_bytes += len;
  }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* in, size_t size) {
  if (size < 8)
    return 0;
  tcp_stream_options opts;
  opts.max_ooo_bytes = in[0] * 16u;
  opts.max_ooo_segments = in[1] % 32u;
  bool syn_first = in[2] & 1;
  bool track_only = in[2] & 2;
  uint32_t isn = static_cast<uint32_t>(in[3]) << 24 | static_cast<uint32_t>(in[4]) << 16 |
                 static_cast<uint32_t>(in[5]) << 8 | in[6];
  tcp_stream_counters counters;
  tcp_stream s(&opts, &counters);
  s.set_store(!track_only);
  verifier v;
  v.track_only = track_only;
  if (syn_first)
    s.syn(isn);

  std::vector<uint8_t> buf;
  uint64_t sent = 0;
  for (size_t i = 8; i + 4 <= size; i += 4) {
    auto off = static_cast<int16_t>(static_cast<uint16_t>(in[i] << 8 | in[i + 1]));
    uint32_t len = in[i + 2];
    uint8_t flags = in[i + 3];
    if (flags & 4)
      len *= 8;
    uint32_t seq = isn + static_cast<uint32_t>(static_cast<int32_t>(off));
    if (flags & 2) {
      s.syn(seq);
      continue;
    }
    uint32_t cut = (flags & 8) ? len / 2 : 0;
    len -= cut;
    buf.resize(len);
    for (uint32_t k = 0; k < len; ++k)
      buf[k] = byte_at(seq + k);
    s.segment(seq, buf.data(), len, flags & 1, v, cut);
    sent += len;
    check(v.data_bytes <= sent);
    check(s.buffered_bytes() <= opts.max_ooo_bytes);
    check(s.buffered_segments() <= opts.max_ooo_segments);
    check(s.consumed() == v.data_bytes + v.gap_bytes);
  }
  s.flush(v);
  check(s.buffered_bytes() == 0);
  check(s.buffered_segments() == 0);
  check(v.data_bytes <= sent);
  check(s.consumed() == v.data_bytes + v.gap_bytes);
  check(counters.bytes_gapped == v.gap_bytes);
  return 0;
}
