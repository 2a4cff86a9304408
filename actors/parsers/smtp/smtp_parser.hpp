// SPDX-License-Identifier: Apache-2.0
#pragma once
// SMTP stream parser (RFC 5321, ESMTP PIPELINING RFC 2920, CHUNKING RFC
// 3030, STARTTLS RFC 3207): one Mail record (template "mail", EVENT 1 send,
// MAIL_PROTOCOL 0) per mail transaction, i.e. per MAIL command.
//
// What it reads:
//   client: EHLO/HELO, MAIL FROM, RCPT TO (every one), DATA and the message
//   up to the lone "." (dot-stuffing undone, RFC 5321 §4.5.2), BDAT chunks,
//   RSET, STARTTLS, AUTH (continuation lines skipped until the final reply).
//   server: replies, single- and multi-line ("250-..." up to "250 ...").
//   Replies are matched to commands in order through a bounded queue
//   (pipelined commands are allowed).
// Record fields:
//   MAIL_SENDER = the MAIL FROM reverse-path (the address inside <>; the
//     From header when the reverse-path is null), MAIL_RECEIVER = every RCPT
//     TO forward-path joined with ", " (rejected ones included: they show
//     who the sender tried to reach), MAIL_CC / MAIL_SUBJECT / MAIL_REPLY =
//     Cc / Subject / Reply-To of the message header (mail_message.hpp),
//     ATTACHMENT from its MIME structure, MAIL_SERVERS = the host name the
//     server announced in its 220 greeting (first word), RESULT_CODE = the
//     server's reply to the transaction's last command (the reply after the
//     final "." or BDAT LAST; a rejected MAIL FROM or DATA ends the
//     transaction with that code; 354 when the capture ends inside DATA).
//   The record leaves when the transaction ends: final reply after the
//   data, rejected DATA, the next MAIL, RSET, QUIT, STARTTLS or the end of
//   the flow; a transaction whose data is sent waits for its final reply
//   even when the client pipelines the next MAIL right after the ".".
//   IP_SOURCE is the client.
// tshark truth: smtp.req.command MAIL / RCPT parameters (smtp.tsv) and the
// imf.* fields of the message (imf.tsv), see tests/integration/truth_smtp.py.
// STARTTLS answered with 220 ends parsing (state done); TLS is not parsed.
//
// Roles: the server speaks first; when the first bytes of the flow come from
// the side the flow table calls the client and start with a digit (a reply,
// never a command), that side is taken as the server.
// Errors: while probing, a client line that is no SMTP command or a server
// line that is no reply detaches the parser (violation); once confirmed,
// unknown lines are skipped. A gap inside DATA loses the rest of that
// message's header fields but keeps the transaction; a gap elsewhere drops
// the partial line.
// Limits (parser_options): max_line per line (cut, counted), max_field per
// exported value, max_headers per header block, max_records_per_flow; 64
// pending commands (older ones forgotten, counted).

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "parsers/mail/line_buffer.hpp"
#include "parsers/mail/mail_message.hpp"
#include "parsers/parser.hpp"
#include "parsers/registry.hpp"

namespace metaprobe {

// Registry entry: TCP ports 25, 587, 2525; probe = smtp_probe.
protocol_entry smtp_protocol_entry();

// Server side: "220" followed by ' ' or '-' and "SMTP" somewhere in the
// line; client side: "EHLO " or "HELO " (case-insensitive).
bool smtp_probe(const uint8_t* data, size_t len, direction dir);

std::unique_ptr<stream_parser> make_smtp_parser(const parser_options& opts,
                                                parser_counters& counters);

class smtp_parser final : public stream_parser {
public:
  smtp_parser(const parser_options& opts, parser_counters& counters);

  void deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
               uint32_t seq, record_sink& out) override;
  size_t memory_bytes() const override;
  void gap(direction dir, size_t len) override;
  void finish(uint64_t ts_ns, record_sink& out) override;

private:
  enum class cmd : uint8_t { helo, mail, rcpt, data, data_end, bdat, bdat_last,
                             starttls, auth, other };
  enum class client_phase : uint8_t { command, data, bdat, auth };
  static constexpr size_t pending_cap = 64;

  struct transaction {
    bool active = false;
    std::string sender, receivers;
    bool data_seen = false;  // DATA/BDAT sent
    bool awaiting_final = false; // "." or BDAT LAST sent, final reply not yet seen
    bool headers_taken = false;
    bool failed = false;     // MAIL FROM or DATA rejected
    std::string from, cc, subject, reply; // message header fields
    bool attachment = false;
    uint32_t result = 0;
    uint32_t seq = 0;
    bool cut = false;
  };

  void client_bytes(const uint8_t* data, size_t len, uint64_t ts_ns, uint32_t seq,
                    record_sink& out);
  void server_bytes(const uint8_t* data, size_t len, uint64_t ts_ns, record_sink& out);
  void client_line(std::string_view line, uint32_t seq, uint64_t ts_ns, record_sink& out);
  void data_line(std::string_view line, bool cut);
  void server_line(std::string_view line, uint64_t ts_ns, record_sink& out);
  void on_reply(uint32_t code, uint64_t ts_ns, record_sink& out);
  void end_transaction(uint64_t ts_ns, record_sink& out);
  void take_headers(transaction& t);
  void emit_transaction(transaction& t, uint64_t ts_ns, record_sink& out);
  void push(cmd c);
  bool pop(cmd& c);
  void violate();
  void confirm();
  void append_field(std::string& dst, std::string_view v, bool join);

  const parser_options opts_;
  parser_counters& counters_;
  mail::line_buffer lines_[2];
  mail::message_reader msg_;
  direction server_dir_ = direction::server_to_client;
  bool roles_known_ = false;
  client_phase phase_ = client_phase::command;
  uint64_t bdat_left_ = 0;
  bool greeted_ = false;
  bool in_multiline_ = false;
  std::string servers_;
  transaction txn_;
  // A transaction whose data is sent but whose final reply has not arrived
  // when the client already pipelined the next MAIL / RSET / QUIT.
  transaction closing_;
  bool bdat_last_ = false;  // the chunk being read is the BDAT LAST one
  std::array<cmd, pending_cap> pending_{};
  size_t pending_head_ = 0;
  size_t pending_size_ = 0;
  size_t records_ = 0;
};

} // namespace metaprobe
