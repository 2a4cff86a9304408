// SPDX-License-Identifier: Apache-2.0
#include "parsers/http/http_message.hpp"

#include <algorithm>
#include <cstring>

namespace metaprobe::http {

namespace {

constexpr std::string_view known_methods[] = {
  "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
  // WebDAV (RFC 4918, 3253, 3648, 4437, 4791, 5323, 5842)
  "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH",
  "REPORT", "CHECKIN", "CHECKOUT", "UNCHECKOUT", "VERSION-CONTROL", "MKWORKSPACE",
  "UPDATE", "LABEL", "MERGE", "BASELINE-CONTROL", "MKACTIVITY", "ORDERPATCH",
  "ACL", "MKCALENDAR", "BIND", "UNBIND", "REBIND", "MKREDIRECTREF",
  "UPDATEREDIRECTREF",
  // Exchange WebDAV extensions
  "BCOPY", "BDELETE", "BMOVE", "BPROPFIND", "BPROPPATCH", "POLL", "SUBSCRIBE",
  "UNSUBSCRIBE", "NOTIFY",
  // RFC 2068 leftovers, SSDP, RPC over HTTP, cache purge
  "LINK", "UNLINK", "M-SEARCH", "RPC_CONNECT", "RPC_IN_DATA", "RPC_OUT_DATA",
  "PURGE",
};

using text::iequals;
using text::is_ows;
constexpr auto starts_with_ci = text::istarts_with;

} // namespace

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return true;
  switch (c) {
  case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
  case '-': case '.': case '^': case '_': case '`': case '|': case '~':
    return true;
  default:
    return false;
  }
}

size_t match_method_token(std::string_view line) {
  const size_t n = std::min(line.size(), max_method + 1);
  size_t i = 0;
  while (i < n && is_tchar(line[i]))
    ++i;
  if (i == 0 || i > max_method || i >= line.size() || line[i] != ' ')
    return 0;
  return i;
}

bool is_known_method(std::string_view m) {
  for (auto k : known_methods)
    if (k == m)
      return true;
  return false;
}

size_t match_method(std::string_view line) {
  const size_t sp = line.find(' ');
  if (sp == std::string_view::npos || sp == 0 || sp > 17)
    return 0;
  return is_known_method(line.substr(0, sp)) ? sp : 0;
}

uint32_t method_code(std::string_view method) {
  if (method == "GET")
    return 1;
  if (method == "POST")
    return 2;
  if (method == "PUT")
    return 3;
  if (method == "DELETE")
    return 4;
  return 0;
}

method_kind classify_method(std::string_view method) {
  if (method == "HEAD")
    return method_kind::head;
  if (method == "CONNECT")
    return method_kind::connect;
  return method_kind::other;
}

bool is_notification(std::string_view method) {
  return method == "NOTIFY" || method == "SUBSCRIBE" || method == "UNSUBSCRIBE";
}

bool is_http_version(std::string_view v) {
  return v.size() == 8 && v.compare(0, 5, "HTTP/") == 0 && v[5] >= '0' && v[5] <= '9' &&
         v[6] == '.' && v[7] >= '0' && v[7] <= '9';
}

bool is_http1_version(std::string_view v) {
  return v == "HTTP/1.1" || v == "HTTP/1.0";
}

namespace {

// A target that begins like a request-target of RFC 9112 §3.2: origin-form
// ('/'), asterisk-form ('*'), absolute-form ("scheme://", the form proxies
// get) or authority-form ("host:port", CONNECT).
bool target_shape(std::string_view t) {
  if (t.empty())
    return false;
  if (t.front() == '/' || t == "*")
    return true;
  if (!((t.front() >= 'a' && t.front() <= 'z') || (t.front() >= 'A' && t.front() <= 'Z') ||
        (t.front() >= '0' && t.front() <= '9') || t.front() == '['))
    return false;
  const size_t colon = t.find(':');
  if (colon == std::string_view::npos || colon == 0)
    return false;
  if (t.compare(colon, 3, "://") == 0)
    return true; // absolute-form
  // authority-form: host ":" port (digits only after the last colon)
  const size_t last = t.rfind(':');
  if (last + 1 >= t.size())
    return false;
  for (size_t i = last + 1; i < t.size(); ++i)
    if (t[i] < '0' || t[i] > '9')
      return false;
  return true;
}

bool visible(std::string_view t) {
  for (char c : t) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f)
      return false;
  }
  return true;
}

// A target that begins like one: origin-form, asterisk-form or an absolute URI.
bool loose_target_shape(std::string_view t) {
  return !t.empty() &&
         (t.front() == '/' || t.front() == '*' || t.find("://") != std::string_view::npos);
}

