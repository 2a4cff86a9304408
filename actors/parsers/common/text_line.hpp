// SPDX-License-Identifier: Apache-2.0
#pragma once
// Small helpers for line-oriented text protocols (SIP, FTP, ...): ASCII
// case-insensitive comparison, whitespace trimming, splitting a buffer into
// CRLF / LF terminated lines. Header-only, no allocation.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace metaprobe::text {

inline char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

inline char ascii_upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
}

// ASCII case-insensitive equality.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i]))
      return false;
  return true;
}

inline bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

inline bool is_ows(char c) { return c == ' ' || c == '\t'; }

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Strips spaces and horizontal tabs at both ends.
inline std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && is_ows(v.front()))
    v.remove_prefix(1);
  while (!v.empty() && is_ows(v.back()))
    v.remove_suffix(1);
  return v;
}

// RFC 3261 / 9110 token character.
inline bool is_token_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c))
    return true;
  switch (c) {
  case '-': case '.': case '!': case '%': case '*': case '_': case '+': case '`':
  case '\'': case '~':
    return true;
  default:
    return false;
  }
}

// Position of the end of the first line of `s` (the index of its '\n'), or
// npos when `s` holds no complete line. `line` gets the line without CR/LF.
inline size_t next_line(std::string_view s, std::string_view& line) {
  const size_t nl = s.find('\n');
  if (nl == std::string_view::npos)
    return nl;
  line = s.substr(0, nl);
  if (!line.empty() && line.back() == '\r')
    line.remove_suffix(1);
  return nl;
}

// Unsigned decimal of at most `max_digits` digits filling all of `v`.
inline bool parse_uint(std::string_view v, uint64_t& out, size_t max_digits = 18) {
  if (v.empty() || v.size() > max_digits)
    return false;
  uint64_t n = 0;
  for (char c : v) {
    if (!is_digit(c))
      return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  out = n;
  return true;
}

} // namespace metaprobe::text
