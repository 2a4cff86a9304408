// SPDX-License-Identifier: Apache-2.0
#include "parsers/ftp/ftp_message.hpp"

#include "parsers/common/text_line.hpp"

namespace metaprobe::ftp {

using text::iequals;
using text::is_digit;
using text::trim_ows;

namespace {

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

command_id classify(std::string_view verb) {
  struct entry {
    std::string_view name;
    command_id id;
  };
  static constexpr entry table[] = {
    {"USER", command_id::user}, {"PASS", command_id::pass}, {"PORT", command_id::port},
    {"EPRT", command_id::eprt}, {"LPRT", command_id::lprt}, {"PASV", command_id::pasv},
    {"EPSV", command_id::epsv}, {"LPSV", command_id::lpsv}, {"AUTH", command_id::auth},
    {"HOST", command_id::host},
  };
  for (const auto& e : table)
    if (iequals(verb, e.name))
      return e.id;
  return command_id::other;
}

// Decimal 0..max filling `s` (surrounding blanks allowed).
bool small_number(std::string_view s, uint32_t max, uint32_t& out) {
  uint64_t v = 0;
  if (!text::parse_uint(trim_ows(s), v, 5) || v > max)
    return false;
  out = static_cast<uint32_t>(v);
  return true;
}

// Six comma-separated numbers 0..255 starting exactly at s[0]; `used` gets
// the length consumed.
bool six_numbers(std::string_view s, uint32_t (&n)[6], size_t& used) {
  size_t i = 0;
  for (int k = 0; k < 6; ++k) {
    while (i < s.size() && s[i] == ' ')
      ++i;
    size_t d = 0;
    uint32_t v = 0;
    while (i < s.size() && is_digit(s[i]) && d < 3) {
      v = v * 10 + static_cast<uint32_t>(s[i] - '0');
      ++i;
      ++d;
    }
    if (d == 0 || v > 255 || (i < s.size() && is_digit(s[i])))
      return false;
    n[k] = v;
    while (i < s.size() && s[i] == ' ')
      ++i;
    if (k < 5) {
      if (i >= s.size() || s[i] != ',')
        return false;
      ++i;
    }
  }
  used = i;
  return true;
}

void set_v4(endpoint& out, const uint32_t (&n)[6]) {
  out = endpoint{};
  out.family = 4;
  for (int k = 0; k < 4; ++k)
    out.addr[k] = static_cast<uint8_t>(n[k]);
  out.port = static_cast<uint16_t>(n[4] * 256 + n[5]);
  out.valid = true;
}

} // namespace

bool parse_command(std::string_view line, command_line& out) {
  while (!line.empty() && text::is_ows(line.front()))
    line.remove_prefix(1);
  size_t i = 0;
  while (i < line.size() && is_alpha(line[i]))
    ++i;
  if (i < 3 || i > 4)
    return false;
  if (i < line.size() && line[i] != ' ' && line[i] != '\t')
    return false;
  out.verb = line.substr(0, i);
  out.arg = i < line.size() ? line.substr(i + 1) : std::string_view{};
  while (!out.arg.empty() && (text::is_ows(out.arg.back()) || out.arg.back() == '\r'))
    out.arg.remove_suffix(1);
  out.id = classify(out.verb);
  return true;
}

bool parse_reply(std::string_view line, reply_line& out) {
  if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]))
    return false;
  if (line[0] < '1' || line[0] > '6')
    return false;
  if (line.size() > 3 && line[3] != ' ' && line[3] != '-')
    return false;
  out.code = static_cast<uint32_t>((line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0'));
  out.more = line.size() > 3 && line[3] == '-';
  out.text = line.size() > 4 ? trim_ows(line.substr(4)) : std::string_view{};
  return true;
}

int data_mode(command_id id) {
  switch (id) {
  case command_id::port:
  case command_id::eprt:
  case command_id::lprt:
    return 0;
  case command_id::pasv:
  case command_id::epsv:
  case command_id::lpsv:
    return 1;
  default:
    return -1;
  }
}

bool parse_port_arg(std::string_view arg, endpoint& out) {
  arg = trim_ows(arg);
  uint32_t n[6];
  size_t used = 0;
  if (!six_numbers(arg, n, used) || used != arg.size())
    return false;
  set_v4(out, n);
  return true;
}

bool parse_227(std::string_view text, endpoint& out) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (!is_digit(text[i]) || (i > 0 && is_digit(text[i - 1])))
      continue;
    uint32_t n[6];
    size_t used = 0;
    if (six_numbers(text.substr(i), n, used)) {
      set_v4(out, n);
      return true;
    }
  }
  return false;
}

bool parse_ipv4(std::string_view s, std::array<uint8_t, 16>& out) {
  out = {};
  size_t part = 0;
  size_t i = 0;
  while (part < 4) {
    size_t d = 0;
    uint32_t v = 0;
    while (i < s.size() && is_digit(s[i]) && d < 3) {
      v = v * 10 + static_cast<uint32_t>(s[i] - '0');
      ++i;
      ++d;
    }
    if (d == 0 || v > 255)
      return false;
    out[part++] = static_cast<uint8_t>(v);
    if (part < 4) {
      if (i >= s.size() || s[i] != '.')
        return false;
      ++i;
    }
  }
  return i == s.size();
}

