// SPDX-License-Identifier: Apache-2.0
// Unit tests of the POP3 stream parser.
#include <doctest/doctest.h>

#include <string>

#include "../mail/mail_test_util.hpp"
#include "parsers/pop3/pop3_parser.hpp"

using namespace metaprobe;

namespace {

using test::c2s;
using test::s2c;
using fixture = test::stream_fixture<pop3_parser>;

const std::string msg1 =
    "Return-Path: <x@y>\r\nFrom: Lorenzo <l@unina.it>\r\nTo: c@mail.com\r\n"
    "Subject: Mail importante\r\n\r\nbody\r\n..dot\r\n.\r\n";

} // namespace

TEST_CASE("USER/PASS, LIST, RETR with dot-stuffing, split anywhere") {
  for (size_t chunk : {0, 1, 5}) {
    CAPTURE(chunk);
    fixture f;
    f.send(s2c, "+OK POP server ready\r\n", chunk);
    f.send(c2s, "USER c@mail.com\r\n", chunk);
    f.send(s2c, "+OK password required\r\n", chunk);
    f.send(c2s, "PASS secret\r\n", chunk);
    f.send(s2c, "+OK 2 messages\r\n", chunk);
    f.send(c2s, "LIST\r\n", chunk);
    f.send(s2c, "+OK\r\n1 100\r\n2 200\r\n.\r\n", chunk);
    f.send(c2s, "RETR 2\r\n", chunk);
    f.send(s2c, "+OK 200 octets\r\n" + msg1, chunk);
    f.send(c2s, "QUIT\r\n", chunk);
    f.send(s2c, "+OK bye\r\n", chunk);
    f.p->finish(9, f.out);
    REQUIRE(f.out.size() == 1);
    const auto& m = f.mail(0);
    CHECK(m.mail_sender() == "Lorenzo <l@unina.it>");
    CHECK(m.mail_receiver() == "c@mail.com");
    CHECK(m.mail_subject() == "Mail importante");
    CHECK(m.event() == 2);
    CHECK(m.mail_protocol() == 1);
    CHECK(m.result_code() == 0);
    CHECK(f.out[0].dir == s2c);
    CHECK(f.p->account() == "c@mail.com");
  }
}

TEST_CASE("pipelined CAPA and QUIT, AUTH PLAIN continuation, -ERR RETR") {
  fixture f;
  f.send(s2c, "+OK ready\r\n");
  f.send(c2s, "CAPA\r\nAUTH PLAIN\r\n");
  f.send(s2c, "+OK Capability list follows\r\nUSER\r\nSASL PLAIN\r\n.\r\n+ \r\n");
  f.send(c2s, "AGRpZ2l0YWxpbnZlc3RpZ2F0b3JAbmV0d29ya3NpbXMuY29tAG5hcGllcjEyMw==\r\n");
  f.send(s2c, "+OK mailbox has 1 message\r\n");
  CHECK(f.p->account() == "digitalinvestigator@networksims.com");
  f.send(c2s, "RETR 9\r\nTOP 1 0\r\n");
  f.send(s2c, "-ERR no such message\r\n+OK\r\nSubject: top only\r\n\r\n.\r\n");
  REQUIRE(f.out.size() == 1);
  CHECK(f.mail(0).mail_subject() == "top only");
  // No To header: the account stands in as the receiver.
  CHECK(f.mail(0).mail_receiver() == "digitalinvestigator@networksims.com");
}

TEST_CASE("APOP, STLS, and a message cut by the end of the flow") {
  fixture f;
  f.send(s2c, "+OK <1.2@host>\r\n");
  f.send(c2s, "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n");
  f.send(s2c, "+OK\r\n");
  CHECK(f.p->account() == "mrose");
  f.send(c2s, "RETR 1\r\n");
  f.send(s2c, "+OK\r\nFrom: a@b\r\nSubj");
  f.p->finish(9, f.out);
  REQUIRE(f.out.size() == 1);
  CHECK(f.mail(0).mail_sender() == "a@b");

  fixture g;
  g.send(s2c, "+OK ready\r\n");
  g.send(c2s, "STLS\r\n");
  g.send(s2c, "+OK Begin TLS\r\n");
  CHECK(g.p->state() == parser_state::done);
}

