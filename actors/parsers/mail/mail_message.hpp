// SPDX-License-Identifier: Apache-2.0
#pragma once
// Reads one Internet message (RFC 5322) line by line, as SMTP DATA, a POP3
// RETR/TOP response or an IMAP FETCH literal carries it, and keeps what the
// mail template exports:
//   - From, To, Cc, Subject, Reply-To of the top-level header block.
//     Folded lines are unfolded (RFC 5322 §2.2.3: the CRLF is removed, the
//     white space after it kept); encoded words (RFC 2047) are left as sent.
//     A field present more than once: To and Cc occurrences are joined with
//     ", " (all recipients), the first From/Subject/Reply-To is kept.
//   - whether the message has an attachment: a part (or the message itself)
//     with Content-Disposition "attachment", or with a filename= (disposition)
//     or name= (content type) parameter. MIME parts are followed through
//     nested multiparts by their boundaries (RFC 2046 §5.1).
// Lines are given without their CRLF and, for SMTP/POP3, already
// dot-unstuffed. The header block ends at the first empty line (or a line
// that is neither a field nor a continuation, which starts the body as most
// readers treat it).
//
// Limits: max_field per exported value (cut on a UTF-8 boundary, invalid
// UTF-8 becomes U+FFFD), max_headers fields read per header block (top level
// and each part), at most 8 nested multipart boundaries; each hit is counted
// in limit_hits()/truncated().

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace metaprobe::mail {

struct message_fields {
  std::string from, to, cc, subject, reply_to;
  bool attachment = false;
  bool headers_seen = false; // at least one header field was read
};

class message_reader {
public:
  message_reader(size_t max_field, size_t max_headers);

  // Starts a new message.
  void reset();
  // Heap bytes held (parser memory_bytes).
  size_t memory_bytes() const;
  // One line of the message, without CRLF. `cut` = the line was longer than
  // the line limit and lost its tail.
  void line(std::string_view l, bool cut = false);
  // No more lines: closes a pending header field.
  void end();

  const message_fields& fields() const { return f_; }
  message_fields& fields() { return f_; }
  bool in_headers() const { return zone_ == zone::top_headers; }
  uint64_t limit_hits() const { return limit_hits_; }
  uint64_t truncated() const { return truncated_; }

private:
  enum class zone : uint8_t { top_headers, body, part_headers };
  enum class field_id : uint8_t { none, from, to, cc, subject, reply_to,
                                  content_type, content_disposition };
  static constexpr size_t max_depth = 8;

  void header_line(std::string_view l);
  void commit_field();
  void end_of_header_block();
  void body_line(std::string_view l);
  void note_part_field(field_id id, std::string_view value);

  size_t max_field_;
  size_t max_headers_;
  message_fields f_;
  zone zone_ = zone::top_headers;
  field_id cur_ = field_id::none;
  std::string cur_value_;       // unfolded value of the field being read
  bool cur_cut_ = false;
  size_t header_count_ = 0;
  // Content-Type / Content-Disposition of the header block being read.
  std::string block_ctype_, block_cdisp_;
  std::array<std::string, max_depth> boundaries_;
  size_t depth_ = 0;
  uint64_t limit_hits_ = 0;
  uint64_t truncated_ = 0;
};

// Helpers on header values, exposed for tests.
// The value of parameter `name` (case-insensitive, quoted or token; RFC 2231
// "name*" forms count) in a MIME header value such as
// `multipart/mixed; boundary="x"`; empty if absent.
std::string mime_parameter(std::string_view value, std::string_view name);
// Case-insensitive ASCII comparison.
bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view s, std::string_view prefix);

} // namespace metaprobe::mail
