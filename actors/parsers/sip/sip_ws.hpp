// SPDX-License-Identifier: Apache-2.0
#pragma once
// SIP over WebSocket (RFC 7118): the bytes of a flow after the HTTP/1.1
// Upgrade to WebSocket with subprotocol "sip" (101 Switching Protocols),
// de-framed per direction (websocket/ws_frame.hpp) and handed to the SIP
// engine. Each text or binary WebSocket message carries exactly one SIP
// message (RFC 7118 §5.2), so it is read like a datagram: the same records,
// fields and rules as SIP over UDP/TCP (sip_parser.hpp), Content-Length
// optional. Records carry tcp_seq 0 (the SIP template has no sequence).
//
// Used by the HTTP parser, which owns the hand-over: plain C++, no I/O,
// one instance per flow, called from its shard's thread only.
//
// Limits: a WebSocket message is buffered up to parser_options::max_buffered
// bytes (longer ones are skipped and counted in websocket::counters::
// oversize); the SIP limits are those of sip_engine. A direction whose
// framing is lost (protocol error, gap outside a payload) stops; the
// session is over when both directions stopped or the SIP engine saw
// `probe_bad_datagrams` messages that are not SIP before a valid one.

#include <cstddef>
#include <cstdint>

#include "parsers/parser.hpp"
#include "parsers/registry.hpp"
#include "parsers/sip/sip_parser.hpp"
#include "parsers/websocket/ws_frame.hpp"

namespace metaprobe {

class sip_ws_session final : private websocket::message_handler {
public:
  sip_ws_session(const parser_options& opts, parser_counters& counters);
  sip_ws_session(const sip_ws_session&) = delete;
  sip_ws_session& operator=(const sip_ws_session&) = delete;

  // In-order bytes of direction `dir` (WebSocket frames).
  void deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
               record_sink& out);
  void gap(direction dir, size_t len);
  // Nothing more can come out of this flow.
  bool over() const;
  // The SIP engine's state (confirmed once a SIP message was read).
  parser_state sip_state() const { return engine_.state(); }
  // The framing counters since the last call (then zeroed), for the owner
  // to add to its own.
  websocket::counters take_counters();
  // Heap bytes held, the session included.
  size_t memory_bytes() const {
    return sizeof(*this) + engine_.memory_bytes() + deframers_[0].memory_bytes() +
           deframers_[1].memory_bytes();
  }

private:
  void on_message(websocket::opcode op, std::string_view payload) override;

  sip_engine engine_;
  websocket::counters ws_counters_;
  websocket::deframer deframers_[2];
  direction cur_dir_ = direction::client_to_server;
  uint64_t cur_ts_ = 0;
  record_sink* cur_out_ = nullptr;
};

} // namespace metaprobe
