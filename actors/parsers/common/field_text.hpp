// SPDX-License-Identifier: Apache-2.0
#pragma once
// Helpers that turn wire bytes into exported text fields.
//
// Exported strings travel in protobuf `string` fields, which must hold valid
// UTF-8, and are capped at parser_options::max_field bytes. These helpers do
// both in one pass: ill-formed UTF-8 becomes U+FFFD, one per ill-formed
// sequence as tshark shows it (a lead byte with the continuation bytes that
// follow it, up to the length the lead byte announces, 2..6; a stray
// continuation byte or 0xFE/0xFF alone); overlong forms, surrogates and
// code points past U+10FFFF are ill-formed too (tshark decodes overlongs;
// we do not, so an overlong '/' stays visible as U+FFFD). A value that does
// not fit is cut on a character boundary. Header-only: no library to link.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace metaprobe::text {

// Length of the well-formed UTF-8 sequence starting at p[0] (1..4), or 0 when
// p[0] does not start one (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
inline size_t utf8_sequence_length(const uint8_t* p, size_t avail) {
  const uint8_t b0 = p[0];
  if (b0 < 0x80)
    return 1;
  size_t n;
  uint8_t lo = 0x80, hi = 0xbf; // allowed range of the second byte
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    n = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    n = 3;
    if (b0 == 0xe0)
      lo = 0xa0;
    else if (b0 == 0xed)
      hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    n = 4;
    if (b0 == 0xf0)
      lo = 0x90;
    else if (b0 == 0xf4)
      hi = 0x8f;
  } else {
    return 0;
  }
  if (avail < n || p[1] < lo || p[1] > hi)
    return 0;
  for (size_t i = 2; i < n; ++i)
    if ((p[i] & 0xc0) != 0x80)
      return 0;
  return n;
}

// Bytes one U+FFFD stands for at p[0], which starts no well-formed sequence.
inline size_t ill_formed_length(const uint8_t* p, size_t avail) {
  const uint8_t b0 = p[0];
  size_t n;
  if (b0 >= 0xc0 && b0 <= 0xdf)
    n = 2;
  else if (b0 >= 0xe0 && b0 <= 0xef)
    n = 3;
  else if (b0 >= 0xf0 && b0 <= 0xf7)
    n = 4;
  else if (b0 >= 0xf8 && b0 <= 0xfb)
    n = 5;
  else if (b0 >= 0xfc && b0 <= 0xfd)
    n = 6;
  else
    return 1;
  size_t i = 1;
  while (i < n && i < avail && (p[i] & 0xc0) == 0x80)
    ++i;
  return i;
}

// Appends `in` to `out` as valid UTF-8 (invalid bytes -> U+FFFD), never letting
// `out` grow beyond `max_len` bytes; stops on a character boundary. Returns
// true when part of `in` was left out.
inline bool append_utf8(std::string& out, std::string_view in, size_t max_len) {
  static constexpr char replacement[] = "\xef\xbf\xbd";
  const auto* p = reinterpret_cast<const uint8_t*>(in.data());
  const size_t n = in.size();
  size_t i = 0;
  while (i < n) {
    // Fast path: a run of ASCII bytes.
    size_t j = i;
    while (j < n && p[j] < 0x80)
      ++j;
    if (j > i) {
      const size_t room = out.size() < max_len ? max_len - out.size() : 0;
      if (j - i > room) {
        out.append(in.data() + i, room);
        return true;
      }
      out.append(in.data() + i, j - i);
      i = j;
      continue;
    }
    const size_t len = utf8_sequence_length(p + i, n - i);
    const size_t emit = len ? len : 3;
    if (out.size() + emit > max_len)
      return true;
    if (len) {
      out.append(in.data() + i, len);
      i += len;
    } else {
      out.append(replacement, 3);
      i += ill_formed_length(p + i, n - i);
    }
  }
  return false;
}

// Replaces `out` with `in` (see append_utf8).
inline bool assign_utf8(std::string& out, std::string_view in, size_t max_len) {
  out.clear();
  return append_utf8(out, in, max_len);
}

// Cuts an already valid UTF-8 string to at most `max_len` bytes on a
// character boundary. Returns true when it cut.
inline bool truncate_utf8(std::string& s, size_t max_len) {
  if (s.size() <= max_len)
    return false;
  size_t cut = max_len;
  while (cut > 0 && (static_cast<uint8_t>(s[cut]) & 0xc0) == 0x80)
    --cut;
  s.resize(cut);
  return true;
}

} // namespace metaprobe::text
