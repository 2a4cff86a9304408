// SPDX-License-Identifier: Apache-2.0
// Unit tests of the IMAP stream parser.
#include <doctest/doctest.h>

#include <string>

#include "../mail/mail_test_util.hpp"
#include "parsers/imap/imap_parser.hpp"

using namespace metaprobe;

namespace {

using test::c2s;
using test::s2c;
using fixture = test::stream_fixture<imap_parser>;

const std::string header =
    "From: employe@ent2.com\r\nTo: samir@ent2.com\r\nCc: administrator@ent2.com\r\n"
    "Subject: coucou\r\n\r\n";

} // namespace

TEST_CASE("LOGIN and a FETCH of BODY[HEADER] as a literal, split anywhere") {
  for (size_t chunk : {0, 1, 7}) {
    CAPTURE(chunk);
    fixture f;
    f.send(s2c, "* OK IMAP4rev1 ready\r\n", chunk);
    f.send(c2s, "C1 LOGIN samir \"pf\\\"res\"\r\n", chunk);
    f.send(s2c, "C1 OK LOGIN completed\r\n", chunk);
    f.send(c2s, "C2 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER])\r\n", chunk);
    f.send(s2c, "* 1 FETCH (UID 10 RFC822.SIZE 698 FLAGS (\\Recent) BODY[HEADER] {" +
                    std::to_string(header.size()) + "}\r\n" + header + ")\r\nC2 OK FETCH Completed\r\n",
           chunk);
    f.p->finish(9, f.out);
    REQUIRE(f.out.size() == 1);
    const auto& m = f.mail(0);
    CHECK(m.mail_sender() == "employe@ent2.com");
    CHECK(m.mail_receiver() == "samir@ent2.com");
    CHECK(m.mail_cc() == "administrator@ent2.com");
    CHECK(m.mail_subject() == "coucou");
    CHECK(m.event() == 2);
    CHECK(m.mail_protocol() == 2);
    CHECK(f.out[0].dir == s2c);
    CHECK(f.p->account() == "samir");
  }
}

TEST_CASE("FETCH of a whole message with attachment; non-message literals ignored") {
  const std::string body =
      "From: a@b\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
      "Content-Type: text/plain\r\n\r\nhi\r\n--zz\r\n"
      "Content-Disposition: attachment; filename=a.txt\r\n\r\nxx\r\n--zz--\r\n";
  fixture f;
  f.send(s2c, "* OK ready\r\n");
  f.send(c2s, "a1 FETCH 1:2 (BODY[] BODY[TEXT])\r\n");
  f.send(s2c, "* 1 FETCH (BODY[] {" + std::to_string(body.size()) + "}\r\n" + body +
                  " BODY[TEXT] {5}\r\nFrom:)\r\n"
                  "* 2 FETCH (BODY[1] {10}\r\nFrom: x@y\r\n)\r\n"
                  "* 3 FETCH (FLAGS (\\Seen))\r\n"
                  "a1 OK done\r\n");
  REQUIRE(f.out.size() == 1);
  CHECK(f.mail(0).mail_sender() == "a@b");
  CHECK(f.mail(0).attachment() == 1);
  CHECK(f.mail(0).mail_receiver().empty());
}

TEST_CASE("client literals, AUTHENTICATE PLAIN, STARTTLS") {
  fixture f;
  f.send(s2c, "* OK ready\r\n");
  f.send(c2s, "a LOGIN {4}\r\n");
  f.send(s2c, "+ go ahead\r\n");
  f.send(c2s, "user {6}\r\n");
  f.send(s2c, "+ go ahead\r\n");
  f.send(c2s, "pa ss!\r\n");
  f.send(s2c, "a OK\r\n");
  CHECK(f.p->account() == "user");
  f.send(c2s, "b APPEND INBOX {11+}\r\nFrom: x@y\r\n\r\n");
  f.send(s2c, "b OK\r\n");
  CHECK(f.out.empty());
  f.send(c2s, "c AUTHENTICATE PLAIN\r\n");
  f.send(s2c, "+ \r\n");
  f.send(c2s, "AHRvbQBzZWNyZXQ=\r\n"); // \0tom\0secret
  f.send(s2c, "c OK\r\n");
  CHECK(f.p->account() == "tom");
  f.send(c2s, "d AUTHENTICATE PLAIN AGFubgB4\r\n"); // SASL-IR: \0ann\0x
  CHECK(f.p->account() == "tom"); // not before the server accepts it
  f.send(s2c, "d OK\r\n");
  CHECK(f.p->account() == "ann");
  f.send(c2s, ". STARTTLS\r\n");
  f.send(s2c, ". OK Begin TLS negotiation now\r\n");
  CHECK(f.p->state() == parser_state::done);
}

