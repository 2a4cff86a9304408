// SPDX-License-Identifier: Apache-2.0
// Fuzzes the WebSocket de-framer and SIP over WebSocket:
//  1. each side's bytes through a bare de-framer, cut at pseudo-random
//     points (with occasional gaps): the buffered message never exceeds its
//     bound, delivered messages neither, and the counters add up;
//  2. both sides as the WebSocket part of an HTTP flow: a canned JsSIP
//     Upgrade request and Kamailio 101 first, then the fuzz bytes as frames,
//     through the HTTP parser (the hand-over path) and finish(); every
//     exported string is valid UTF-8 within max_field, no more records than
//     max_records_per_flow.
//
// Input: the two-sided layout of fuzz_driver.hpp:
//        [0] flags (bit1 tiny limits, bit2 gaps, bit3 the 101 and the first
//        server bytes in one segment)   [1..4] PRNG seed
//        [5..6] client byte count (big endian), then client, then server bytes.

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_driver.hpp"
#include "parsers/http/http_parser.hpp"
#include "parsers/websocket/ws_frame.hpp"

using namespace metaprobe;
using fuzz::check;
using fuzz::check_text;

namespace {

struct bounded_handler : websocket::message_handler {
  size_t bound = 0;
  uint64_t messages = 0;
  void on_message(websocket::opcode op, std::string_view payload) override {
    check(op == websocket::opcode::text || op == websocket::opcode::binary);
    check(payload.size() <= bound);
    ++messages;
  }
  void on_control(websocket::opcode op) override {
    check(op == websocket::opcode::close || op == websocket::opcode::ping ||
          op == websocket::opcode::pong);
  }
};

void check_records(const record_sink& out, const parser_options& o) {
  check(out.size() <= 2 * o.max_records_per_flow); // HTTP records + SIP records
  for (const auto& r : out) {
    if (r.record.has_sip()) {
      const auto& s = r.record.sip();
      for (const std::string* t : {&s.msg_code(), &s.uri(), &s.from(), &s.to(), &s.callid(),
                                   &s.uagent(), &s.ctype(), &s.gateways()})
        check_text(*t, o.max_field);
      check(s.status_code() == 0 || (s.status_code() >= 100 && s.status_code() <= 699));
    } else {
      check(r.record.has_clickstream() || r.record.has_http_reply());
    }
  }
}

const std::string upgrade_request =
  "GET / HTTP/1.1\r\nHost: ws.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
  "Sec-WebSocket-Protocol: sip\r\n\r\n";
const std::string switching =
  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: sip\r\n\r\n";

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::two_sided_input in;
  if (!fuzz::split_two_sided(data, size, in))
    return 0;
  parser_options o;
  if (in.flags & 2)
    fuzz::set_tiny_limits(o);
  const bool gaps = (in.flags & 4) != 0;

  // 1. Bare de-framers.
  for (int d = 0; d < 2; ++d) {
    websocket::counters c;
    websocket::deframer df(o.max_buffered, c);
    bounded_handler h;
    h.bound = o.max_buffered;
    size_t pos = 0;
    while (pos < in.side_len[d]) {
      const uint32_t r = in.rng.next();
      size_t n = 1 + (r >> 8) % ((r & 7) == 0 ? 4096 : 16);
      if (n > in.side_len[d] - pos)
        n = in.side_len[d] - pos;
      if (gaps && (r & 0x70) == 0x70)
        df.gap(n);
      else
        df.feed(in.side_data[d] + pos, n, h);
      check(df.buffered() <= o.max_buffered);
      pos += n;
    }
    check(h.messages == c.messages);
    check(c.messages + c.control_frames <= c.frames);
    check(c.protocol_errors + c.gap_failures <= 1);
  }

  // 2. Through the HTTP parser, after the Upgrade.
  parser_counters counters;
  auto p = make_http_parser(o, counters);
  record_sink out;
  p->deliver(direction::client_to_server,
             reinterpret_cast<const uint8_t*>(upgrade_request.data()), upgrade_request.size(), 1,
             100, out);
  if (in.flags & 8) {
    std::string first = switching;
    const size_t glued = in.side_len[1] < 64 ? in.side_len[1] : 64;
    first.append(reinterpret_cast<const char*>(in.side_data[1]), glued);
    p->deliver(direction::server_to_client, reinterpret_cast<const uint8_t*>(first.data()),
               first.size(), 1, 500, out);
    const size_t used = first.size() - switching.size();
    in.side_data[1] += used;
    in.side_len[1] -= used;
  } else {
    p->deliver(direction::server_to_client, reinterpret_cast<const uint8_t*>(switching.data()),
               switching.size(), 1, 500, out);
  }
  fuzz::feed_both_sides(*p, in, gaps, out);
  check_records(out, o);
  check(counters.extra[websocket_sip] <= 1);
  return 0;
}
