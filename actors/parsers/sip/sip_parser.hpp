// SPDX-License-Identifier: Apache-2.0
#pragma once
// SIP parser (RFC 3261): every request and response -> one Sip record
// (meta group, template "sip"), sent by the message's sender.
//
// Transports: UDP (datagram parser: one or more messages per datagram; a
// message with Content-Length is followed by the next one, a message without
// it runs to the end of the datagram, a datagram without the empty line
// after the headers still counts) and TCP (stream parser: messages framed by
// their header block and Content-Length, absent = 0 per RFC 3261 §18.3;
// several messages per segment and messages split anywhere across segments;
// keep-alives between messages (CRLF, spaces, NULs) are skipped). TLS (5061) is not SIP's.
// WebSocket (RFC 7118, on any port after an HTTP/1.1 Upgrade with
// subprotocol "sip"): sip_ws.hpp de-frames the flow and feeds each
// WebSocket message to the engine as a datagram; the HTTP parser owns the
// hand-over.
// Registry: UDP and TCP port 5060; probe = looks_like_sip on any port.
//
// Record fields and tshark 4.0 truth (truth/<file>.sip.tsv):
//   MSG_CODE    request: the method (sip.Method); response: the method of
//               its CSeq (sip.CSeq's second word), so a reply says what it
//               answers.
//   STATUS_CODE response: sip.Status-Code; request: 0.
//   URI         request: the Request-URI as sent (sip.r-uri); response: "".
//   FROM, TO    the URI of the From / To value (sip.from.addr / sip.to.addr):
//               inside <...> when present, else up to the first ';'.
//   CALLID      sip.Call-ID.   UAGENT: sip.User-Agent.
//   CTYPE       sip.Content-Type (the whole value, parameters included).
//   GATEWAYS    the sent-by host of every Via entry, topmost first, joined
//               with ',' (the hosts of sip.Via, without port and params).
// Header names are case-insensitive; compact forms f, t, i, c, l, v work;
// folded header lines (leading SP/HT) continue the previous value. The first
// From/To/Call-ID/User-Agent/Content-Type/CSeq header counts.
//
// Errors: a start line that is neither request nor status line: while the
// flow is probing, the stream parser detaches (violation) and the datagram
// parser detaches after `probe_bad_datagrams` such datagrams; once
// confirmed, the stream parser skips lines until a start line (resync) and
// the datagram parser ignores the datagram. A gap inside a body shortens
// it; a gap elsewhere drops the partial message and resyncs. A header block
// that never completes on a stream is not reported.
//
// Limits (parser_options): max_line (a longer header line is cut; the kept
// prefix is used), max_headers (later headers are only scanned for
// Content-Length), max_buffered (a header block longer than this is dropped:
// violation while probing, resync after), max_field (exported values cut on
// a UTF-8 boundary, invalid UTF-8 -> U+FFFD), max_records_per_flow; at most
// `max_via` Via entries go into GATEWAYS. Each hit counts in
// parser_counters::limit_hits / truncated_fields.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "parsers/parser.hpp"
#include "parsers/registry.hpp"

namespace metaprobe {

protocol_entry sip_protocol_entry();

bool sip_probe(const uint8_t* data, size_t len, direction dir);

std::unique_ptr<stream_parser> make_sip_stream_parser(const parser_options& opts,
                                                      parser_counters& counters);
std::unique_ptr<datagram_parser> make_sip_datagram_parser(const parser_options& opts,
                                                          parser_counters& counters);

// Message framing and record building shared by both transports.
class sip_engine {
public:
  static constexpr size_t max_via = 32;
  static constexpr uint32_t probe_bad_datagrams = 4;

  sip_engine(const parser_options& opts, parser_counters& counters);

  enum class head_result : uint8_t { ok, bad_start_line };

  // Parses the header block `head` (start line + header lines, without the
  // empty line) and emits its record. `has_length` / `content_length` get
  // the first valid Content-Length.
  head_result on_head(std::string_view head, direction dir, uint64_t ts_ns, uint32_t seq,
                      bool& has_length, uint64_t& content_length, record_sink& out);

  // One datagram (datagram mode).
  void on_datagram(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
                   record_sink& out);

  // Stream mode.
  void on_stream(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns, uint32_t seq,
                 record_sink& out);
  void on_gap(direction dir, size_t len);

  parser_state state() const { return state_; }
  // Heap bytes of the unfinished messages (owners' memory_bytes).
  size_t memory_bytes() const { return heap_bytes(sides_[0].buf, sides_[1].buf); }

private:
  struct side {
    std::string buf;        // bytes of the message not yet complete
    size_t off = 0;         // consumed prefix of buf
    uint32_t buf_seq = 0;   // TCP sequence of buf[0]
    uint64_t skip = 0;      // body bytes still to skip
    bool resync = false;    // skipping lines until a start line
    size_t scan = 0;        // bytes after off already searched for the end
                            // of the header block or, while resyncing, of
                            // the line
    size_t scan_line = 0;   // start (after off) of the unfinished header line
  };

  void process(side& s, direction dir, uint64_t ts_ns, record_sink& out);
  bool resync(side& s);
  void set_text(std::string* dst, std::string_view value);
  void violate();

  const parser_options opts_;
  parser_counters& counters_;
  parser_state state_ = parser_state::probing;
  side sides_[2];
  size_t records_ = 0;
  uint32_t bad_datagrams_ = 0;
};

class sip_stream_parser final : public stream_parser {
public:
  sip_stream_parser(const parser_options& opts, parser_counters& counters);
  void deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns, uint32_t seq,
               record_sink& out) override;
  size_t memory_bytes() const override;
  void gap(direction dir, size_t len) override;
  void finish(uint64_t ts_ns, record_sink& out) override;

private:
  sip_engine engine_;
};

class sip_datagram_parser final : public datagram_parser {
public:
  sip_datagram_parser(const parser_options& opts, parser_counters& counters);
  void deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
               record_sink& out) override;
  size_t memory_bytes() const override;

private:
  sip_engine engine_;
};

} // namespace metaprobe