TEST_CASE("malformed input, gaps and limits") {
  fixture f;
  f.send(s2c, "HTTP/1.1 200 OK\r\n");
  CHECK(f.p->state() == parser_state::violated);

  fixture g;
  g.opts.max_records_per_flow = 1;
  g.reset();
  g.send(s2c, "* OK ready\r\n");
  g.send(s2c, "* 1 FETCH (RFC822.HEADER {12}\r\nSubject: a\r\n)\r\n");
  g.send(s2c, "* 2 FETCH (RFC822.HEADER {12}\r\nSubject: b\r\n)\r\n");
  REQUIRE(g.out.size() == 1);
  CHECK(g.mail(0).mail_subject() == "a");
  CHECK(g.counters.limit_hits == 1);
  // A gap inside a literal shortens it; parsing resumes after it.
  fixture h;
  h.send(s2c, "* OK ready\r\n* 1 FETCH (RFC822 {100}\r\nSubject: c\r\n");
  h.p->gap(s2c, 88);
  h.send(s2c, ")\r\n");
  REQUIRE(h.out.size() == 1);
  CHECK(h.mail(0).mail_subject() == "c");
  // A literal size that does not fit is not a literal.
  fixture k;
  k.send(s2c, "* OK ready\r\n* 1 FETCH (RFC822 {99999999999999999})\r\n");
  CHECK(k.p->state() == parser_state::confirmed);
}

TEST_CASE("message sections") {
  CHECK(imap_message_section("* 1 FETCH (UID 10 BODY[HEADER]"));
  CHECK(imap_message_section("* 1 FETCH (BODY[]<0>"));
  CHECK(imap_message_section("* 1 FETCH (BODY[HEADER.FIELDS (FROM TO)]"));
  CHECK(imap_message_section("* 1 FETCH (RFC822"));
  CHECK(imap_message_section("* 1 FETCH (RFC822.HEADER"));
  CHECK_FALSE(imap_message_section("* 1 FETCH (BODY[TEXT]"));
  CHECK_FALSE(imap_message_section("* 1 FETCH (BODY[1]"));
  CHECK_FALSE(imap_message_section("* 1 FETCH (RFC822.TEXT"));
  const std::string g = "* OK IMAP ready\r\n";
  CHECK(imap_probe(reinterpret_cast<const uint8_t*>(g.data()), g.size(), s2c));
  CHECK_FALSE(imap_probe(reinterpret_cast<const uint8_t*>("+OK"), 3, s2c));
}

// ---- LOGIN and AUTHENTICATE as clients send them ------------------------------
// Conversations with dovecot 2.3's greeting and replies, each replayed with
// every message cut at every byte position.

namespace {

using sasl::outcome;
using test::script;

const std::string dovecot_greeting =
    "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS "
    "AUTH=PLAIN AUTH=LOGIN] Dovecot (Debian) ready.\r\n";
const std::string body_no_to = "From: bob@example.org\r\nSubject: hi\r\n\r\nhello\r\n";

script fetch_after_login() {
  return {{c2s, "A9 SELECT INBOX\r\n"},
          {s2c, "* 1 EXISTS\r\n* OK [UIDVALIDITY 1700000000] UIDs valid\r\n"
                "A9 OK [READ-WRITE] Select completed.\r\n"},
          {c2s, "A10 FETCH 1 BODY.PEEK[]\r\n"},
          {s2c, "* 1 FETCH (BODY[] {" + std::to_string(body_no_to.size()) + "}\r\n" +
                    body_no_to + ")\r\nA10 OK Fetch completed.\r\n"},
          {c2s, "A11 LOGOUT\r\n"},
          {s2c, "* BYE Logging out\r\nA11 OK Logout completed.\r\n"}};
}

struct expected_login {
  std::string mechanism, user, password;
  outcome result;
  std::string account;
};

void check_login(const script& login, const expected_login& want) {
  script s = {{s2c, dovecot_greeting}};
  s.insert(s.end(), login.begin(), login.end());
  for (const auto& t : fetch_after_login())
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
    CHECK(f.p->logins() == 1);
    const auto& l = f.p->last_login();
    CHECK(l.mechanism == want.mechanism);
    CHECK(l.user == want.user);
    CHECK(l.password == want.password);
    CHECK(l.result == want.result);
    CHECK(f.p->account() == want.account);
    REQUIRE(f.out.size() == 1);
    CHECK(f.mail(0).mail_receiver() == want.account);
    CHECK(f.mail(0).mail_sender() == "bob@example.org");
    CHECK(f.mail(0).mail_protocol() == 2);
  }
}

} // namespace

TEST_CASE("curl imap:// LOGIN with atoms after CAPABILITY") {
  check_login({{c2s, "A001 CAPABILITY\r\n"},
               {s2c, "* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ STARTTLS AUTH=PLAIN AUTH=LOGIN\r\n"
                     "A001 OK Pre-login capabilities listed, post-login capabilities have more.\r\n"},
               {c2s, "A002 LOGIN alice s3cret\r\n"},
               {s2c, "A002 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n"}},
              {"LOGIN", "alice", "s3cret", outcome::accepted, "alice"});
}

TEST_CASE("mutt LOGIN with quoted strings and escapes") {
  check_login({{c2s, "a0001 LOGIN \"alice\" \"s3 \\\"cr\\\\et\"\r\n"},
               {s2c, "a0001 OK Logged in\r\n"}},
              {"LOGIN", "alice", "s3 \"cr\\et", outcome::accepted, "alice"});
}

