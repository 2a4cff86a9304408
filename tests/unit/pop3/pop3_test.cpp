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
