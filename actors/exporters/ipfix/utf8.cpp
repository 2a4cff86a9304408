// SPDX-License-Identifier: Apache-2.0
#include "exporters/ipfix/utf8.hpp"

#include <cstring>

namespace metaprobe::ipfix {
namespace {

// Length of the valid UTF-8 sequence starting at p (n > 0 octets available),
// 0 when p does not start one.
inline size_t sequence_length(const uint8_t* p, size_t n) {
  const uint8_t c = p[0];
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0; // continuation byte or overlong 2-byte lead
  if (c < 0xE0) {
    return (n >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
  }
  if (c < 0xF0) {
    if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && p[1] < 0xA0) return 0;  // overlong
    if (c == 0xED && p[1] >= 0xA0) return 0; // surrogates
    return 3;
  }
  if (c < 0xF5) {
    if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
      return 0;
    if (c == 0xF0 && p[1] < 0x90) return 0;  // overlong
    if (c == 0xF4 && p[1] >= 0x90) return 0; // > U+10FFFF
    return 4;
  }
  return 0;
}

} // namespace

namespace {
// True when [p, p+n) is all ASCII. No early exit: one OR per 8 octets.
inline bool all_ascii(const uint8_t* p, size_t n) {
  uint64_t acc = 0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    uint64_t w[4];
    std::memcpy(w, p + i, 32);
    acc |= w[0] | w[1] | w[2] | w[3];
  }
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    acc |= w;
  }
  uint8_t tail = 0;
  for (; i < n; ++i) tail |= p[i];
  return ((acc & 0x8080808080808080ULL) | (tail & 0x80)) == 0;
}
} // namespace

size_t utf8_valid_prefix(const uint8_t* p, size_t n) {
  if (all_ascii(p, n)) return n;
  size_t i = 0;
  while (i < n) {
    // ASCII fast path, eight octets at a time
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= n) break;
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t l = sequence_length(p + i, n - i);
    if (l == 0) return i;
    i += l;
  }
  return n;
}

size_t utf8_truncate(const uint8_t* p, size_t n, size_t max) {
  if (n <= max) return n;
  size_t cut = max;
  // back off continuation bytes: p[cut] must start a character
  while (cut > 0 && (p[cut] & 0xC0) == 0x80) --cut;
  return cut;
}

size_t utf8_sanitize(const uint8_t* in, size_t n, uint8_t* out, size_t max) {
  static const uint8_t replacement[3] = {0xEF, 0xBF, 0xBD};
  size_t i = 0, o = 0;
  while (i < n) {
    size_t l = sequence_length(in + i, n - i);
    const uint8_t* src = in + i;
    size_t step = l;
    if (l == 0) {
      src = replacement;
      l = 3;
      step = 1;
    }
    if (o + l > max) break;
    if (out) std::memcpy(out + o, src, l);
    o += l;
    i += step;
  }
  return o;
}

} // namespace metaprobe::ipfix
