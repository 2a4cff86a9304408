// SPDX-License-Identifier: Apache-2.0
#pragma once
// IMAP4 stream parser (RFC 3501 / 9051, LITERAL+ RFC 7888, SASL-IR RFC
// 4959): one Mail record (template "mail", EVENT 2 receive, MAIL_PROTOCOL 2)
// per FETCH response that carries a message or its header as a literal
// {n}: RFC822, RFC822.HEADER, BODY[] / BODY[HEADER] / BODY[HEADER.FIELDS
// (...)] (partial "<o>" allowed) or BINARY[].
//
// What it reads:
//   client: "tag command args" with atoms, quoted strings and literals
//   (synchronizing {n} and non-synchronizing {n+}); LOGIN user password
//   (atoms, quoted strings or literals), AUTHENTICATE <mechanism>
//   [initial-response] (SASL-IR) and the SASL responses that follow it
//   (mail/sasl_exchange.hpp: PLAIN, LOGIN, CRAM-MD5, DIGEST-MD5, SCRAM-*,
//   XOAUTH2, OAUTHBEARER, EXTERNAL; "*" cancels), STARTTLS. Between
//   AUTHENTICATE and its tagged answer every client line is a SASL
//   response; a "+" continuation then is a challenge (else the go-ahead of
//   a literal). Other commands only matter for their literals (at most
//   max_field bytes of a client literal are kept; APPEND bodies skipped).
// Logins: LOGIN / AUTHENTICATE is a login attempt (user, password where
//   sent in clear) that its tagged OK (accepted) or NO / BAD (rejected;
//   cancelled after "*") ends; last_login() shows it. The user of the last
//   accepted one is the account. The mail template has no account,
//   password or result field, so a login gives no record of its own: the
//   account is MAIL_RECEIVER of fetched messages without To (as POP3).
//   server: untagged, tagged and continuation responses, with literals of
//   any size streamed through (never buffered whole).
// Record fields (mail_message.hpp for the header reading): MAIL_SENDER =
//   From, MAIL_RECEIVER = To (the LOGIN / AUTHENTICATE account when the
//   message has no To), MAIL_CC = Cc, MAIL_SUBJECT = Subject, MAIL_REPLY =
//   Reply-To, ATTACHMENT from the MIME structure of what was fetched (a
//   header-only fetch shows no parts), MAIL_SERVERS empty, RESULT_CODE 0
//   (the message was delivered; NO/BAD answers carry none). IP_SOURCE is
//   the server. The record leaves when the FETCH response line ends.
// tshark truth: imf.* of the frame carrying the FETCH literal (imf.tsv);
//   tests/integration/truth_imap.py.
// STARTTLS answered with the tagged OK ends parsing (state done).
//
// Roles: the server speaks first; when the flow's first bytes come from the
// side the flow table calls the client and start with '*' or '+' (never the
// start of a tag), that side is taken as the server.
// Errors: while probing, a server line that is no response detaches the
// parser (violation). A gap drops the partial line; a gap inside a literal
// shortens it. A quoted string holding a message section is not read.
// Limits (parser_options): max_line per line, max_field per exported value
// and per captured client argument, max_headers, max_records_per_flow; at
// most 16 arguments per client command are kept; 8 SASL responses per
// AUTHENTICATE (sasl::exchange::max_responses, counted when exceeded).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/mail/line_buffer.hpp"
#include "parsers/mail/mail_message.hpp"
#include "parsers/mail/sasl_exchange.hpp"
#include "parsers/parser.hpp"
#include "parsers/registry.hpp"

namespace metaprobe {

// Registry entry: TCP port 143; probe = imap_probe.
protocol_entry imap_protocol_entry();

// Server greeting "* OK" or "* PREAUTH".
bool imap_probe(const uint8_t* data, size_t len, direction dir);

std::unique_ptr<stream_parser> make_imap_parser(const parser_options& opts,
                                                parser_counters& counters);

class imap_parser final : public stream_parser {
public:
  imap_parser(const parser_options& opts, parser_counters& counters);

  void deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
               uint32_t seq, record_sink& out) override;
  size_t memory_bytes() const override;
  void gap(direction dir, size_t len) override;
  void finish(uint64_t ts_ns, record_sink& out) override;

  // The user of the last accepted LOGIN / AUTHENTICATE.
  const std::string& account() const { return account_; }
  // The last login attempt the server answered, and how many were.
  const sasl::login_attempt& last_login() const { return last_login_; }
  uint64_t logins() const { return logins_; }

private:
  static constexpr size_t max_args = 16;

  struct side {
    side(size_t max_line, uint64_t* scanned) : lines(max_line, scanned) {}
    mail::line_buffer lines;
    uint64_t literal_left = 0;  // bytes of the current literal still to come
    bool in_command = false;    // a line ended with a literal: the command goes on
  };

  void server_bytes(const uint8_t* data, size_t len, uint64_t ts_ns, uint32_t seq,
                    record_sink& out);
  void client_bytes(const uint8_t* data, size_t len);
  void server_part(std::string_view part, bool cut, uint64_t ts_ns, uint32_t seq,
                   record_sink& out);
  void client_part(std::string_view part);
  void client_command();
  void emit_message(uint64_t ts_ns, record_sink& out);
  void end_login(bool ok);
  void violate();

  const parser_options opts_;
  parser_counters& counters_;
  side sides_[2];
  direction server_dir_ = direction::server_to_client;
  bool roles_known_ = false;
  // server response being read
  bool resp_fetch_ = false;       // "* n FETCH" response
  bool resp_has_msg_ = false;     // a message section was read
  bool literal_msg_ = false;      // the current literal is a message section
  uint32_t resp_seq_ = 0;
  mail::line_buffer literal_lines_;
  mail::message_reader msg_;
  // client command being read
  std::vector<std::string> args_;
  std::string literal_arg_;       // client literal captured as an argument
  bool literal_capture_ = false;
  bool in_auth_ = false;          // client lines are SASL responses (AUTHENTICATE)
  sasl::exchange auth_;
  sasl::login_attempt attempt_;   // LOGIN being tried
  std::string login_tag_;         // tag of the LOGIN / AUTHENTICATE in progress
  bool login_sasl_ = false;       // ... and whether it is AUTHENTICATE
  sasl::login_attempt last_login_;
  uint64_t logins_ = 0;
  std::string starttls_tag_;
  std::string account_;
  size_t records_ = 0;
};

// Whether the text before a literal in a FETCH response names a message or
// its header, e.g. "* 1 FETCH (UID 10 BODY[HEADER]"; exposed for tests.
bool imap_message_section(std::string_view part_before_literal);

} // namespace metaprobe
