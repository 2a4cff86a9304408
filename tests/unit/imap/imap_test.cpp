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
