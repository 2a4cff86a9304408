// SPDX-License-Identifier: Apache-2.0
#pragma once
// HTTP/1.x message syntax (RFC 9110/9112): start lines, the header fields
// metaprobe reads, body framing values. Pure functions on one line of text
// (no CR/LF); the framing state machine lives in http_parser.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "parsers/common/text_line.hpp"

namespace metaprobe::http {

// Methods whose responses or framing differ from the rest.
enum class method_kind : uint8_t { other, head, connect };

// Longest request method metaprobe accepts (the longest registered one,
// UPDATEREDIRECTREF, has 17 characters).
constexpr size_t max_method = 64;

// RFC 9110 §5.6.2 tchar.
bool is_tchar(char c);

// Length of the method token `line` starts with when it is followed by a
// space, else 0: any RFC 9110 method (1*tchar, at most max_method), case
// kept (methods are case-sensitive: "get" is a method of its own, not GET).
size_t match_method_token(std::string_view line);

// Length of the known request method `line` starts with when it is followed
// by a space, else 0. Known: RFC 9110, WebDAV/DeltaV/CalDAV, PATCH, SSDP/GENA
// and the other methods tshark recognises as HTTP (case-sensitive).
size_t match_method(std::string_view line);

// Whether `method` is one of the known methods of match_method().
bool is_known_method(std::string_view method);

// METHOD code of the clickstream template: 1 GET, 2 POST, 3 PUT, 4 DELETE, 0 other.
uint32_t method_code(std::string_view method);

method_kind classify_method(std::string_view method);

// GENA/UPnP event methods (NOTIFY, SUBSCRIBE, UNSUBSCRIBE): parsed for
// framing but not reported as clickstream (tshark does not count them as
// requests either).
bool is_notification(std::string_view method);

// "HTTP/" DIGIT "." DIGIT
bool is_http_version(std::string_view v);

// "HTTP/1.0" or "HTTP/1.1".
bool is_http1_version(std::string_view v);

struct request_line {
  std::string_view method;
  std::string_view target;  // raw request-target, as sent; empty when absent
  std::string_view version; // as sent ("HTTP/1.1", "HTTP/x"); empty when
                            // absent or the line was cut
  bool no_version = false;   // method SP target and nothing more (HTTP/0.9)
  bool bad_version = false;  // a version word that is no HTTP-version
  bool empty_target = false; // method SP+ version, no target (OPTIONS  HTTP/1.1)
  // Whether the line is in one of the forms above, which servers answer but
  // RFC 9112 §3 does not allow.
  bool lenient() const { return no_version || bad_version || empty_target; }
};

// method SP+ request-target SP+ HTTP-version, read as whitespace-delimited
// words (RFC 9112 §3): runs of spaces are tolerated, the version is the last
// word and the target the first word after the method (a target with raw
// spaces is cut at the first one, as servers and tshark read it). The method
// is any token (match_method_token). `cut` says the line was truncated at
// max_line: then the version is unknown and only method and (partial)
// target are required; a method that is not known then needs a target that
// begins like one ('/', '*' or a scheme's "://").
//
// Lenient forms, flagged in `out` (strict callers check lenient()):
//   no_version: one word after the method, the target: an HTTP/0.9 simple
//     request ("GET /"); a method that is not known needs a target that
//     begins like one.
//   empty_target: one word after the method that begins with "HTTP/" (any
//     case): the version, with no target ("OPTIONS  HTTP/1.1", "OPTIONS
//     HTTP/1.1"); a method that is not known needs a valid version.
//   bad_version: a last word that is no HTTP-version ("HTTP/1.", "HTTP/x",
//     "HTTP/2", "http/1.1", "FOO"), kept as sent. Another protocol's version
//     ("RTSP/1.0", "SIP/2.0": letters '/' digit) is never one: no request.
//     A method that is not known needs a word beginning with "HTTP/" (any
//     case) and a target that begins like one.
// A method with nothing after it ("OPTIONS") is no request.
bool parse_request_line(std::string_view line, bool cut, request_line& out);

// The strict form detection uses for a method that is not known: exactly
// token SP request-target SP ("HTTP/1.0" | "HTTP/1.1"), single spaces, a
// target of visible characters that starts with '/' or '*', is an
// absolute URI ("scheme://") or an authority (host:port).
bool parse_strict_request_line(std::string_view line, request_line& out);

// The HTTP/2 connection preface's first line ("PRI * HTTP/2.0", RFC 9113
// §3.4): a flow that starts HTTP/2 with prior knowledge, not a request.
bool is_h2_preface(const request_line& rl);

struct status_line {
  std::string_view version;
  uint32_t code = 0;
  std::string_view phrase;
};

// HTTP-version SP 3DIGIT [SP reason-phrase]
bool parse_status_line(std::string_view line, status_line& out);

// The header fields metaprobe looks at.
enum class header_id : uint8_t {
  other,
  host,
  user_agent,
  referer,
  cookie,
  content_length,
  transfer_encoding,
  content_type,
  location,
  upgrade,                // RFC 9110 §7.8
  sec_websocket_protocol, // RFC 6455 §11.3.4
};

header_id classify_header(std::string_view name);

// Strips optional whitespace (SP / HTAB) at both ends.
using text::trim_ows;

// 1*DIGIT (surrounding whitespace already trimmed); false on junk or overflow.
bool parse_content_length(std::string_view v, uint64_t& out);

// True when the last transfer coding of a Transfer-Encoding value is "chunked".
bool is_chunked(std::string_view te);

// chunk-size [ chunk-ext ]: hex size, anything after ';' ignored.
bool parse_chunk_size(std::string_view line, uint64_t& out);

// Whether `data` starts like an HTTP/1.x message: a known method followed by
// a space and a request target that is no SIP/RTSP URI (with an HTTP version
// at the end when the whole line is there); any other method token only with
// its whole line there in the strict form (parse_strict_request_line); or
// "HTTP/1.0" / "HTTP/1.1".
bool looks_like_http(const uint8_t* data, size_t len);

// Whether a segment that begins with `data` begins an HTTP request: a known
// method and a space, or a whole first line in the strict form.
bool starts_request(const uint8_t* data, size_t len);

} // namespace metaprobe::http
