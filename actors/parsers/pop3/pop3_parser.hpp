// SPDX-License-Identifier: Apache-2.0
#pragma once
// POP3 stream parser (RFC 1939, CAPA/STLS RFC 2449/2595, AUTH RFC 5034):
// one Mail record (template "mail", EVENT 2 receive, MAIL_PROTOCOL 1) per
// message the server sends in answer to RETR or TOP.
//
// What it reads:
//   client: USER, PASS, APOP, AUTH <mechanism> [initial-response] and the
//   SASL responses that follow it (mail/sasl_exchange.hpp: PLAIN, LOGIN,
//   CRAM-MD5, DIGEST-MD5, SCRAM-*, XOAUTH2, OAUTHBEARER, EXTERNAL; "*"
//   cancels), RETR, TOP, LIST, UIDL, CAPA, STLS and the other RFC 1939
//   commands. Between AUTH and the server's +OK/-ERR every client line is a
//   SASL response; the "+ " challenges before them route AUTH LOGIN's user
//   name and password.
//   server: +OK / -ERR status lines; the multi-line responses of RETR, TOP,
//   CAPA, and of LIST / UIDL / AUTH without argument are read up to the
//   lone "." (dot-stuffing undone). Responses are matched to commands in
//   order through a bounded queue (pipelining, RFC 2449).
// Logins: every USER/PASS, APOP or AUTH exchange is a login attempt (user,
//   password where sent in clear, mechanism) that the server's +OK
//   (accepted) or -ERR (rejected; cancelled after "*") ends; last_login()
//   shows it. The user of the last accepted login is the account. The mail
//   template has no account, password or login-result field (spec/
//   templates.tsv), so a login gives no record of its own: the account is
//   exported as MAIL_RECEIVER of the messages read without a To header, as
//   before; a rejected attempt's user is never used. Passwords stay in the
//   parser (tests, future templates) and are not exported.
// Record fields (mail_message.hpp for the header reading): MAIL_SENDER =
//   From, MAIL_RECEIVER = To (the account when the message has no To),
//   MAIL_CC = Cc, MAIL_SUBJECT = Subject, MAIL_REPLY = Reply-To, ATTACHMENT from the MIME structure, MAIL_SERVERS empty (POP3
//   greetings name no host in a standard form), RESULT_CODE 0 (+OK; a
//   -ERR answer carries no message and gives no record). IP_SOURCE is the
//   server (it sends the message).
// tshark truth: imf.* of the frames carrying the message (imf.tsv) after
//   pop.request.command RETR/TOP (pop.tsv); tests/integration/truth_pop.py.
// STLS answered with +OK ends parsing (state done).
//
// Roles: the server speaks first; when the flow's first bytes come from the
// side the flow table calls the client and start with '+' or '-', that side
// is taken as the server.
// Errors: while probing, a server line that is not a status line detaches
// the parser (violation). A gap drops the partial line; inside a multi-line
// response the message goes on with what arrives.
// Limits (parser_options): max_line, max_field (also user and password),
// max_headers, max_records_per_flow; 64 pending commands, 8 SASL responses
// per AUTH (sasl::exchange::max_responses), each counted when exceeded.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "parsers/mail/line_buffer.hpp"
#include "parsers/mail/mail_message.hpp"
#include "parsers/mail/sasl_exchange.hpp"
#include "parsers/parser.hpp"
#include "parsers/registry.hpp"

namespace metaprobe {

// Registry entry: TCP port 110; probe = pop3_probe.
protocol_entry pop3_protocol_entry();

// Server greeting "+OK" followed by ' ' or CRLF, from the server side.
bool pop3_probe(const uint8_t* data, size_t len, direction dir);

std::unique_ptr<stream_parser> make_pop3_parser(const parser_options& opts,
                                                parser_counters& counters);

class pop3_parser final : public stream_parser {
public:
  pop3_parser(const parser_options& opts, parser_counters& counters);

  void deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
               uint32_t seq, record_sink& out) override;
  size_t memory_bytes() const override;
  void gap(direction dir, size_t len) override;
  void finish(uint64_t ts_ns, record_sink& out) override;

  // The user of the last accepted login (USER/PASS, APOP, AUTH).
  const std::string& account() const { return account_; }
  // The last login attempt the server answered, and how many were.
  const sasl::login_attempt& last_login() const { return last_login_; }
  uint64_t logins() const { return logins_; }

private:
  enum class cmd : uint8_t { retr, multi, single, user, pass, apop, auth, auth_list, stls };
  static constexpr size_t pending_cap = 64;

  void client_line(std::string_view line);
  void server_line(std::string_view line, bool cut, uint64_t ts_ns, uint32_t seq,
                   record_sink& out);
  void emit_message(uint64_t ts_ns, record_sink& out);
  void begin_attempt(std::string_view mechanism, std::string_view user);
  void end_attempt(sasl::login_attempt& a, sasl::outcome result);
  void push(cmd c);
  bool pop(cmd& c);

  const parser_options opts_;
  parser_counters& counters_;
  mail::line_buffer lines_[2];
  mail::message_reader msg_;
  direction server_dir_ = direction::server_to_client;
  bool roles_known_ = false;
  bool greeted_ = false;
  bool in_multi_ = false;      // inside a multi-line response
  bool in_message_ = false;    // ... that carries a message (RETR/TOP)
  bool in_auth_ = false;       // client lines are SASL responses (AUTH exchange)
  sasl::exchange auth_;
  sasl::login_attempt attempt_; // USER/PASS or APOP being tried
  sasl::login_attempt last_login_;
  uint64_t logins_ = 0;
  uint32_t message_seq_ = 0;
  std::string account_;
  std::array<cmd, pending_cap> pending_{};
  size_t pending_head_ = 0;
  size_t pending_size_ = 0;
  size_t records_ = 0;
};

} // namespace metaprobe
