// SPDX-License-Identifier: Apache-2.0
// Unit tests of the shared mail pieces: the RFC 5322 / MIME message reader,
// the line splitter and the SASL helpers.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "parsers/mail/line_buffer.hpp"
#include "parsers/mail/mail_message.hpp"
#include "parsers/mail/sasl.hpp"
#include "parsers/mail/sasl_exchange.hpp"

using namespace metaprobe;

namespace {

mail::message_fields read(const std::string& msg, size_t max_field = 4096, size_t max_headers = 128) {
  mail::message_reader r(max_field, max_headers);
  size_t pos = 0;
  while (pos < msg.size()) {
    size_t nl = msg.find('\n', pos);
    if (nl == std::string::npos)
      nl = msg.size();
    std::string line = msg.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    r.line(line);
    pos = nl + 1;
  }
  r.end();
  return r.fields();
}

} // namespace

TEST_CASE("header fields, folding and repeated recipients") {
  const auto f = read("Received: from x\r\n\tby y\r\n"
                      "From: \"Buchanan, Bill\" <B.Buchanan@napier.ac.uk>\r\n"
                      "To: \"a@b.com\"\r\n\t<a@b.com>\r\n"
                      "to: c@d.com\r\n"
                      "CC: x@y.z\r\n"
                      "Subject: =?UTF-8?B?w6k=?= and more\r\n"
                      "Reply-To: r@s.t\r\n"
                      "Subject: second ignored\r\n"
                      "\r\n"
                      "From: body line, not a header\r\n");
  CHECK(f.from == "\"Buchanan, Bill\" <B.Buchanan@napier.ac.uk>");
  CHECK(f.to == "\"a@b.com\"\t<a@b.com>, c@d.com");
  CHECK(f.cc == "x@y.z");
  CHECK(f.subject == "=?UTF-8?B?w6k=?= and more"); // encoded words left as sent
  CHECK(f.reply_to == "r@s.t");
  CHECK_FALSE(f.attachment);
  CHECK(f.headers_seen);
}

TEST_CASE("attachment detection through nested multiparts") {
  const std::string msg =
      "From: a@b\r\nContent-Type: multipart/mixed;\r\n boundary=\"outer\"\r\n\r\n"
      "preamble\r\n--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"
      "--inner\r\nContent-Type: text/plain\r\n\r\nhello\r\n--inner--\r\n"
      "--outer\r\nContent-Type: application/pdf\r\n"
      "Content-Disposition: attachment;\r\n\tfilename=\"x.pdf\"\r\n\r\nJVBERi0=\r\n--outer--\r\n";
  CHECK(read(msg).attachment);
  // Only text parts: no attachment.
  const std::string plain =
      "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
      "x\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b--\r\n";
  CHECK_FALSE(read(plain).attachment);
  // A part with only a name= parameter counts.
  CHECK(read("Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n"
             "Content-Type: image/png; name=a.png\r\n\r\nAAAA\r\n--q--\r\n").attachment);
  // A boundary-looking line in a message that is not multipart changes nothing.
  CHECK_FALSE(read("Subject: s\r\n\r\n--q\r\nContent-Disposition: attachment\r\n\r\n").attachment);
  // RFC 2231 filename*.
  CHECK(read("Content-Disposition: inline; filename*=utf-8''a%20b.txt\r\n\r\nx\r\n").attachment);
}

TEST_CASE("mime_parameter") {
  CHECK(mail::mime_parameter("multipart/mixed; boundary=\"a;b\"", "boundary") == "a;b");
  CHECK(mail::mime_parameter("text/plain; charset=utf-8; name=x.txt", "NAME") == "x.txt");
  CHECK(mail::mime_parameter("text/plain", "name").empty());
  CHECK(mail::mime_parameter("x; broken", "name").empty());
}

TEST_CASE("limits: field length and header count") {
  const std::string big(100, 'a');
  mail::message_reader r(10, 2);
  r.line("Subject: " + big);
  r.line("X-1: a");
  r.line("To: never@read"); // third header: over max_headers
  r.line("");
  r.end();
  CHECK(r.fields().subject == "aaaaaaaaaa");
  CHECK(r.fields().to.empty());
  CHECK(r.truncated() == 1);
  CHECK(r.limit_hits() == 1);
  // Invalid UTF-8 becomes U+FFFD.
  mail::message_reader u(100, 10);
  u.line("Subject: a\xff" "b");
  u.end();
  CHECK(u.fields().subject == "a\xef\xbf\xbd" "b");
}

TEST_CASE("a body without the empty line starts at the first non-field line") {
  const auto f = read("From: a@b\r\nthis is body text\r\nTo: not@header\r\n");
  CHECK(f.from == "a@b");
  CHECK(f.to.empty());
}

TEST_CASE("line_buffer: split lines, CRLF, cut lines") {
  mail::line_buffer lb(8);
  const std::string data = "ab\r\ncd";
  bool complete = false;
  size_t n = lb.feed(reinterpret_cast<const uint8_t*>(data.data()), data.size(), complete);
  CHECK(complete);
  CHECK(n == 4);
  CHECK(lb.line() == "ab");
  n = lb.feed(reinterpret_cast<const uint8_t*>(data.data() + 4), 2, complete);
  CHECK_FALSE(complete);
  CHECK(lb.pending() == 2);
  const std::string rest = "ef\r\n0123456789abc\n";
  n = lb.feed(reinterpret_cast<const uint8_t*>(rest.data()), rest.size(), complete);
  CHECK(complete);
  CHECK(lb.line() == "cdef");
  n = lb.feed(reinterpret_cast<const uint8_t*>(rest.data() + 4), rest.size() - 4, complete);
  CHECK(complete);
  CHECK(lb.cut());
  CHECK(lb.line() == "01234567");
}

