// SPDX-License-Identifier: Apache-2.0
#pragma once
// HTTP/1.x stream parser: requests -> Clickstream records (host_type 1),
// responses -> HttpReply records (only when parser_options::http_parse_reply).
//
// Roles: each direction takes the role of its first valid start line (a
// request line makes it the requester, a status line the responder), so a
// flow whose "client" per the flow table is really the server still parses.
//
// Methods: any RFC 9110 method token (1*tchar, at most http::max_method
// characters) followed by a request target and an HTTP version (or a
// lenient form, below) is a request: RFC 9110, WebDAV (PROPFIND, MKCOL, LOCK, ...), PATCH and any
// extension method a server may answer. Methods are case-sensitive (RFC 9110
// §9.1): "get" is not GET but an extension method of its own, reported with
// METHOD 0 and its name as sent, as Zeek and Suricata (libhtp) report it.
// Requests whose method is not a known one (http::match_method) count in
// requests_extension_method. On a port that is not HTTP's the probe is
// stricter (http::looks_like_http): such a method needs its whole line in
// the form token SP target SP HTTP/1.0|1.1. "PRI * HTTP/2.0" (the HTTP/2
// preface) is no request: parsing stops (h2_prefaces).
//
// Lenient request lines (servers answer them, so they are exported and
// counted, never dropped): where a start line is due (not in resync) a line
// with a method and a target is a request whatever its version
// (http::parse_request_line): no version, an HTTP/0.9 simple request "GET /"
// (requests_no_version); a version that is no HTTP/x.y, "HTTP/1.", "HTTP/x",
// "http/1.1", kept as sent (requests_bad_version; "RTSP/1.0", "SIP/2.0" stay
// no request); method SP+ version with no target, "OPTIONS  HTTP/1.1" or
// "OPTIONS HTTP/1.1", path "" (requests_empty_target). A method alone is no
// request. An HTTP/0.9 request has no headers: it is complete at its empty
// line, when the other side sends, or at finish(), whichever comes first
// (header fields it does carry are read). Its response is a status line
// (then parsed as usual) or, when the first bytes are not "HTTP/", a body
// without status line that runs to close (responses_no_status_line; no
// HttpReply, no resync, no violation). The probe stays strict.
//
// Framing (RFC 9112 §6): Content-Length; Transfer-Encoding chunked (chunk
// sizes, extensions and trailers may be split anywhere); requests without a
// length have no body; responses to HEAD, 1xx, 204 and 304 have none; a
// response with neither length nor chunking runs to connection close; 100
// Continue (any 1xx but 101) precedes the real response; CONNECT 2xx hands
// the flow over (kind connect: the stage re-detects the tunnel's content,
// parsers/common/redetect.hpp); what the client sent after CONNECT before
// the response is held, like after an Upgrade request, and goes with it. Pipelined requests are matched to responses in
// order through a bounded queue of pending methods.
//
// Upgrades (RFC 9110 §7.8): after a request with an Upgrade header and no
// body, what the requester sends is held (up to max_buffered bytes; more
// is counted in upgrade_hold_overflow and parsed as HTTP) until the
// response: a 101 hands it to the new protocol, any other final response
// parses it as HTTP. A 101 whose Upgrade is "websocket" and whose
// Sec-WebSocket-Protocol is "sip" turns the rest of the flow, both ways,
// into SIP over WebSocket (RFC 7118, sip/sip_ws.hpp): its SIP messages give
// the same Sip records as SIP over TCP, from this parser (the flow's
// DPI_PROTOCOL stays HTTP). Any other WebSocket (websocket_not_sip) and any
// other upgrade (h2c, TLS) hand the flow over (kind upgrade) with the held
// bytes and the rest of the 101's segment. Counters: upgrades,
// websocket_upgrades, websocket_sip, websocket_not_sip and the framing
// counters ws_* (websocket::counters).
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
//   URI and the rest of the line as the version); lenient request lines
//   (checked with tshark 4.0.17 on a capture of each form): "GET / HTTP/1.",
//   "GET / HTTP/x", "GET / http/1.1", "GET / FOO" give the version as
//   tshark shows it, and "OPTIONS  HTTP/1.1" path "" and version HTTP/1.1
//   as tshark, but "OPTIONS HTTP/1.1" (one space) gives path "", version
//   HTTP/1.1 where tshark shows URI "HTTP/1.1" and no version; "GET /path"
//   followed by header fields gives version "" and the fields, as tshark;
//   an HTTP/0.9 request ("GET /" CRLF, no header block) is reported where
//   tshark shows it only with http.desegment_headers off (URI "/", version
//   ""); "FOO /x" (extension method, no version) is reported, tshark does
//   not know the method; "OPTIONS" alone is no request, tshark (headers not
//   desegmented) shows one with an empty URI; a header line without ':' is
//   skipped (tshark ends the header block there); NOTIFY/SUBSCRIBE/UNSUBSCRIBE (UPnP eventing) are framed but not
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
#include "parsers/sip/sip_ws.hpp"

