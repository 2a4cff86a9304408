// SPDX-License-Identifier: Apache-2.0
#pragma once
// HTTP/1.x stream parser: requests -> Clickstream records (host_type 1),
// responses -> HttpReply records (only when parser_options::http_parse_reply).
//
// Roles: each direction takes the role of its first valid start line (a
// request line makes it the requester, a status line the responder), so a
// flow whose "client" per the flow table is really the server still parses.
//
// Framing (RFC 9112 §6): Content-Length; Transfer-Encoding chunked (chunk
// sizes, extensions and trailers may be split anywhere); requests without a
// length have no body; responses to HEAD, 1xx, 204 and 304 have none; a
// response with neither length nor chunking runs to connection close; 100
// Continue (any 1xx but 101) precedes the real response; CONNECT 2xx and 101
// Switching Protocols end parsing (state done). Pipelined requests are
// matched to responses in order through a bounded queue of pending methods.
//
// Errors: a line that is not what the state expects sends the direction into
// resync: lines are skipped until one is a start line of the direction's role
// (a segment that begins like a start line also ends the skipped line).
// While the flow is still probing, more than max_buffered skipped bytes in a
// direction detach the parser (violation). A gap inside a body of known
// length only shortens it; a gap anywhere else drops the partial message and
// resyncs. A request whose header block never completes is still reported
// by finish() when its request line was seen.
//
// Records and tshark 4.0 truth (truth/<file>.http_req.tsv / .http_resp.tsv):
//   Clickstream: method_name = http.request.method, method = 1..4 for
//   GET/POST/PUT/DELETE else 0, hostname = http.host (the first Host field,
//   as sent, ":port" kept), path = http.request.uri (the request-target as
//   sent: the first word after the method), http_version =
//   http.request.version, user_agent = http.user_agent, referer =
//   http.referer, cookie = http.cookie (several Cookie fields: tshark joins
//   them with '|', metaprobe with "; "), tcp_sequence = TCP sequence of the
//   request line's first byte, host_type = 1.
//   HttpReply: result_code = http.response.code, content_type =
//   http.content_type, content_length = http.content_length_header (0 when
//   absent), location = http.location.
//   Differences, on purpose: a record leaves when its header block is
//   complete, while tshark (TCP desegmentation on) shows a message only once
//   its body has arrived too, so captures that lose or cut bodies yield more
//   records here (http-4k-requests, http-650-responses, mixed-netflix...);
//   runs of spaces after the method are skipped (tshark then shows an empty
//   URI); a header line without ':' is skipped (tshark ends the header block
//   there); NOTIFY/SUBSCRIBE/UNSUBSCRIBE (UPnP eventing) are framed but not
//   reported, as tshark does not count them as requests; SSDP (HTTP over UDP
//   1900, M-SEARCH) is reported, as tshark does.
//
// Limits (parser_options): max_line (longer lines are cut; the kept prefix is
// used), max_headers (further headers only feed framing), max_buffered (header
// block size; and the probing resync budget), max_field (exported values cut
// on a UTF-8 boundary; invalid UTF-8 becomes U+FFFD), max_records_per_flow.
// Each hit counts in parser_counters::limit_hits / truncated_fields.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "parsers/http/http_message.hpp"
#include "parsers/parser.hpp"
#include "parsers/registry.hpp"

namespace metaprobe {

// Registry entry: TCP ports 80, 8080, 8000, 8008, 8888, 3128, 3129, 81, 591;
// UDP port 1900 (SSDP: HTTP messages in datagrams); probe = looks_like_http.
protocol_entry http_protocol_entry();

// Payload probe: a known method followed by a space (and an HTTP version at
// the end of the line when the line is complete), or "HTTP/1.0"/"HTTP/1.1".
bool http_probe(const uint8_t* data, size_t len, direction dir);

std::unique_ptr<stream_parser> make_http_parser(const parser_options& opts,
                                                parser_counters& counters);

// HTTP over UDP (SSDP M-SEARCH and its responses): one message per datagram.
std::unique_ptr<datagram_parser> make_http_datagram_parser(const parser_options& opts,
                                                           parser_counters& counters);

class http_parser final : public stream_parser {
public:
  http_parser(const parser_options& opts, parser_counters& counters);

