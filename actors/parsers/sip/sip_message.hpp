// SPDX-License-Identifier: Apache-2.0
#pragma once
// SIP message syntax (RFC 3261 §7, §20, §25): start lines, the header fields
// metaprobe reads (long and compact forms), address and Via values. Pure
// functions on text without CR/LF; framing lives in sip_parser.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace metaprobe::sip {

struct request_line {
  std::string_view method;  // token, as sent
  std::string_view uri;     // Request-URI, as sent
};

// Method SP Request-URI SP SIP-Version. The method is a token, the URI has
// a scheme ("sip:", "sips:", "tel:", any "scheme:"), the version is
// "SIP/" 1*DIGIT "." 1*DIGIT (case-insensitive).
bool parse_request_line(std::string_view line, request_line& out);

struct status_line {
  uint32_t code = 0;        // 100..699
  std::string_view phrase;
};

// SIP-Version SP 3DIGIT [SP Reason-Phrase].
bool parse_status_line(std::string_view line, status_line& out);

// "SIP/" 1*DIGIT "." 1*DIGIT, ASCII case-insensitive.
bool is_sip_version(std::string_view v);

// The header fields metaprobe looks at (RFC 3261 §7.3.3 compact forms:
// i Call-ID, l Content-Length, c Content-Type, f From, t To, v Via).
enum class header_id : uint8_t {
  other,
  from,
  to,
  call_id,
  user_agent,
  content_type,
  content_length,
  via,
  cseq,
};

header_id classify_header(std::string_view name);

// The URI of a From/To/Contact value: the part inside <...> of a name-addr
// (a quoted display name may hold '<'), else the addr-spec up to the first
// ';' (header parameters such as tag). Trimmed; empty when there is none.
std::string_view address_uri(std::string_view value);

// The method of a CSeq value ("28715 REGISTER" -> "REGISTER"); empty when
// the value has no second word.
std::string_view cseq_method(std::string_view value);

// Calls `f(host)` for the sent-by host of each via-parm of a Via value
// ("SIP/2.0/UDP host[:port];params, ..."): the host without port, an IPv6
// reference without its brackets. Stops after `max` hosts; returns how many
// via-parms were seen (so the caller can tell a cut list).
template <class F>
size_t for_each_via_host(std::string_view value, size_t max, F&& f);

// Whether `data` starts like a SIP message: a request line (token method, SP,
// a sip:/sips:/tel: URI, and " SIP/2.0" at the end when the line is complete)
// or "SIP/2.0 " and a status code.
bool looks_like_sip(const uint8_t* data, size_t len);

// ---------------------------------------------------------------- inline

// The sent-by host of one via-parm; empty when it has none.
std::string_view via_host(std::string_view via_parm);

template <class F>
size_t for_each_via_host(std::string_view value, size_t max, F&& f) {
  size_t seen = 0;
  size_t start = 0;
  bool quoted = false;
  for (size_t i = 0; i <= value.size(); ++i) {
    const bool end = i == value.size();
    if (!end) {
      const char c = value[i];
      if (c == '"')
        quoted = !quoted;
      if (quoted || c != ',')
        continue;
    }
    const std::string_view host = via_host(value.substr(start, i - start));
    if (!host.empty()) {
      if (seen < max)
        f(host);
      ++seen;
    }
    start = i + 1;
  }
  return seen;
}

} // namespace metaprobe::sip
