// SPDX-License-Identifier: Apache-2.0
#include "parsers/sip/sip_message.hpp"

#include "parsers/common/text_line.hpp"

namespace metaprobe::sip {

using text::iequals;
using text::is_digit;
using text::is_ows;
using text::trim_ows;

namespace {

// scheme ":" with a scheme of ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
bool has_scheme(std::string_view uri) {
  if (uri.empty())
    return false;
  const char c0 = text::ascii_lower(uri[0]);
  if (c0 < 'a' || c0 > 'z')
    return false;
  for (size_t i = 1; i < uri.size() && i < 32; ++i) {
    const char c = uri[i];
    if (c == ':')
      return true;
    const char l = text::ascii_lower(c);
    if (!((l >= 'a' && l <= 'z') || is_digit(c) || c == '+' || c == '-' || c == '.'))
      return false;
  }
  return false;
}

bool is_token(std::string_view s) {
  if (s.empty())
    return false;
  for (char c : s)
    if (!text::is_token_char(c))
      return false;
  return true;
}

} // namespace

bool is_sip_version(std::string_view v) {
  if (v.size() < 7 || !text::istarts_with(v, "SIP/"))
    return false;
  size_t i = 4;
  size_t d = 0;
  while (i < v.size() && is_digit(v[i]) && d < 3) {
    ++i;
    ++d;
  }
  if (d == 0 || i >= v.size() || v[i] != '.')
    return false;
  ++i;
  d = 0;
  while (i < v.size() && is_digit(v[i]) && d < 3) {
    ++i;
    ++d;
  }
  return d > 0 && i == v.size();
}

bool parse_request_line(std::string_view line, request_line& out) {
  line = trim_ows(line);
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0 || sp1 > 32)
    return false;
  const std::string_view method = line.substr(0, sp1);
  if (!is_token(method))
    return false;
  const size_t sp2 = line.rfind(' ');
  if (sp2 == sp1)
    return false;
  if (!is_sip_version(line.substr(sp2 + 1)))
    return false;
  const std::string_view uri = trim_ows(line.substr(sp1 + 1, sp2 - sp1 - 1));
  if (uri.empty() || uri.find(' ') != std::string_view::npos || !has_scheme(uri))
    return false;
  out.method = method;
  out.uri = uri;
  return true;
}

bool parse_status_line(std::string_view line, status_line& out) {
  const size_t sp = line.find(' ');
  if (sp == std::string_view::npos || !is_sip_version(line.substr(0, sp)))
    return false;
  size_t i = sp;
  while (i < line.size() && line[i] == ' ')
    ++i;
  if (line.size() < i + 3)
    return false;
  uint32_t code = 0;
  for (size_t k = 0; k < 3; ++k) {
    const char c = line[i + k];
    if (!is_digit(c))
      return false;
    code = code * 10 + static_cast<uint32_t>(c - '0');
  }
  i += 3;
  if (i < line.size() && !is_ows(line[i]))
    return false;
  if (code < 100 || code > 699)
    return false;
  out.code = code;
  out.phrase = trim_ows(line.substr(i));
  return true;
}

header_id classify_header(std::string_view name) {
  if (name.size() == 1) {
    switch (text::ascii_lower(name[0])) {
    case 'f': return header_id::from;
    case 't': return header_id::to;
    case 'i': return header_id::call_id;
    case 'c': return header_id::content_type;
    case 'l': return header_id::content_length;
    case 'v': return header_id::via;
    default: return header_id::other;
    }
  }
  switch (name.size()) {
  case 2:
    return iequals(name, "to") ? header_id::to : header_id::other;
  case 3:
    return iequals(name, "via") ? header_id::via : header_id::other;
  case 4:
    if (iequals(name, "from"))
      return header_id::from;
    return iequals(name, "cseq") ? header_id::cseq : header_id::other;
  case 7:
    return iequals(name, "call-id") ? header_id::call_id : header_id::other;
  case 10:
    return iequals(name, "user-agent") ? header_id::user_agent : header_id::other;
  case 12:
    return iequals(name, "content-type") ? header_id::content_type : header_id::other;
  case 14:
    return iequals(name, "content-length") ? header_id::content_length : header_id::other;
  default:
    return header_id::other;
  }
}