TEST_CASE("sasl helpers") {
  std::string dec;
  CHECK(sasl::base64_decode("AGRpZ2l0YWxpbnZlc3RpZ2F0b3JAbmV0d29ya3NpbXMuY29tAG5hcGllcg==", dec, 1000));
  sasl::plain_credentials c;
  REQUIRE(sasl::split_plain(dec, c));
  CHECK(c.authzid.empty());
  CHECK(c.authcid == "digitalinvestigator@networksims.com");
  CHECK(c.passwd == "napier");
  CHECK_FALSE(sasl::split_plain(std::string("a\0b", 3), c));
  CHECK_FALSE(sasl::base64_decode("ab$c", dec, 100));
  CHECK(sasl::base64_decode("YWJjZGVm", dec, 3));
  CHECK(dec == "abc"); // capped
  CHECK(sasl::digest_md5_username("username=\"tom\",realm=\"x\"") == "tom");
  CHECK(sasl::digest_md5_username("realm=\"x\",nonce=\"y\"").empty());
  CHECK(sasl::scram_username("n,,n=us=2Cer,r=abc") == "us,er");
  CHECK(sasl::scram_username("garbage").empty());
}

TEST_CASE("sasl::exchange: what each mechanism yields") {
  using sasl::outcome;
  sasl::exchange x(4096);
  // PLAIN: authcid and password; an empty authcid falls back to the authzid.
  x.start("plain");
  CHECK(x.response("AGFsaWNlAHMzY3JldA=="));
  CHECK(x.attempt().mechanism == "PLAIN");
  CHECK(x.attempt().user == "alice");
  CHECK(x.attempt().password == "s3cret");
  x.start("PLAIN");
  x.response("YWRtaW4AAHB3"); // admin\0\0pw
  CHECK(x.attempt().user == "admin");
  // PLAIN with a malformed message (one NUL) and non-base64 text: nothing.
  x.start("PLAIN");
  x.response("YWxpY2UAcHc="); // alice\0pw
  x.response("!!!");
  CHECK(x.attempt().user.empty());
  CHECK(x.attempt().responses == 2);
  // LOGIN: prompts decide; without prompts, order does.
  x.start("LOGIN");
  x.challenge("UGFzc3dvcmQ6"); // "Password:" first (odd server)
  x.response("czNjcmV0");
  x.challenge("VXNlcm5hbWU6");
  x.response("YWxpY2U=");
  CHECK(x.attempt().user == "alice");
  CHECK(x.attempt().password == "s3cret");
  x.start("LOGIN");
  x.challenge("");
  x.response("YWxpY2U=");
  x.challenge("");
  x.response("czNjcmV0");
  CHECK(x.attempt().user == "alice");
  CHECK(x.attempt().password == "s3cret");
  // CRAM-MD5 (RFC 2195 §2 example).
  x.start("CRAM-MD5");
  x.challenge("PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+");
  x.response("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
  CHECK(x.attempt().user == "tim");
  CHECK(x.attempt().password.empty());
  // DIGEST-MD5 (RFC 2831 §4 example response).
  x.start("DIGEST-MD5");
  x.response("Y2hhcnNldD11dGYtOCx1c2VybmFtZT0iY2hyaXMiLHJlYWxtPSJlbHdvb2QuaW5ub3NvZnQuY29tIi"
             "xub25jZT0iT0E2TUc5dEVRR20yaGgiLG5jPTAwMDAwMDAxLGNub25jZT0iT0E2TUhYaDZWcVRyUmsi"
             "LGRpZ2VzdC11cmk9ImltYXAvZWx3b29kLmlubm9zb2Z0LmNvbSIscmVzcG9uc2U9ZDM4OGRhZDkwZD"
             "RiYmQ3NjBhMTUyMzIxZjIxNDNhZjcscW9wPWF1dGg=");
  CHECK(x.attempt().user == "chris");
  // SCRAM (RFC 5802 §5 example client-first).
  x.start("SCRAM-SHA-256");
  x.response("biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdM");
  CHECK(x.attempt().user == "user");
  // OAUTHBEARER: the GS2 authzid, "=2C" decoded.
  x.start("OAUTHBEARER");
  x.response("bixhPXVzPTJDZXJAZXhhbXBsZS5jb20sAWF1dGg9QmVhcmVyIHgBAQ==");
  CHECK(x.attempt().user == "us,er@example.com");
  CHECK(x.attempt().password.empty());
  // EXTERNAL with "=" (empty initial response): no user.
  x.start("EXTERNAL");
  CHECK(x.response("="));
  CHECK(x.attempt().user.empty());
  // "*" cancels.
  x.start("GSSAPI");
  CHECK_FALSE(x.response(" * "));
  CHECK(x.attempt().result == outcome::cancelled);
}

TEST_CASE("sasl::exchange: limits") {
  sasl::exchange x(4);
  x.start("PLAIN");
  x.response("AGFsaWNlAHMzY3JldA==");
  CHECK(x.attempt().user == "alic");
  CHECK(x.attempt().password == "s3cr");
  CHECK(x.truncated() == 2);
  // A response far longer than max_decoded is cut, never grown without bound.
  sasl::exchange y(1 << 20);
  y.start("LOGIN");
  y.response(std::string(100000, 'Q'));
  CHECK(y.attempt().user.size() == sasl::exchange::max_decoded);
  CHECK(sasl::icontains("Enter PASSWORD:", "pass"));
  CHECK_FALSE(sasl::icontains("pa", "pass"));
}