TEST_CASE("malformed input and limits") {
  fixture f;
  f.send(s2c, "SSH-2.0-OpenSSH\r\n");
  CHECK(f.p->state() == parser_state::violated);

  fixture g;
  g.opts.max_line = 10;
  g.opts.max_records_per_flow = 1;
  g.reset();
  g.send(s2c, "+OK ready\r\n");
  g.send(c2s, "RETR 1\r\nRETR 2\r\n");
  g.send(s2c, "+OK\r\nSubject: a very long subject\r\n\r\n.\r\n+OK\r\nSubject: b\r\n\r\n.\r\n");
  REQUIRE(g.out.size() == 1);
  CHECK(g.mail(0).mail_subject() == "a"); // line cut at 10 bytes: "Subject: a"
  CHECK(g.counters.limit_hits >= 2);
  // A gap drops the partial line but keeps the session.
  g.p->gap(s2c, 100);
  g.send(c2s, "NOOP\r\n");
  g.send(s2c, "+OK\r\n");
  CHECK(g.p->state() == parser_state::confirmed);
}

TEST_CASE("probe") {
  const std::string ok = "+OK POP3 ready\r\n";
  CHECK(pop3_probe(reinterpret_cast<const uint8_t*>(ok.data()), ok.size(), s2c));
  CHECK_FALSE(pop3_probe(reinterpret_cast<const uint8_t*>(ok.data()), ok.size(), c2s));
  const std::string no = "+OKAY\r\n";
  CHECK_FALSE(pop3_probe(reinterpret_cast<const uint8_t*>(no.data()), no.size(), s2c));
}

// ---- logins by every mechanism ----------------------------------------------
// Conversations as the clients send them to dovecot 2.3 (its greeting,
// capability list and replies), each replayed with every message cut at
// every byte position.

namespace {

using test::script;
using sasl::outcome;

const std::string dovecot_greeting = "+OK Dovecot (Debian) ready.\r\n";
const std::string dovecot_capa =
    "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n"
    "STLS\r\nUSER\r\nSASL PLAIN LOGIN CRAM-MD5\r\n.\r\n";
// A message without To: the account stands in as MAIL_RECEIVER.
const std::string no_to_msg =
    "+OK 64 octets\r\nFrom: bob@example.org\r\nSubject: hi\r\n\r\nhello\r\n.\r\n";
const std::string logged_in = "+OK Logged in.\r\n";

// The conversation after the login: STAT, pipelined RETR and QUIT.
script retrieve() {
  return {{s2c, ""}, {c2s, "STAT\r\n"}, {s2c, "+OK 1 64\r\n"},
          {c2s, "RETR 1\r\nQUIT\r\n"}, {s2c, no_to_msg + "+OK Logging out.\r\n"}};
}

struct expected_login {
  std::string mechanism, user, password;
  outcome result;
  std::string account; // MAIL_RECEIVER of the retrieved message
};

void check_login(const script& login, const expected_login& want) {
  script s = {{s2c, dovecot_greeting}, {c2s, "CAPA\r\n"}, {s2c, dovecot_capa}};
  s.insert(s.end(), login.begin(), login.end());
  for (const auto& t : retrieve())
    if (!t.text.empty())
      s.push_back(t);
  // split == longest + 1: every byte in a segment of its own.
  for (size_t split = 0; split <= test::longest(s) + 1; ++split) {
    CAPTURE(split);
    fixture f;
    if (split > test::longest(s))
      for (const auto& t : s)
        f.send(t.dir, t.text, 1);
    else
      test::play(f, s, split);
    f.p->finish(9, f.out);
    CHECK(f.p->state() == parser_state::confirmed);
    CHECK(f.p->logins() >= 1);
    const auto& l = f.p->last_login();
    CHECK(l.mechanism == want.mechanism);
    CHECK(l.user == want.user);
    CHECK(l.password == want.password);
    CHECK(l.result == want.result);
    CHECK(f.p->account() == want.account);
    REQUIRE(f.out.size() == 1);
    CHECK(f.mail(0).mail_receiver() == want.account);
    CHECK(f.mail(0).mail_sender() == "bob@example.org");
    CHECK(f.mail(0).mail_protocol() == 1);
    CHECK(f.mail(0).result_code() == 0);
  }
}

} // namespace

