// SPDX-License-Identifier: Apache-2.0
#include "core/subscribers.hpp"

#include <arpa/inet.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace metaprobe {

namespace {

constexpr size_t max_subscribers_bytes = size_t{1} << 30;

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string shown(std::string_view s) {
  std::string r;
  for (unsigned char c : s.substr(0, 120)) {
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      r += buf;
    } else {
      r += static_cast<char>(c);
    }
  }
  if (s.size() > 120)
    r += "...";
  return r;
}

} // namespace

std::optional<ip_address> parse_ip_address(std::string_view text) {
  if (text.empty() || text.size() > 64)
    return std::nullopt;
  std::string s(text);
  uint8_t buf[16];
  if (s.find(':') == std::string::npos) {
    if (inet_pton(AF_INET, s.c_str(), buf) == 1)
      return ip_address::v4(buf);
    return std::nullopt;
  }
  if (inet_pton(AF_INET6, s.c_str(), buf) == 1)
    return ip_address::v6(buf);
  return std::nullopt;
}

std::string ip_address_text(const ip_address& a) {
  char buf[INET6_ADDRSTRLEN];
  if (a.family == 4 && inet_ntop(AF_INET, a.bytes.data(), buf, sizeof buf))
    return buf;
  if (a.family == 6 && inet_ntop(AF_INET6, a.bytes.data(), buf, sizeof buf))
    return buf;
  return {};
}

size_t subscriber_map::key_hash::operator()(const ip_address& a) const noexcept {
  // FNV-1a over the used bytes and the family.
  uint64_t h = 1469598103934665603ull ^ a.family;
  for (size_t i = 0; i < a.size(); ++i) {
    h ^= a.bytes[i];
    h *= 1099511628211ull;
  }
  return static_cast<size_t>(h ^ (h >> 32));
}

bool subscriber_map::key_eq::operator()(const ip_address& a, const ip_address& b) const noexcept {
  return a.family == b.family && std::memcmp(a.bytes.data(), b.bytes.data(), a.size()) == 0;
}

subscriber_map subscriber_map::load(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f)
    throw config_error("cannot open subscribers file '" + path + "': " + std::strerror(errno));
  std::string text;
  char buf[1 << 16];
  while (true) {
    size_t n = std::fread(buf, 1, sizeof buf, f);
    text.append(buf, n);
    if (text.size() > max_subscribers_bytes) {
      std::fclose(f);
      throw config_error("cannot read subscribers file '" + path + "': larger than 1G bytes");
    }
    if (n < sizeof buf)
      break;
  }
  int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (err)
    throw config_error("cannot read subscribers file '" + path + "': " + std::strerror(err));
  return parse(text, path);
}

subscriber_map subscriber_map::parse(std::string_view text, const std::string& source) {
  subscriber_map m;
  std::unordered_map<ip_address, size_t, key_hash, key_eq> line_of;
  size_t pos = 0;
  size_t line_no = 0;
  if (text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0)
    pos = 3;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line =
        text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    auto where = [&] { return source + ":" + std::to_string(line_no) + ": "; };

    // Cut a comment: '#' at the start or after whitespace.
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '#' && (i == 0 || is_blank(line[i - 1]))) {
        line = line.substr(0, i);
        break;
      }
    }
    // Split into whitespace-separated tokens.
    std::string_view tok[3];
    size_t ntok = 0;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && is_blank(line[i]))
        ++i;
      if (i >= line.size())
        break;
      size_t start = i;
      while (i < line.size() && !is_blank(line[i]))
        ++i;
      if (ntok < 3)
        tok[ntok] = line.substr(start, i - start);
      ++ntok;
    }
    if (ntok == 0)
      continue;
    if (ntok != 2)
      throw config_error(where() + "expected `ip login`, got '" + shown(line) + "'");
    auto addr = parse_ip_address(tok[0]);
    if (!addr)
      throw config_error(where() + "bad address '" + shown(tok[0]) +
                         "' (expected an IPv4 or IPv6 address)");
    std::string_view login = tok[1];
    if (login.size() > max_login)
      throw config_error(where() + "login longer than " + std::to_string(max_login) + " bytes");
    for (unsigned char c : login)
      if (c < 0x20 || c == 0x7f)
        throw config_error(where() + "control character in login '" + shown(login) + "'");
    auto [it, inserted] = line_of.emplace(*addr, line_no);
    if (!inserted)
      throw config_error(where() + "address " + std::string(tok[0]) + " listed twice (first on line " +
                         std::to_string(it->second) + ")");
    m.map_.emplace(*addr, std::string(login));
  }
  return m;
}

void subscriber_map::add(const ip_address& addr, std::string login) {
  map_[addr] = std::move(login);
}

std::string_view subscriber_map::login_for(const ip_address& addr) const {
  auto it = map_.find(addr);
  if (it == map_.end())
    return {};
  return it->second;
}

} // namespace metaprobe
