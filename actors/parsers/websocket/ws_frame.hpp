// SPDX-License-Identifier: Apache-2.0
#pragma once
// WebSocket framing (RFC 6455 §5): one direction's byte stream in, whole
// messages out. Plain C++, no I/O, never throws.
//
// What it reads: the 2-byte header, the 16- and 64-bit extended payload
// lengths, the masking key (a masked frame is unmasked whatever the
// direction: RFC 6455 wants client frames masked and server frames not, and
// the de-framer follows the mask bit the frame carries); data frames (text
// 1, binary 2) with FIN, continuation frames (0) of a fragmented message,
// and control frames (close 8, ping 9, pong 10; at most 125 bytes, never
// fragmented) interleaved anywhere, also between the fragments of a message.
// A frame, and each of its fields, may be split anywhere across deliveries:
// every byte is looked at once (linear in the bytes seen).
//
// Bounds: a message is buffered up to `max_message` bytes; a longer one is
// skipped to its end and counted (`oversize`), framing goes on. Control
// frame payloads are never buffered. A message with RSV1 set (permessage-
// deflate, RFC 7692) is skipped and counted (`compressed`): metaprobe does
// not inflate. After a close frame the direction ends (`closed`).
//
// Errors: a reserved opcode, RSV2/RSV3 set, a control frame with FIN clear
// or over 125 bytes, a continuation without a message, a new data frame
// inside a fragmented message, or a 64-bit length with its top bit set is a
// protocol error: framing is lost for good (`failed()`), counted in
// `protocol_errors`. A gap inside a frame's payload only shortens it (the
// message it belongs to is dropped and counted in `damaged`); a gap
// anywhere else loses the framing (`failed()`, counted in `gap_failures`).

#include "parsers/common/heap_bytes.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace metaprobe::websocket {

enum class opcode : uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

// The counters a de-framer adds to; they are owned by the caller (one set
// per parser kind and shard) and shared by the de-framers of many flows.
struct counters {
  uint64_t frames = 0;          // frames whose header was read
  uint64_t messages = 0;        // complete data messages delivered
  uint64_t control_frames = 0;  // ping, pong, close
  uint64_t oversize = 0;        // messages over max_message, skipped
  uint64_t compressed = 0;      // RSV1 (permessage-deflate) messages, skipped
  uint64_t damaged = 0;         // messages that lost bytes to a gap, skipped
  uint64_t protocol_errors = 0; // framing violations (the direction stops)
  uint64_t gap_failures = 0;    // gaps outside a payload (the direction stops)
};

// Receives what the de-framer finds. `payload` is valid during the call.
class message_handler {
public:
  virtual ~message_handler() = default;
  // A complete text or binary message (fragments joined, unmasked).
  virtual void on_message(opcode op, std::string_view payload) = 0;
  // A control frame (close, ping, pong); its payload is not kept.
  virtual void on_control(opcode /*op*/) {}
};

class deframer {
public:
  deframer(size_t max_message, counters& c) : max_message_(max_message), c_(c) {}
  // Heap bytes held (the message being assembled).
  size_t memory_bytes() const { return heap_bytes(msg_); }

  // In-order bytes of this direction.
  void feed(const uint8_t* data, size_t len, message_handler& h);
  // `len` bytes of this direction will never arrive.
  void gap(size_t len);

  bool failed() const { return st_ == state::failed; }
  bool closed() const { return st_ == state::closed; }
  // Bytes of the message being assembled (at most max_message).
  size_t buffered() const { return msg_.size(); }

private:
  enum class state : uint8_t { header, payload, closed, failed };

  void fail() {
    st_ = state::failed;
    ++c_.protocol_errors;
    msg_.clear();
    msg_.shrink_to_fit();
  }
  bool start_frame();            // header complete: checks it; false on error
  void end_frame(message_handler* h); // h may be null (after a gap)

  const size_t max_message_;
  counters& c_;
  state st_ = state::header;
  uint8_t hdr_[14] = {};         // the header being read
  uint8_t hdr_len_ = 0;
  uint8_t hdr_need_ = 2;
  // The current frame.
  bool fin_ = false;
  bool masked_ = false;
  opcode op_ = opcode::text;
  uint8_t mask_[4] = {};
  uint64_t remaining_ = 0;       // payload bytes still to come
  uint64_t offset_ = 0;          // payload bytes already seen (mask position)
  // The data message being assembled.
  bool in_message_ = false;      // a text/binary frame without FIN was seen
  opcode msg_op_ = opcode::text;
  bool msg_skip_ = false;        // oversize, compressed or damaged: not delivered
  std::string msg_;
};

} // namespace metaprobe::websocket
