// SPDX-License-Identifier: Apache-2.0
#pragma once
// Splits one direction of a line-oriented protocol (SMTP, POP3, IMAP) into
// lines. A line ends at LF; a CR before it is dropped. Lines longer than
// `max_line` keep their first max_line bytes and are marked cut (the caller
// counts the limit hit). A complete line that fits in one segment is handed
// out without copying; only a line split across segments is buffered.
// Header-only.

#include "parsers/common/heap_bytes.hpp"
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace metaprobe::mail {

class line_buffer {
public:
  // `scanned`: where the bytes searched for line ends are counted
  // (parser_counters::bytes_scanned), or nullptr.
  explicit line_buffer(size_t max_line, uint64_t* scanned = nullptr)
    : max_line_(max_line), scanned_(scanned) {}

  // Consumes bytes of data[0..len) up to and including the next LF. Returns
  // the number consumed; `complete` tells whether a line ended there (then
  // line() and cut() describe it until the next call).
  size_t feed(const uint8_t* data, size_t len, bool& complete) {
    complete = false;
    if (done_) {
      buf_.clear();
      cut_ = false;
      done_ = false;
    }
    const auto* nl = static_cast<const uint8_t*>(std::memchr(data, '\n', len));
    const size_t take = nl ? static_cast<size_t>(nl - data) : len;
    if (scanned_)
      *scanned_ += nl ? take + 1 : len; // only bytes never searched before
    if (nl && buf_.empty() && !cut_) {
      view_ = std::string_view(reinterpret_cast<const char*>(data), take);
      if (view_.size() > max_line_) {
        view_ = view_.substr(0, max_line_);
        cut_ = true;
      }
    } else {
      const size_t room = max_line_ > buf_.size() ? max_line_ - buf_.size() : 0;
      if (take > room)
        cut_ = true;
      buf_.append(reinterpret_cast<const char*>(data), take < room ? take : room);
      view_ = buf_;
    }
    if (!nl)
      return len;
    if (!cut_ && !view_.empty() && view_.back() == '\r')
      view_.remove_suffix(1);
    complete = true;
    done_ = true;
    return take + 1;
  }

  std::string_view line() const { return view_; }
  bool cut() const { return cut_; }
  // Bytes of an unfinished line held so far.
  size_t pending() const { return done_ ? 0 : buf_.size(); }
  size_t memory_bytes() const { return heap_bytes(buf_); }
  // The unfinished line, if any (for finish()).
  std::string_view partial() const { return done_ ? std::string_view() : std::string_view(buf_); }
  void clear() {
    buf_.clear();
    cut_ = false;
    done_ = false;
    view_ = {};
  }

private:
  size_t max_line_;
  uint64_t* scanned_ = nullptr;
  std::string buf_;
  std::string_view view_;
  bool cut_ = false;
  bool done_ = false;
};

} // namespace metaprobe::mail
