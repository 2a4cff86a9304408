// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the parser fuzz targets share: the invariant checks, the PRNG that
// picks segment sizes, the two-sided input layout and the loop that feeds
// both directions of a flow to a stream parser.
//
// Two-sided input layout (kept byte for byte: the corpora kept in
// tests/fuzz/corpus/<name>/ depend on it):
//   [0] flags (the bits are each target's own)   [1..4] PRNG seed (big endian)
//   [5..6] client byte count (big endian; cut to what is there)
//   then the client bytes, then the server bytes.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "parsers/common/field_text.hpp"
#include "parsers/parser.hpp"
#include "parsers/registry.hpp"

namespace metaprobe::fuzz {

// Aborts (the fuzzer's crash signal) when an invariant does not hold.
inline void check(bool ok) {
  if (!ok)
    std::abort();
}

// `s` is valid UTF-8 of at most `max_len` bytes.
inline void check_text(const std::string& s, size_t max_len) {
  check(s.size() <= max_len);
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  for (size_t i = 0; i < s.size();) {
    const size_t n = text::utf8_sequence_length(p + i, s.size() - i);
    check(n > 0);
    i += n;
  }
}

// xorshift32. Never let x be 0 (it would stay 0): use seed_prng().
struct prng {
  uint32_t x;
  uint32_t next() {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
  }
};

// The PRNG seeded from 4 big-endian bytes, low bit set.
inline prng seed_prng(const uint8_t* p) {
  return prng{(uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]) | 1u};
}

// An input split per the two-sided layout above.
struct two_sided_input {
  uint8_t flags = 0;
  prng rng{1};
  const uint8_t* payload = nullptr; // everything after the 7-byte header
  size_t payload_len = 0;
  const uint8_t* side_data[2] = {nullptr, nullptr}; // client, server
  size_t side_len[2] = {0, 0};
};

// False when `size` is shorter than the 7-byte header (the input is skipped).
inline bool split_two_sided(const uint8_t* data, size_t size, two_sided_input& in) {
  if (size < 7)
    return false;
  in.flags = data[0];
  in.rng = seed_prng(data + 1);
  size_t client_len = (size_t{data[5]} << 8) | data[6];
  in.payload = data + 7;
  in.payload_len = size - 7;
  if (client_len > in.payload_len)
    client_len = in.payload_len;
  in.side_data[0] = in.payload;
  in.side_data[1] = in.payload + client_len;
  in.side_len[0] = client_len;
  in.side_len[1] = in.payload_len - client_len;
  return true;
}

// The "tiny limits" most text-protocol targets switch on with a flag bit,
// so that line, header, buffer, field and record limits are hit often.
inline void set_tiny_limits(parser_options& o) {
  o.max_line = 40;
  o.max_headers = 3;
  o.max_buffered = 200;
  o.max_field = 9;
  o.max_records_per_flow = 5;
}

// How feed_both_sides() cuts the bytes into segments.
struct segmenting {
  size_t big = 4096; // one segment in 8 is 1..big bytes long
  size_t small = 64; // the others 1..small
  bool seq = true;   // draw a start sequence number per side and count up;
                     // false: pass 0 and draw nothing for it
};

// Feeds both sides of `in` to `p` (a stream_parser, or any type with the
// same deliver/gap/finish), alternating at random between the directions,
// in segments of random length; with `gaps`, about one segment in 8 is
// reported as a gap instead. Then finish(2, out). Draws from in.rng.
template <class Parser>
void feed_both_sides(Parser& p, two_sided_input& in, bool gaps, record_sink& out,
                     const segmenting& cut = {}) {
  size_t pos[2] = {0, 0};
  uint32_t seq[2] = {0, 0};
  if (cut.seq) {
    seq[0] = in.rng.next();
    seq[1] = in.rng.next();
  }
  while (pos[0] < in.side_len[0] || pos[1] < in.side_len[1]) {
    int d = static_cast<int>(in.rng.next() & 1);
    if (pos[d] >= in.side_len[d])
      d ^= 1;
    const size_t left = in.side_len[d] - pos[d];
    const uint32_t r = in.rng.next();
    size_t n = (r & 7) == 0 ? 1 + (r >> 8) % cut.big : 1 + (r >> 8) % cut.small;
    if (n > left)
      n = left;
    if (gaps && (r & 0x70) == 0x70)
      p.gap(static_cast<direction>(d), n);
    else
      p.deliver(static_cast<direction>(d), in.side_data[d] + pos[d], n, 1, seq[d], out);
    pos[d] += n;
    if (cut.seq)
      seq[d] += static_cast<uint32_t>(n);
  }
  p.finish(2, out);
}

} // namespace metaprobe::fuzz