  // Datagram mode: each call is one self-contained message (no pairing of
  // responses with requests, no body framing, a message without its final
  // empty line still counts).
  void deliver_datagram(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
                        record_sink& out);

  void deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
               uint32_t seq, record_sink& out) override;
  void gap(direction dir, size_t len) override;
  void finish(uint64_t ts_ns, record_sink& out) override;
  // The first Host header value seen on the flow.
  std::string flow_host() const override { return flow_host_; }

private:
  enum class role : uint8_t { unknown, requester, responder };
  enum class phase : uint8_t {
    start_line,     // expecting a request/status line (empty lines skipped)
    headers,        // inside a header block
    body,           // skipping `remaining` body bytes
    chunk_size,     // expecting a chunk-size line
    chunk_data,     // skipping `remaining` chunk bytes
    chunk_data_end, // expecting the CRLF after chunk data
    trailers,       // trailer fields until an empty line
    until_close,    // body delimited by connection close
    resync,         // skipping lines until a start line
    ignore,         // nothing more to parse in this direction
  };

  // The message whose header block is being read.
  struct message {
    bool active = false;     // start line seen
    bool is_request = false;
    uint32_t seq = 0;        // TCP sequence of the start line's first byte
    std::string method, target, version;
    std::string host, user_agent, referer, cookie;
    std::string content_type, location;
    uint32_t status = 0;
    bool has_length = false;
    uint64_t content_length = 0;
    bool te_present = false;
    bool chunked = false;
    bool cut = false;        // a value lost data to max_field/max_line
    size_t header_count = 0;
    size_t header_bytes = 0;
    std::string* fold_target = nullptr; // value an obs-fold line continues
    void reset();
  };

  struct side {
    role r = role::unknown;
    phase ph = phase::start_line;
    std::string line;          // bytes of the current line not yet complete
    bool line_cut = false;     // the current line exceeded max_line
    uint32_t line_seq = 0;     // sequence of the current line's first byte
    uint64_t remaining = 0;    // body / chunk bytes left
    uint64_t resync_skipped = 0;
    message msg;
  };

  static constexpr size_t pending_cap = 64;

  void process(side& s, direction dir, const uint8_t* data, size_t len,
               uint64_t ts_ns, uint32_t seq, record_sink& out);
  void on_line(side& s, direction dir, std::string_view line, bool cut,
               uint32_t line_seq, uint64_t ts_ns, record_sink& out);
  bool try_start_line(side& s, std::string_view line, bool cut, uint32_t line_seq);
  void on_header_line(side& s, std::string_view line);
  void end_of_headers(side& s, direction dir, uint64_t ts_ns, record_sink& out);
  bool segment_starts_message(const side& s, const uint8_t* data, size_t len) const;
  void start_resync(side& s);
  void note_skipped(side& s, size_t n);
  void finish_partial(side& s, direction dir, uint64_t ts_ns, record_sink& out);
  void emit_request(side& s, direction dir, uint64_t ts_ns, record_sink& out);
  void emit_response(side& s, direction dir, uint64_t ts_ns, record_sink& out);
  bool emit(parsed_record&& rec, record_sink& out);
  void set_field(std::string& dst, std::string_view value, message& m);
  void push_pending(http::method_kind k);
  http::method_kind pop_pending();

  const parser_options opts_;
  parser_counters& counters_;
  side sides_[2];
  std::string flow_host_;
  std::array<http::method_kind, pending_cap> pending_{};
  size_t pending_head_ = 0;
  size_t pending_size_ = 0;
  size_t records_ = 0;
  bool datagram_mode_ = false;
};

class http_datagram_parser final : public datagram_parser {
public:
  http_datagram_parser(const parser_options& opts, parser_counters& counters);
  void deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
               record_sink& out) override;
  std::string flow_host() const override { return inner_.flow_host(); }

private:
  http_parser inner_;
};

} // namespace metaprobe