TEST_CASE("fetchmail USER/PASS after CAPA; password with a space") {
  check_login({{c2s, "USER alice\r\n"}, {s2c, "+OK\r\n"}, {c2s, "PASS s3cret pass\r\n"},
               {s2c, logged_in}},
              {"USER", "alice", "s3cret pass", outcome::accepted, "alice"});
}

TEST_CASE("curl AUTH=PLAIN: the response after the '+ ' continuation") {
  check_login({{c2s, "AUTH PLAIN\r\n"}, {s2c, "+ \r\n"}, {c2s, "AGFsaWNlAHMzY3JldA==\r\n"},
               {s2c, logged_in}},
              {"PLAIN", "alice", "s3cret", outcome::accepted, "alice"});
}

TEST_CASE("AUTH PLAIN with the initial response on the command line (RFC 5034), authzid") {
  check_login({{c2s, "AUTH PLAIN YWRtaW4AYWxpY2UAcHc=\r\n"}, {s2c, logged_in}},
              {"PLAIN", "alice", "pw", outcome::accepted, "alice"});
}

TEST_CASE("Thunderbird AUTH LOGIN: user and password answer the two prompts") {
  check_login({{c2s, "AUTH LOGIN\r\n"}, {s2c, "+ VXNlcm5hbWU6\r\n"}, {c2s, "YWxpY2U=\r\n"},
               {s2c, "+ UGFzc3dvcmQ6\r\n"}, {c2s, "czNjcmV0\r\n"}, {s2c, logged_in}},
              {"LOGIN", "alice", "s3cret", outcome::accepted, "alice"});
}

TEST_CASE("curl AUTH=LOGIN: the user name as initial response") {
  check_login({{c2s, "AUTH LOGIN YWxpY2U=\r\n"}, {s2c, "+ UGFzc3dvcmQ6\r\n"},
               {c2s, "czNjcmV0\r\n"}, {s2c, logged_in}},
              {"LOGIN", "alice", "s3cret", outcome::accepted, "alice"});
}

TEST_CASE("AUTH CRAM-MD5 (RFC 2195 example): user, no password") {
  check_login({{c2s, "AUTH CRAM-MD5\r\n"},
               {s2c, "+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n"},
               {c2s, "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n"}, {s2c, logged_in}},
              {"CRAM-MD5", "tim", "", outcome::accepted, "tim"});
}

TEST_CASE("AUTH SCRAM-SHA-1 (RFC 5802 example) and XOAUTH2: user names") {
  check_login({{c2s, "AUTH SCRAM-SHA-1 biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdM\r\n"},
               {s2c, "+ cj1meWtvK2QybGJiRmdPTlJ2OXFreGRhd0wzcmZjTkhZSlkxWlZ2V1ZzN2oscz1RU1hDUitR"
                     "NnNlazhiZjkyLGk9NDA5Ng==\r\n"},
               {c2s, "Yz1iaXdzLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdMM3JmY05IWUpZMVpWdldWczdqLHA9"
                     "djBYOHYzQnoyVDBDSkdiSlF5RjBYK0hJNFRzPQ==\r\n"},
               {s2c, "+ dj1ybUY5cHFWOFM3c3VBb1pXamE0ZEpSa0ZzS1E9\r\n"},
               {c2s, "\r\n"},
               {s2c, logged_in}},
              {"SCRAM-SHA-1", "user", "", outcome::accepted, "user"});
  check_login({{c2s, "AUTH XOAUTH2 dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOW"
                     "RmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==\r\n"},
               {s2c, logged_in}},
              {"XOAUTH2", "someuser@example.com", "", outcome::accepted,
               "someuser@example.com"});
}

