// SPDX-License-Identifier: Apache-2.0
// Unit tests of the SMTP stream parser.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "../mail/mail_test_util.hpp"
#include "parsers/smtp/smtp_parser.hpp"

using namespace metaprobe;

namespace {

using test::c2s;
using test::s2c;
using fixture = test::stream_fixture<stream_parser, make_smtp_parser>;

const std::string greeting = "220 mx.example.org ESMTP Postfix\r\n";
const std::string message =
    "From: \"Alice\" <alice@example.org>\r\n"
    "To: bob@example.net\r\n"
    "Cc: carol@example.net\r\n"
    "Subject: hello\r\n"
    " world\r\n"
    "Reply-To: replies@example.org\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
    "\r\n"
    "--b1\r\nContent-Type: text/plain\r\n\r\n"
    "..leading dot line\r\n"
    "--b1\r\nContent-Type: application/zip; name=\"a.zip\"\r\n\r\nUEsDBA==\r\n--b1--\r\n"
    ".\r\n";

void session(fixture& f, size_t chunk) {
  f.send(s2c, greeting, chunk);
  f.send(c2s, "EHLO client.example.org\r\n", chunk);
  f.send(s2c, "250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n", chunk);
  f.send(c2s, "MAIL FROM:<alice@example.org> SIZE=100\r\n", chunk);
  f.send(s2c, "250 2.1.0 Ok\r\n", chunk);
  f.send(c2s, "RCPT TO:<bob@example.net>\r\n", chunk);
  f.send(s2c, "250 2.1.5 Ok\r\n", chunk);
  f.send(c2s, "RCPT TO:<carol@example.net>\r\n", chunk);
  f.send(s2c, "250 2.1.5 Ok\r\n", chunk);
  f.send(c2s, "DATA\r\n", chunk);
  f.send(s2c, "354 End data with <CR><LF>.<CR><LF>\r\n", chunk);
  f.send(c2s, message, chunk);
  f.send(s2c, "250 2.0.0 Ok: queued as 12345\r\n", chunk);
  f.send(c2s, "QUIT\r\n", chunk);
  f.send(s2c, "221 2.0.0 Bye\r\n", chunk);
}

} // namespace

TEST_CASE("a complete transaction, whole and byte by byte") {
  for (size_t chunk : {0, 1, 3}) {
    CAPTURE(chunk);
    fixture f;
    session(f, chunk);
    f.p->finish(9, f.out);
    REQUIRE(f.out.size() == 1);
    const auto& m = f.mail(0);
    CHECK(m.mail_sender() == "alice@example.org");
    CHECK(m.mail_receiver() == "bob@example.net, carol@example.net");
    CHECK(m.mail_cc() == "carol@example.net");
    CHECK(m.mail_subject() == "hello world");
    CHECK(m.mail_reply() == "replies@example.org");
    CHECK(m.mail_servers() == "mx.example.org");
    CHECK(m.event() == 1);
    CHECK(m.mail_protocol() == 0);
    CHECK(m.attachment() == 1);
    CHECK(m.result_code() == 250);
    CHECK(f.out[0].dir == c2s);
    CHECK(f.out[0].tcp_seq != 0);
    CHECK(f.p->state() == parser_state::confirmed);
  }
}

TEST_CASE("pipelined commands and a second transaction") {
  fixture f;
  f.send(s2c, greeting);
  f.send(c2s, "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<bad@y>\r\nDATA\r\n");
  f.send(s2c, "250 ok\r\n250 ok\r\n250 ok\r\n550 no such user\r\n354 go\r\n");
  f.send(c2s, "Subject: one\r\n\r\nbody\r\n.\r\n");
  f.send(s2c, "250 queued\r\n");
  f.send(c2s, "MAIL FROM:<>\r\nRCPT TO:<c@z>\r\nDATA\r\n");
  f.send(s2c, "250 ok\r\n250 ok\r\n554 no valid recipients\r\n");
  f.send(c2s, "QUIT\r\n");
  f.p->finish(9, f.out);
  REQUIRE(f.out.size() == 2);
  CHECK(f.mail(0).mail_receiver() == "b@y, bad@y");
  CHECK(f.mail(0).mail_subject() == "one");
  CHECK(f.mail(0).result_code() == 250);
  CHECK(f.mail(1).mail_sender().empty()); // null reverse-path, no header
  CHECK(f.mail(1).mail_receiver() == "c@z");
  CHECK(f.mail(1).result_code() == 554);
  CHECK(f.mail(1).mail_subject().empty());
}

