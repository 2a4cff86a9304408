// SPDX-License-Identifier: Apache-2.0
#include "core/raw_meta.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "core/list_text.hpp"

namespace metaprobe {

namespace {

struct meta_entry {
  std::string_view name;
  uint16_t code;
  app_protocol proto; // unknown: the seeds' code, not detected by metaprobe
};

constexpr std::array<meta_entry, 11> meta_table{{
  {"sip", 3, app_protocol::sip},
  {"ftp", 4, app_protocol::ftp},
  {"smtp", 5, app_protocol::smtp},
  {"pop3", 6, app_protocol::pop3},
  {"imap", 7, app_protocol::imap},
  {"xmpp", 8, app_protocol::xmpp},
  {"icq", 9, app_protocol::unknown},
  {"rss", 10, app_protocol::unknown},
  {"nntp", 11, app_protocol::unknown},
  {"h323", 12, app_protocol::unknown},
  {"zello", 13, app_protocol::unknown},
}};

constexpr std::string_view expected =
  "expected a comma-separated list of sip, ftp, smtp, pop3, imap, xmpp or their META_PROTO "
  "codes 3..8";


const meta_entry* find(std::string_view item) {
  std::string lower(item);
  for (char& c : lower)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  bool digits = !lower.empty() && lower.size() <= 5 &&
                std::all_of(lower.begin(), lower.end(), [](char c) { return c >= '0' && c <= '9'; });
  for (const auto& e : meta_table) {
    if (digits ? std::stoi(lower) == e.code : lower == e.name)
      return &e;
  }
  return nullptr;
}

} // namespace

uint16_t meta_proto_of(app_protocol p) {
  if (p == app_protocol::unknown)
    return 0;
  for (const auto& e : meta_table)
    if (e.proto == p)
      return e.code;
  return 0;
}

std::string parse_raw_meta_protocols(std::string_view text, std::vector<app_protocol>* out) {
  text = trim_space(text);
  if (text.empty())
    return {};
  std::vector<app_protocol> got;
  while (true) {
    size_t comma = text.find(',');
    std::string_view item = trim_space(text.substr(0, comma));
    const meta_entry* e = find(item);
    if (!e)
      return "unknown protocol '" + std::string(item) + "'; " + std::string(expected);
    if (e->proto == app_protocol::unknown)
      return "'" + std::string(item) + "' (META_PROTO " + std::to_string(e->code) +
             ", " + std::string(e->name) + ") is not detected by metaprobe; " +
             std::string(expected);
    if (std::find(got.begin(), got.end(), e->proto) == got.end())
      got.push_back(e->proto);
    if (comma == std::string_view::npos)
      break;
    text.remove_prefix(comma + 1);
  }
  if (out)
    out->insert(out->end(), got.begin(), got.end());
  return {};
}

} // namespace metaprobe