TEST_CASE("LOGIN with synchronizing literals and with LITERAL+") {
  check_login({{c2s, "a LOGIN {5}\r\n"}, {s2c, "+ Ready for literal data\r\n"},
               {c2s, "alice {7}\r\n"}, {s2c, "+ Ready for literal data\r\n"},
               {c2s, "s3 cret\r\n"}, {s2c, "a OK Logged in\r\n"}},
              {"LOGIN", "alice", "s3 cret", outcome::accepted, "alice"});
  check_login({{c2s, "a LOGIN {5+}\r\nalice {6+}\r\ns3cret\r\n"}, {s2c, "a OK Logged in\r\n"}},
              {"LOGIN", "alice", "s3cret", outcome::accepted, "alice"});
}

TEST_CASE("curl --login-options AUTH=PLAIN with SASL-IR, and Thunderbird without it") {
  check_login({{c2s, "A002 AUTHENTICATE PLAIN AGFsaWNlAHMzY3JldA==\r\n"},
               {s2c, "A002 OK [CAPABILITY IMAP4rev1] Logged in\r\n"}},
              {"PLAIN", "alice", "s3cret", outcome::accepted, "alice"});
  check_login({{c2s, "2 authenticate PLAIN\r\n"}, {s2c, "+ \r\n"},
               {c2s, "AGFsaWNlAHMzY3JldA==\r\n"}, {s2c, "2 OK Logged in\r\n"}},
              {"PLAIN", "alice", "s3cret", outcome::accepted, "alice"});
}

TEST_CASE("AUTHENTICATE PLAIN with an empty initial response ('=') then the credentials") {
  check_login({{c2s, "A002 AUTHENTICATE PLAIN =\r\n"}, {s2c, "+ \r\n"},
               {c2s, "AGFsaWNlAHMzY3JldA==\r\n"}, {s2c, "A002 OK Logged in\r\n"}},
              {"PLAIN", "alice", "s3cret", outcome::accepted, "alice"});
}

TEST_CASE("AUTHENTICATE LOGIN: user and password answer the prompts") {
  check_login({{c2s, "A002 AUTHENTICATE LOGIN\r\n"}, {s2c, "+ VXNlcm5hbWU6\r\n"},
               {c2s, "YWxpY2U=\r\n"}, {s2c, "+ UGFzc3dvcmQ6\r\n"}, {c2s, "czNjcmV0\r\n"},
               {s2c, "A002 OK Logged in\r\n"}},
              {"LOGIN", "alice", "s3cret", outcome::accepted, "alice"});
}

TEST_CASE("rejected and cancelled logins do not name the account") {
  const script s = {{s2c, dovecot_greeting},
                    {c2s, "A1 LOGIN bob wrong\r\n"},
                    {s2c, "A1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"},
                    {c2s, "A2 AUTHENTICATE PLAIN\r\n"},
                    {s2c, "+ \r\n"},
                    {c2s, "*\r\n"},
                    {s2c, "A2 BAD Authentication aborted by client.\r\n"},
                    {c2s, "A3 NOOP\r\n"},
                    {s2c, "A3 OK NOOP completed.\r\n"}};
  for (size_t split = 0; split <= test::longest(s); ++split) {
    CAPTURE(split);
    fixture f;
    test::play(f, s, split);
    CHECK(f.p->logins() == 2);
    CHECK(f.p->last_login().mechanism == "PLAIN");
    CHECK(f.p->last_login().result == outcome::cancelled);
    CHECK(f.p->account().empty());
    CHECK(f.p->state() == parser_state::confirmed);
  }
  fixture g;
  test::play(g, {{s2c, dovecot_greeting}, {c2s, "A1 LOGIN bob wrong\r\n"},
                 {s2c, "A1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"}});
  CHECK(g.p->last_login().user == "bob");
  CHECK(g.p->last_login().password == "wrong");
  CHECK(g.p->last_login().result == outcome::rejected);
}

TEST_CASE("a client literal longer than max_field keeps its argument slot") {
  fixture f;
  f.opts.max_field = 8;
  f.reset();
  test::play(f, {{s2c, dovecot_greeting}, {c2s, "a LOGIN {12+}\r\nalice-longer pw\r\n"},
                 {s2c, "a OK Logged in\r\n"}});
  CHECK(f.p->last_login().user == "alice-lo");
  CHECK(f.p->last_login().password == "pw");
}

TEST_CASE("an AUTHENTICATE whose answer is lost does not swallow later commands") {
  fixture f;
  test::play(f, {{s2c, dovecot_greeting}, {c2s, "A1 AUTHENTICATE GSSAPI\r\n"}, {s2c, "+ \r\n"}});
  f.p->gap(s2c, 30);
  std::string lines;
  for (int i = 0; i < 8; ++i)
    lines += "YWJj\r\n";
  test::play(f, {{c2s, lines + "A2 LOGIN carol pw\r\n"}, {s2c, "A2 OK Logged in\r\n"}});
  CHECK(f.counters.limit_hits >= 1);
  CHECK(f.p->account() == "carol");
}
