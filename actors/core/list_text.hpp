// SPDX-License-Identifier: Apache-2.0
#pragma once
// Configuration text helpers: ASCII whitespace trimming and separated lists
// ("a, b,c"): items with the whitespace around them removed; an empty text is
// an empty list, an empty item between separators is kept (so callers can
// reject it).

#include <string_view>
#include <vector>

namespace metaprobe {

inline bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

inline std::string_view trim_space(std::string_view s) {
  while (!s.empty() && is_space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_space(s.back()))
    s.remove_suffix(1);
  return s;
}

inline std::vector<std::string_view> split_list(std::string_view text, char sep = ',') {
  std::vector<std::string_view> items;
  text = trim_space(text);
  if (text.empty())
    return items;
  while (true) {
    const size_t comma = text.find(sep);
    items.push_back(trim_space(text.substr(0, comma)));
    if (comma == std::string_view::npos)
      break;
    text.remove_prefix(comma + 1);
  }
  return items;
}

} // namespace metaprobe