namespace metaprobe {

// parser_counters::extra slots of the HTTP parser; their names are
// http_protocol_entry().extra_counters.
enum http_counter : size_t {
  requests_extension_method, // requests whose method is not a known one
  h2_prefaces,               // "PRI * HTTP/2.0": HTTP/2 with prior knowledge
  requests_no_version,       // HTTP/0.9 simple requests: method SP target
  requests_bad_version,      // a version that is no HTTP/x.y ("HTTP/1.", "HTTP/x")
  requests_empty_target,     // method SP+ version, no target ("OPTIONS  HTTP/1.1")
  responses_no_status_line,  // HTTP/0.9 responses: the body, to close
  upgrades,                  // 101 Switching Protocols
  websocket_upgrades,        // 101 to WebSocket
  websocket_sip,             // ... with subprotocol sip: SIP over WebSocket
  websocket_not_sip,         // ... without it: the rest of the flow ignored
  upgrade_hold_overflow,     // bytes after an Upgrade request over max_buffered
  ws_frames,                 // websocket::counters, summed over flows
  ws_messages,
  ws_control_frames,
  ws_oversize,
  ws_compressed,
  ws_damaged,
  ws_protocol_errors,
  ws_gap_failures,
  http_counter_count,
};

// Registry entry: TCP ports 80, 8080, 8000, 8008, 8888, 3128, 3129, 81, 591;
// UDP port 1900 (SSDP: HTTP messages in datagrams); probe = looks_like_http.
protocol_entry http_protocol_entry();

// Payload probe: a known method followed by a space (and an HTTP version at
// the end of the line when the line is complete), any other method token
// only with its whole line as token SP target SP HTTP/1.0|1.1, or
// "HTTP/1.0"/"HTTP/1.1" (http::looks_like_http).
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
  size_t memory_bytes() const override;
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
    bool simple = false;     // an HTTP/0.9 request line (no version)
    uint32_t seq = 0;        // TCP sequence of the start line's first byte
    std::string method, target, version;
    std::string host, user_agent, referer, cookie;
    std::string content_type, location;
    uint32_t status = 0;
    bool has_length = false;
    uint64_t content_length = 0;
    bool te_present = false;
    bool chunked = false;
    bool upgrade = false;    // an Upgrade header is present
    bool upgrade_ws = false; // ... and lists "websocket"
    bool ws_sip = false;     // Sec-WebSocket-Protocol lists "sip"
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
    bool hold = false;         // an Upgrade request awaits its response
    std::string held;          // bytes sent meanwhile (at most max_buffered)
    uint32_t held_seq = 0;     // sequence of held[0]
    bool hold_off = false;     // the hold overflowed once: no more holding
  };

  struct pending_request {
    http::method_kind kind = http::method_kind::other;
    bool upgrade = false;
    bool simple = false; // HTTP/0.9: the response may have no status line
  };

  static constexpr size_t pending_cap = 64;

  void process(side& s, direction dir, const uint8_t* data, size_t len,
               uint64_t ts_ns, uint32_t seq, record_sink& out);
  void on_line(side& s, direction dir, std::string_view line, bool cut,
               uint32_t line_seq, uint64_t ts_ns, record_sink& out);
  bool try_start_line(side& s, std::string_view line, bool cut, uint32_t line_seq);
  bool awaits_simple_response(const side& s) const;
  void start_simple_response(side& s);
  void flush_simple_request(side& s, direction dir, uint64_t ts_ns, record_sink& out);
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
  void push_pending(pending_request r);
  pending_request pop_pending();
  void hold_bytes(side& s, direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
                  uint32_t seq, record_sink& out);
  void release_hold(side& s, direction dir, uint64_t ts_ns, record_sink& out);
  // CONNECT 2xx / 101: the flow is handed over (parser.hpp); what the
  // requester held goes with it.
  void switch_protocols(direction responder, handover_kind kind, uint64_t ts_ns);
  void start_websocket_sip(side& responder, direction dir, uint64_t ts_ns, record_sink& out);
  void ws_sync();
  void count(http_counter c) { ++counters_.extra[c]; }

  const parser_options opts_;
  parser_counters& counters_;
  side sides_[2];
  std::string flow_host_;
  std::array<pending_request, pending_cap> pending_{};
  size_t pending_head_ = 0;
  size_t pending_size_ = 0;
  size_t records_ = 0;
  bool datagram_mode_ = false;
  std::unique_ptr<sip_ws_session> ws_; // set after a 101 to WebSocket "sip"
};

class http_datagram_parser final : public datagram_parser {
public:
  http_datagram_parser(const parser_options& opts, parser_counters& counters);
  void deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
               record_sink& out) override;
  size_t memory_bytes() const override;
  std::string flow_host() const override { return inner_.flow_host(); }

private:
  http_parser inner_;
};

} // namespace metaprobe