// Another protocol's version ("RTSP/1.0", "SIP/2.0"): letters '/' digit,
// the letters other than HTTP.
bool foreign_version(std::string_view v) {
  const size_t slash = v.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 >= v.size() ||
      v[slash + 1] < '0' || v[slash + 1] > '9')
    return false;
  for (size_t i = 0; i < slash; ++i) {
    const char c = v[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
      return false;
  }
  return !iequals(v.substr(0, slash), "HTTP");
}

} // namespace

bool parse_request_line(std::string_view line, bool cut, request_line& out) {
  const size_t mlen = match_method_token(line);
  if (mlen == 0)
    return false;
  out.method = line.substr(0, mlen);
  out.no_version = out.bad_version = out.empty_target = false;
  std::string_view rest = line.substr(mlen);
  while (!rest.empty() && rest.front() == ' ')
    rest.remove_prefix(1);
  while (!rest.empty() && is_ows(rest.back()))
    rest.remove_suffix(1);
  const bool known = is_known_method(out.method);
  if (cut) {
    // Only a prefix of the line is there: the target runs to its end.
    const size_t sp = rest.rfind(' ');
    if (sp != std::string_view::npos && is_http_version(rest.substr(sp + 1))) {
      out.version = rest.substr(sp + 1);
      rest = rest.substr(0, sp);
    } else {
      out.version = {};
    }
    const size_t word_end = rest.find(' ');
    if (word_end != std::string_view::npos)
      rest = rest.substr(0, word_end);
    out.target = rest;
    if (rest.empty())
      return false;
    return known || loose_target_shape(rest);
  }
  if (rest.empty())
    return false; // a method alone
  const size_t sp = rest.rfind(' ');
  if (sp == std::string_view::npos) {
    if (starts_with_ci(rest, "HTTP/")) {
      // method SP+ version: no target (OPTIONS  HTTP/1.1).
      out.target = {};
      out.version = rest;
      out.empty_target = true;
      out.bad_version = !is_http_version(rest);
      return known || !out.bad_version;
    }
    // HTTP/0.9 simple request: method SP target.
    out.target = rest;
    out.version = {};
    out.no_version = true;
    return known || loose_target_shape(rest);
  }
  out.version = rest.substr(sp + 1);
  // Whitespace-delimited words (RFC 9112 §3): the target is the first word;
  // raw spaces inside a target end it, as servers and tshark read it.
  rest = rest.substr(0, sp);
  const size_t word_end = rest.find(' ');
  if (word_end != std::string_view::npos)
    rest = rest.substr(0, word_end);
  out.target = rest;
  if (!is_http_version(out.version)) {
    if (foreign_version(out.version))
      return false; // RTSP, SIP: not HTTP
    if (!known && !(starts_with_ci(out.version, "HTTP/") && loose_target_shape(rest)))
      return false;
    out.bad_version = true;
  }
  return true;
}

bool parse_strict_request_line(std::string_view line, request_line& out) {
  const size_t mlen = match_method_token(line);
  if (mlen == 0)
    return false;
  const std::string_view rest = line.substr(mlen + 1);
  const size_t sp = rest.find(' ');
  if (sp == std::string_view::npos || rest.size() - sp - 1 != 8)
    return false;
  const std::string_view target = rest.substr(0, sp);
  const std::string_view version = rest.substr(sp + 1);
  if (!is_http1_version(version) || !visible(target) || !target_shape(target))
    return false;
  out.method = line.substr(0, mlen);
  out.target = target;
  out.version = version;
  return true;
}

bool is_h2_preface(const request_line& rl) {
  return rl.method == "PRI" && rl.target == "*" && rl.version == "HTTP/2.0";
}

bool parse_status_line(std::string_view line, status_line& out) {
  if (line.size() < 12 || !is_http_version(line.substr(0, 8)) || line[8] != ' ')
    return false;
  size_t i = 9;
  while (i < line.size() && line[i] == ' ')
    ++i;
  if (line.size() < i + 3)
    return false;
  uint32_t code = 0;
  for (size_t k = 0; k < 3; ++k) {
    const char c = line[i + k];
    if (c < '0' || c > '9')
      return false;
    code = code * 10 + static_cast<uint32_t>(c - '0');
  }
  i += 3;
  if (i < line.size() && !is_ows(line[i]))
    return false; // "2000" or "200x"
  if (code < 100)
    return false;
  out.version = line.substr(0, 8);
  out.code = code;
  out.phrase = i < line.size() ? trim_ows(line.substr(i)) : std::string_view{};
  return true;
}

