// SPDX-License-Identifier: Apache-2.0
#include "parsers/websocket/ws_frame.hpp"

#include <algorithm>

namespace metaprobe::websocket {

namespace {

bool is_control(opcode op) { return (static_cast<uint8_t>(op) & 0x8) != 0; }

} // namespace

bool deframer::start_frame() {
  const uint8_t b0 = hdr_[0];
  const uint8_t b1 = hdr_[1];
  fin_ = (b0 & 0x80) != 0;
  const bool rsv1 = (b0 & 0x40) != 0;
  if ((b0 & 0x30) != 0)
    return false; // RSV2/RSV3: no extension metaprobe knows uses them
  const uint8_t op = b0 & 0x0f;
  if (op > 0xA || (op > 0x2 && op < 0x8))
    return false; // reserved opcode
  op_ = static_cast<opcode>(op);
  masked_ = (b1 & 0x80) != 0;
  const uint8_t len7 = b1 & 0x7f;
  size_t at = 2;
  uint64_t length = len7;
  if (len7 == 126) {
    length = (uint64_t{hdr_[2]} << 8) | hdr_[3];
    at = 4;
  } else if (len7 == 127) {
    if ((hdr_[2] & 0x80) != 0)
      return false; // the most significant bit must be 0
    length = 0;
    for (size_t i = 0; i < 8; ++i)
      length = (length << 8) | hdr_[2 + i];
    at = 10;
  }
  if (masked_)
    std::copy(hdr_ + at, hdr_ + at + 4, mask_);
  ++c_.frames;
  if (is_control(op_)) {
    if (!fin_ || length > 125 || rsv1)
      return false;
    ++c_.control_frames;
  } else if (op_ == opcode::continuation) {
    if (!in_message_)
      return false; // nothing to continue
  } else {
    if (in_message_)
      return false; // a new message inside a fragmented one
    in_message_ = true;
    msg_op_ = op_;
    msg_skip_ = false;
    msg_.clear();
    if (rsv1) {
      msg_skip_ = true; // permessage-deflate: not inflated
      ++c_.compressed;
    }
  }
  remaining_ = length;
  offset_ = 0;
  hdr_len_ = 0;
  hdr_need_ = 2;
  st_ = state::payload;
  return true;
}

void deframer::end_frame(message_handler* h) {
  st_ = state::header;
  if (is_control(op_)) {
    if (h != nullptr)
      h->on_control(op_);
    if (op_ == opcode::close) {
      st_ = state::closed;
      msg_.clear();
      msg_.shrink_to_fit();
    }
    return;
  }
  if (!fin_)
    return; // more fragments follow
  in_message_ = false;
  if (!msg_skip_) {
    ++c_.messages;
    if (h != nullptr)
      h->on_message(msg_op_, msg_);
  }
  msg_.clear();
}

void deframer::feed(const uint8_t* data, size_t len, message_handler& h) {
  if (data == nullptr)
    return;
  size_t pos = 0;
  while (pos < len) {
    switch (st_) {
    case state::closed:
    case state::failed:
      return;
    case state::header: {
      while (hdr_len_ < hdr_need_ && pos < len) {
        hdr_[hdr_len_++] = data[pos++];
        if (hdr_len_ == 2) {
          const uint8_t len7 = hdr_[1] & 0x7f;
          const uint8_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
          hdr_need_ = static_cast<uint8_t>(2 + ext + ((hdr_[1] & 0x80) ? 4 : 0));
        }
      }
      if (hdr_len_ < hdr_need_)
        return; // the rest of the header comes with the next delivery
      if (!start_frame()) {
        fail();
        return;
      }
      if (remaining_ == 0)
        end_frame(&h);
      continue;
    }
    case state::payload: {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, len - pos));
      if (!is_control(op_) && !msg_skip_) {
        if (n > max_message_ - msg_.size()) {
          msg_skip_ = true; // over the bound: skipped to its end, counted once
          ++c_.oversize;
          msg_.clear();
        } else {
          const size_t at = msg_.size();
          msg_.resize(at + n);
          if (masked_) {
            for (size_t i = 0; i < n; ++i)
              msg_[at + i] = static_cast<char>(data[pos + i] ^ mask_[(offset_ + i) & 3]);
          } else {
            std::copy(data + pos, data + pos + n, msg_.begin() + static_cast<ptrdiff_t>(at));
          }
        }
      }
      pos += n;
      offset_ += n;
      remaining_ -= n;
      if (remaining_ == 0)
        end_frame(&h);
      continue;
    }
    }
  }
}

void deframer::gap(size_t len) {
  if (st_ == state::closed || st_ == state::failed || len == 0)
    return;
  if (st_ == state::payload && len <= remaining_) {
    remaining_ -= len;
    offset_ += len;
    if (!is_control(op_) && !msg_skip_) {
      msg_skip_ = true;
      ++c_.damaged;
      msg_.clear();
    }
    if (remaining_ == 0)
      end_frame(nullptr);
    return;
  }
  st_ = state::failed; // a frame boundary was lost
  ++c_.gap_failures;
  msg_.clear();
  msg_.shrink_to_fit();
}

} // namespace metaprobe::websocket
