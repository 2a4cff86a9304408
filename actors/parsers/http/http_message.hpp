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

// Length of the known request method `line` starts with when it is followed
// by a space, else 0. Known: RFC 9110, WebDAV/DeltaV/CalDAV, PATCH, SSDP/GENA
// and the other methods tshark recognises as HTTP.
size_t match_method(std::string_view line);

// METHOD code of the clickstream template: 1 GET, 2 POST, 3 PUT, 4 DELETE, 0 other.
uint32_t method_code(std::string_view method);

method_kind classify_method(std::string_view method);

// GENA/UPnP event methods (NOTIFY, SUBSCRIBE, UNSUBSCRIBE): parsed for
// framing but not reported as clickstream (tshark does not count them as
// requests either).
bool is_notification(std::string_view method);

// "HTTP/" DIGIT "." DIGIT
bool is_http_version(std::string_view v);

struct request_line {
  std::string_view method;
  std::string_view target;  // raw request-target, as sent
  std::string_view version; // "HTTP/1.1"; empty when the line was cut
};

// method SP+ request-target SP+ HTTP-version, read as whitespace-delimited
// words (RFC 9112 §3): runs of spaces are tolerated, the version is the last
// word and the target the first word after the method (a target with raw
// spaces is cut at the first one, as servers and tshark read it). `cut`
// says the line was truncated at max_line: then the version is
// unknown and only method and (partial) target are required.
bool parse_request_line(std::string_view line, bool cut, request_line& out);

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
// at the end when the whole line is there), or "HTTP/1.".
bool looks_like_http(const uint8_t* data, size_t len);

} // namespace metaprobe::http