header_id classify_header(std::string_view name) {
  switch (name.size()) {
  case 4:
    return iequals(name, "host") ? header_id::host : header_id::other;
  case 6:
    return iequals(name, "cookie") ? header_id::cookie : header_id::other;
  case 7:
    if (iequals(name, "referer"))
      return header_id::referer;
    return iequals(name, "upgrade") ? header_id::upgrade : header_id::other;
  case 8:
    return iequals(name, "location") ? header_id::location : header_id::other;
  case 10:
    return iequals(name, "user-agent") ? header_id::user_agent : header_id::other;
  case 12:
    return iequals(name, "content-type") ? header_id::content_type : header_id::other;
  case 14:
    return iequals(name, "content-length") ? header_id::content_length : header_id::other;
  case 17:
    return iequals(name, "transfer-encoding") ? header_id::transfer_encoding : header_id::other;
  case 22:
    return iequals(name, "sec-websocket-protocol") ? header_id::sec_websocket_protocol
                                                   : header_id::other;
  default:
    return header_id::other;
  }
}

bool parse_content_length(std::string_view v, uint64_t& out) {
  return text::parse_uint(v, out, 18);
}

bool is_chunked(std::string_view te) {
  te = trim_ows(te);
  const size_t comma = te.rfind(',');
  std::string_view last = comma == std::string_view::npos ? te : te.substr(comma + 1);
  last = trim_ows(last);
  const size_t semi = last.find(';'); // transfer parameters
  if (semi != std::string_view::npos)
    last = trim_ows(last.substr(0, semi));
  return iequals(last, "chunked");
}

bool parse_chunk_size(std::string_view line, uint64_t& out) {
  line = trim_ows(line);
  size_t i = 0;
  uint64_t n = 0;
  for (; i < line.size(); ++i) {
    const char c = line[i];
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      break;
    if (i >= 15)
      return false; // more than 2^60: not a real chunk
    n = n * 16 + static_cast<uint64_t>(d);
  }
  if (i == 0)
    return false;
  const std::string_view rest = trim_ows(line.substr(i));
  if (!rest.empty() && rest.front() != ';')
    return false;
  out = n;
  return true;
}

namespace {

// The first line of `s` without CR/LF when it is complete in `s`.
bool first_line(std::string_view s, std::string_view& line) {
  const size_t eol = s.find('\n');
  if (eol == std::string_view::npos)
    return false;
  line = s.substr(0, eol);
  if (!line.empty() && line.back() == '\r')
    line.remove_suffix(1);
  return true;
}

} // namespace

bool looks_like_http(const uint8_t* data, size_t len) {
  if (data == nullptr || len < 5)
    return false;
  const std::string_view s(reinterpret_cast<const char*>(data), len < 8192 ? len : 8192);
  if (s.compare(0, 5, "HTTP/") == 0) {
    if (s.size() < 8)
      return false;
    return s.compare(0, 7, "HTTP/1.") == 0 && (s[7] == '0' || s[7] == '1');
  }
  std::string_view line;
  const bool whole = first_line(s, line);
  const size_t mlen = match_method(s);
  if (mlen == 0) {
    // Any other method token: only a whole line in the strict form, so that
    // text of other protocols ("220 ready", "NICK x") is never taken.
    request_line rl;
    return whole && parse_strict_request_line(line, rl) && !is_h2_preface(rl);
  }
  if (whole) {
    request_line rl;
    return parse_request_line(line, false, rl) && !rl.lenient();
  }
  // Only part of the line: reject the URI schemes of HTTP's look-alikes.
  std::string_view target = s.substr(mlen);
  while (!target.empty() && target.front() == ' ')
    target.remove_prefix(1);
  if (target.empty())
    return len >= mlen + 1;
  return !(starts_with_ci(target, "sip:") || starts_with_ci(target, "sips:") ||
           starts_with_ci(target, "tel:") || starts_with_ci(target, "rtsp:") ||
           starts_with_ci(target, "rtsps:") || starts_with_ci(target, "rtspu:"));
}

bool starts_request(const uint8_t* data, size_t len) {
  if (data == nullptr || len == 0)
    return false;
  const std::string_view s(reinterpret_cast<const char*>(data), len < 8192 ? len : 8192);
  if (match_method(s.substr(0, std::min<size_t>(s.size(), 32))) > 0)
    return true;
  std::string_view line;
  request_line rl;
  return match_method_token(s) > 0 && first_line(s, line) && parse_strict_request_line(line, rl);
}

} // namespace metaprobe::http