TEST_CASE("a failed AUTH, a cancelled AUTH, then USER/PASS: only the accepted user counts") {
  const script s = {{s2c, dovecot_greeting},
                    {c2s, "AUTH\r\n"},
                    {s2c, "-ERR 1 argument required\r\n"},
                    {c2s, "AUTH PLAIN\r\n"},
                    {s2c, "+ \r\n"},
                    {c2s, "AGJvYgB3cm9uZw==\r\n"},
                    {s2c, "-ERR [AUTH] Authentication failed.\r\n"}};
  for (size_t split = 0; split <= test::longest(s); ++split) {
    CAPTURE(split);
    fixture f;
    test::play(f, s, split);
    CHECK(f.p->last_login().user == "bob");
    CHECK(f.p->last_login().password == "wrong");
    CHECK(f.p->last_login().result == outcome::rejected);
    CHECK(f.p->account().empty());
    // Cancelled: "*" is a SASL response, not a command.
    test::play(f, {{c2s, "AUTH LOGIN\r\n"}, {s2c, "+ VXNlcm5hbWU6\r\n"}, {c2s, "*\r\n"},
                   {s2c, "-ERR [AUTH] Authentication aborted by client.\r\n"}},
               split);
    CHECK(f.p->last_login().mechanism == "LOGIN");
    CHECK(f.p->last_login().result == outcome::cancelled);
    CHECK(f.p->account().empty());
    test::play(f, {{c2s, "USER carol\r\n"}, {s2c, "+OK\r\n"}, {c2s, "PASS x\r\n"},
                   {s2c, logged_in}},
               split);
    for (const auto& t : retrieve())
      if (!t.text.empty())
        test::play(f, {t}, split);
    CHECK(f.p->logins() == 3);
    CHECK(f.p->account() == "carol");
    REQUIRE(f.out.size() == 1);
    CHECK(f.mail(0).mail_receiver() == "carol");
  }
}

TEST_CASE("rejected USER/PASS and APOP keep the account of the accepted login") {
  fixture f;
  test::play(f, {{s2c, "+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>\r\n"},
                 {c2s, "USER mallory\r\n"}, {s2c, "-ERR no such user\r\n"}});
  CHECK(f.p->last_login().result == outcome::rejected);
  CHECK(f.p->last_login().user == "mallory");
  test::play(f, {{c2s, "APOP mrose wrongdigest\r\n"}, {s2c, "-ERR permission denied\r\n"}});
  CHECK(f.p->last_login().mechanism == "APOP");
  CHECK(f.p->last_login().result == outcome::rejected);
  CHECK(f.p->account().empty());
  test::play(f, {{c2s, "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"},
                 {s2c, "+OK maildrop has 1 message\r\n"}});
  CHECK(f.p->last_login().user == "mrose");
  CHECK(f.p->last_login().password.empty());
  CHECK(f.p->account() == "mrose");
}

TEST_CASE("STLS refused, then login in clear; STLS accepted ends parsing") {
  fixture f;
  test::play(f, {{s2c, dovecot_greeting}, {c2s, "STLS\r\n"}, {s2c, "-ERR TLS not available\r\n"},
                 {c2s, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n"}, {s2c, logged_in}});
  CHECK(f.p->state() == parser_state::confirmed);
  CHECK(f.p->account() == "alice");

  fixture g;
  test::play(g, {{s2c, dovecot_greeting}, {c2s, "CAPA\r\n"}, {s2c, dovecot_capa},
                 {c2s, "STLS\r\n"}, {s2c, "+OK Begin TLS negotiation now.\r\n"},
                 {c2s, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n"}});
  CHECK(g.p->state() == parser_state::done);
  CHECK(g.p->logins() == 0);
}

TEST_CASE("pipelined USER and PASS (RFC 2449 PIPELINING) pair with their answers") {
  fixture f;
  test::play(f, {{s2c, dovecot_greeting}, {c2s, "USER dave\r\nPASS pw\r\nSTAT\r\n"},
                 {s2c, "+OK\r\n+OK Logged in.\r\n+OK 1 64\r\n"},
                 {c2s, "RETR 1\r\n"}, {s2c, no_to_msg}});
  CHECK(f.p->last_login().result == outcome::accepted);
  CHECK(f.p->last_login().password == "pw");
  REQUIRE(f.out.size() == 1);
  CHECK(f.mail(0).mail_receiver() == "dave");
}

TEST_CASE("an AUTH whose answer is lost does not swallow the session's commands") {
  fixture f;
  test::play(f, {{s2c, dovecot_greeting}, {c2s, "AUTH GSSAPI\r\n"}, {s2c, "+ \r\n"}});
  f.p->gap(s2c, 30); // the server's final answer
  std::string lines;
  for (int i = 0; i < 8; ++i)
    lines += "YWJj\r\n";
  test::play(f, {{c2s, lines + "RETR 1\r\n"}, {s2c, "+OK done\r\n" + no_to_msg}});
  CHECK(f.counters.limit_hits >= 1);
  // "+OK done" answers the AUTH, the message answers RETR.
  REQUIRE(f.out.size() == 1);
  CHECK(f.mail(0).mail_sender() == "bob@example.org");
}