TEST_CASE("the next transaction pipelined right after the final dot") {
  fixture f;
  f.send(s2c, greeting);
  f.send(c2s, "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  f.send(s2c, "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
  // The end of the first message and the whole second transaction in one go.
  f.send(c2s, "Subject: first\r\n\r\nx\r\n.\r\nMAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nDATA\r\n");
  CHECK(f.out.empty()); // the first still waits for its final reply
  f.send(s2c, "250 queued 1\r\n250 ok\r\n250 ok\r\n354 go\r\n");
  REQUIRE(f.out.size() == 1);
  CHECK(f.mail(0).mail_subject() == "first");
  CHECK(f.mail(0).result_code() == 250);
  f.send(c2s, "Subject: second\r\n\r\ny\r\n.\r\nQUIT\r\n");
  f.send(s2c, "451 try later\r\n221 bye\r\n");
  REQUIRE(f.out.size() == 2);
  CHECK(f.mail(1).mail_sender() == "c@x");
  CHECK(f.mail(1).mail_subject() == "second");
  CHECK(f.mail(1).result_code() == 451);
}

TEST_CASE("rejected MAIL FROM, RSET and a flow ending inside DATA") {
  fixture f;
  f.send(s2c, greeting);
  f.send(c2s, "HELO c\r\n");
  f.send(s2c, "250 hi\r\n");
  f.send(c2s, "MAIL FROM:<spam@x>\r\n");
  f.send(s2c, "550 go away\r\n");
  f.send(c2s, "RSET\r\n");
  f.send(s2c, "250 ok\r\n");
  REQUIRE(f.out.size() == 1);
  CHECK(f.mail(0).result_code() == 550);
  f.send(c2s, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  f.send(s2c, "250 ok\r\n250 ok\r\n354 go\r\n");
  f.send(c2s, "From: A <a@x>\r\nSubject: cut off");
  f.p->finish(9, f.out);
  REQUIRE(f.out.size() == 2);
  CHECK(f.mail(1).mail_subject() == "cut off");
  CHECK(f.mail(1).result_code() == 354);
}

TEST_CASE("AUTH continuation lines are not commands; BDAT chunks") {
  fixture f;
  f.send(s2c, greeting);
  f.send(c2s, "EHLO c\r\nAUTH LOGIN\r\n");
  f.send(s2c, "250 ok\r\n334 VXNlcm5hbWU6\r\n");
  f.send(c2s, "TUFJTCBGUk9NOjx4Pg==\r\n"); // base64 of "MAIL FROM:<x>"
  f.send(s2c, "334 UGFzc3dvcmQ6\r\n");
  f.send(c2s, "cGFzcw==\r\n");
  f.send(s2c, "235 ok\r\n");
  const std::string chunk1 = "Subject: chunked\r\n";
  const std::string chunk2 = "\r\nbody\r\n";
  f.send(c2s, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT " + std::to_string(chunk1.size()) +
                  "\r\n" + chunk1 + "BDAT " + std::to_string(chunk2.size()) + " LAST\r\n" + chunk2);
  f.send(s2c, "250 ok\r\n250 ok\r\n250 ok\r\n250 done\r\n");
  REQUIRE(f.out.size() == 1);
  CHECK(f.mail(0).mail_sender() == "a@x");
  CHECK(f.mail(0).mail_subject() == "chunked");
  CHECK(f.mail(0).result_code() == 250);
}

TEST_CASE("STARTTLS ends parsing") {
  fixture f;
  f.send(s2c, greeting);
  f.send(c2s, "EHLO c\r\nSTARTTLS\r\n");
  f.send(s2c, "250 ok\r\n220 2.0.0 Ready to start TLS\r\n");
  CHECK(f.p->state() == parser_state::done);
  f.send(c2s, std::string("\x16\x03\x01\x00\x05hello", 10));
  f.p->finish(9, f.out);
  CHECK(f.out.empty());
}

TEST_CASE("roles from content, malformed input and limits") {
  fixture f;
  // The flow table got the direction wrong: the greeting comes as c2s.
  f.send(c2s, greeting);
  f.send(s2c, "HELO c\r\nMAIL FROM:<a@x>\r\n");
  f.send(c2s, "250 ok\r\n250 ok\r\n");
  f.p->finish(9, f.out);
  REQUIRE(f.out.size() == 1);
  CHECK(f.out[0].dir == s2c);

  fixture g;
  g.send(c2s, "GET / HTTP/1.1\r\n");
  CHECK(g.p->state() == parser_state::violated);
  CHECK(g.counters.violations == 1);

  fixture h;
  h.send(s2c, "not an smtp server\r\n");
  CHECK(h.p->state() == parser_state::violated);

  fixture l;
  l.opts.max_line = 16;
  l.opts.max_field = 8;
  l.opts.max_records_per_flow = 1;
  l.reset();
  l.send(s2c, greeting);
  l.send(c2s, "HELO c\r\nMAIL FROM:<averyveryverylongaddress@x>\r\n");
  l.send(c2s, "MAIL FROM:<b@x>\r\n");
  l.p->finish(9, l.out);
  REQUIRE(l.out.size() == 1);
  CHECK(l.mail(0).mail_sender().size() <= 8);
  CHECK(l.counters.limit_hits >= 2); // long line + record cap
}

TEST_CASE("probe") {
  auto probe = [](const std::string& s) {
    return smtp_probe(reinterpret_cast<const uint8_t*>(s.data()), s.size(), s2c);
  };
  CHECK(probe("220 mx ESMTP ready\r\n"));
  CHECK(probe("EHLO me\r\n"));
  CHECK_FALSE(probe("220 ProFTPD Server ready\r\n"));
  CHECK_FALSE(probe("GET / HTTP/1.1\r\n"));
}