bool parse_ipv6(std::string_view s, std::array<uint8_t, 16>& out) {
  out = {};
  if (s.empty() || s.size() > 45)
    return false;
  uint16_t groups[8] = {};
  int n = 0;
  int gap_at = -1;
  size_t i = 0;
  if (s.size() >= 2 && s[0] == ':' && s[1] == ':') {
    gap_at = 0;
    i = 2;
  } else if (s[0] == ':') {
    return false;
  }
  bool v4_tail = false;
  std::array<uint8_t, 16> v4{};
  while (i < s.size()) {
    if (n >= 8)
      return false;
    const size_t next_colon = s.find(':', i);
    const std::string_view piece =
      s.substr(i, next_colon == std::string_view::npos ? std::string_view::npos : next_colon - i);
    if (piece.find('.') != std::string_view::npos) {
      // An embedded IPv4 address ends the text.
      if (next_colon != std::string_view::npos || n > 6 || !parse_ipv4(piece, v4))
        return false;
      v4_tail = true;
      break;
    }
    if (piece.empty() || piece.size() > 4)
      return false;
    uint32_t v = 0;
    for (char c : piece) {
      const char l = text::ascii_lower(c);
      int d;
      if (is_digit(c))
        d = c - '0';
      else if (l >= 'a' && l <= 'f')
        d = l - 'a' + 10;
      else
        return false;
      v = v * 16 + static_cast<uint32_t>(d);
    }
    groups[n++] = static_cast<uint16_t>(v);
    i += piece.size();
    if (i < s.size()) { // s[i] == ':'
      if (i + 1 < s.size() && s[i + 1] == ':') {
        if (gap_at >= 0)
          return false;
        gap_at = n;
        i += 2;
      } else {
        ++i;
        if (i == s.size())
          return false; // trailing single ':'
      }
    }
  }
  const int v4_groups = v4_tail ? 2 : 0;
  const int total = n + v4_groups;
  if (gap_at < 0 && total != 8)
    return false;
  if (gap_at >= 0 && total >= 8)
    return false;
  uint16_t full[8] = {};
  const int head_groups = gap_at < 0 ? n : gap_at;
  const int tail_groups = n - head_groups;
  for (int k = 0; k < head_groups; ++k)
    full[k] = groups[k];
  for (int k = 0; k < tail_groups; ++k)
    full[8 - v4_groups - tail_groups + k] = groups[head_groups + k];
  if (v4_tail) {
    full[6] = static_cast<uint16_t>(v4[0] << 8 | v4[1]);
    full[7] = static_cast<uint16_t>(v4[2] << 8 | v4[3]);
  }
  for (int k = 0; k < 8; ++k) {
    out[2 * k] = static_cast<uint8_t>(full[k] >> 8);
    out[2 * k + 1] = static_cast<uint8_t>(full[k] & 0xff);
  }
  return true;
}

bool parse_eprt_arg(std::string_view arg, endpoint& out) {
  arg = trim_ows(arg);
  if (arg.size() < 7)
    return false;
  const char d = arg[0];
  if (d < 33 || d > 126 || is_digit(d))
    return false;
  // d af d addr d port d
  const size_t p1 = arg.find(d, 1);
  if (p1 == std::string_view::npos)
    return false;
  const size_t p2 = arg.find(d, p1 + 1);
  if (p2 == std::string_view::npos)
    return false;
  const size_t p3 = arg.find(d, p2 + 1);
  if (p3 == std::string_view::npos || p3 + 1 != arg.size())
    return false;
  uint32_t af = 0, port = 0;
  if (!small_number(arg.substr(1, p1 - 1), 2, af) ||
      !small_number(arg.substr(p2 + 1, p3 - p2 - 1), 65535, port))
    return false;
  endpoint e;
  const std::string_view addr = arg.substr(p1 + 1, p2 - p1 - 1);
  if (af == 1 && parse_ipv4(addr, e.addr))
    e.family = 4;
  else if (af == 2 && parse_ipv6(addr, e.addr))
    e.family = 6;
  else
    return false;
  e.port = static_cast<uint16_t>(port);
  e.valid = true;
  out = e;
  return true;
}

bool parse_229(std::string_view text, endpoint& out) {
  const size_t open = text.find('(');
  if (open == std::string_view::npos || open + 5 > text.size())
    return false;
  const char d = text[open + 1];
  if (d < 33 || d > 126 || is_digit(d))
    return false;
  if (text[open + 2] != d || text[open + 3] != d)
    return false;
  const size_t end = text.find(d, open + 4);
  if (end == std::string_view::npos || end + 1 >= text.size() || text[end + 1] != ')')
    return false;
  uint32_t port = 0;
  if (!small_number(text.substr(open + 4, end - open - 4), 65535, port))
    return false;
  out = endpoint{};
  out.port = static_cast<uint16_t>(port);
  out.valid = true;
  return true;
}

bool looks_like_ftp(const uint8_t* data, size_t len) {
  if (data == nullptr || len < 5)
    return false;
  std::string_view s(reinterpret_cast<const char*>(data), len < 512 ? len : 512);
  if (s.compare(0, 3, "220") != 0 || (s[3] != ' ' && s[3] != '-'))
    return false;
  const size_t nl = s.find('\n');
  const std::string_view line = nl == std::string_view::npos ? s : s.substr(0, nl);
  for (size_t i = 0; i + 3 <= line.size(); ++i)
    if (iequals(line.substr(i, 3), "ftp"))
      return true;
  return false;
}

} // namespace metaprobe::ftp
