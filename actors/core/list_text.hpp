// SPDX-License-Identifier: Apache-2.0
#pragma once
// Comma-separated configuration lists ("a, b,c"): items with the spaces and
// tabs around them removed; an empty text is an empty list, an empty item
// between commas is kept (so callers can reject it).

#include <string_view>
#include <vector>

namespace metaprobe {

inline std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

inline std::vector<std::string_view> split_list(std::string_view text) {
  std::vector<std::string_view> items;
  text = trim_blanks(text);
  if (text.empty())
    return items;
  while (true) {
    const size_t comma = text.find(',');
    items.push_back(trim_blanks(text.substr(0, comma)));
    if (comma == std::string_view::npos)
      break;
    text.remove_prefix(comma + 1);
  }
  return items;
}

} // namespace metaprobe