std::string_view address_uri(std::string_view value) {
  value = trim_ows(value);
  // A '<' outside a quoted display name starts the name-addr's URI.
  bool quoted = false;
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (quoted) {
      if (c == '\\')
        ++i; // quoted-pair
      else if (c == '"')
        quoted = false;
      continue;
    }
    if (c == '"') {
      quoted = true;
    } else if (c == '<') {
      const size_t close = value.find('>', i + 1);
      const std::string_view uri =
        close == std::string_view::npos ? value.substr(i + 1) : value.substr(i + 1, close - i - 1);
      return trim_ows(uri);
    }
  }
  if (!value.empty() && value.front() == '"')
    return {}; // a display name without a URI
  const size_t semi = value.find(';');
  return trim_ows(semi == std::string_view::npos ? value : value.substr(0, semi));
}

std::string_view cseq_method(std::string_view value) {
  value = trim_ows(value);
  size_t i = 0;
  while (i < value.size() && !is_ows(value[i]))
    ++i;
  while (i < value.size() && is_ows(value[i]))
    ++i;
  std::string_view rest = value.substr(i);
  size_t j = 0;
  while (j < rest.size() && !is_ows(rest[j]))
    ++j;
  return rest.substr(0, j);
}

std::string_view via_host(std::string_view via_parm) {
  via_parm = trim_ows(via_parm);
  // sent-protocol "SIP/2.0/UDP" (LWS allowed around '/'): past the second
  // '/', then the transport token.
  size_t i = 0;
  size_t slashes = 0;
  while (i < via_parm.size() && slashes < 2) {
    if (via_parm[i] == '/')
      ++slashes;
    ++i;
  }
  if (slashes < 2)
    return {};
  while (i < via_parm.size() && is_ows(via_parm[i]))
    ++i;
  while (i < via_parm.size() && !is_ows(via_parm[i]) && via_parm[i] != ';')
    ++i; // transport
  while (i < via_parm.size() && is_ows(via_parm[i]))
    ++i;
  std::string_view sent_by = via_parm.substr(i);
  if (sent_by.empty())
    return {};
  if (sent_by.front() == '[') {
    const size_t close = sent_by.find(']');
    if (close == std::string_view::npos)
      return {};
    return sent_by.substr(1, close - 1);
  }
  size_t j = 0;
  while (j < sent_by.size() && sent_by[j] != ':' && sent_by[j] != ';' && !is_ows(sent_by[j]))
    ++j;
  return sent_by.substr(0, j);
}

bool looks_like_sip(const uint8_t* data, size_t len) {
  if (data == nullptr || len < 8)
    return false;
  std::string_view s(reinterpret_cast<const char*>(data), len < 1024 ? len : 1024);
  // NAT keep-alives (CRLF) may precede a message on a stream.
  while (!s.empty() && (s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  std::string_view line;
  const bool complete = text::next_line(s, line) != std::string_view::npos;
  if (!complete)
    line = s;
  if (text::istarts_with(line, "SIP/2.0 ")) {
    status_line st;
    if (complete)
      return parse_status_line(line, st);
    return line.size() >= 11 && is_digit(line[8]) && is_digit(line[9]) && is_digit(line[10]);
  }
  if (complete) {
    request_line rl;
    if (!parse_request_line(line, rl))
      return false;
    return text::istarts_with(rl.uri, "sip:") || text::istarts_with(rl.uri, "sips:") ||
           text::istarts_with(rl.uri, "tel:");
  }
  const size_t sp = line.find(' ');
  if (sp == std::string_view::npos || sp == 0 || sp > 32 || !is_token(line.substr(0, sp)))
    return false;
  const std::string_view uri = line.substr(sp + 1);
  return text::istarts_with(uri, "sip:") || text::istarts_with(uri, "sips:") ||
         text::istarts_with(uri, "tel:");
}

} // namespace metaprobe::sip
