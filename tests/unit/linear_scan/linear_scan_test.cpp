// SPDX-License-Identifier: Apache-2.0
// Linear-time parsing: every stream parser, fed a message of the largest
// size it accepts one byte per segment, searches each byte for message
// boundaries (line ends, the end of a header block, the end of a tag) a
// bounded number of times. The bound is checked through
// parser_counters::bytes_scanned, not a timer: a parser that rescans its
// unfinished message on every segment (SIP's header block and XMPP's open
// tag did) reads about len^2/2 bytes here, over 10^9 for 64 KiB.
// Each case also checks that the message was parsed (its record is there),
// so a parser that gave up early cannot pass.
#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "parsers/registry.hpp"

using namespace metaprobe;

namespace {

constexpr auto c2s = direction::client_to_server;
constexpr auto s2c = direction::server_to_client;

struct step {
  direction dir;
  std::string bytes;
  bool bytewise = true; // one byte per segment (else in one segment)
};

struct result {
  record_sink records;
  parser_counters counters;
  uint64_t delivered = 0;
};

result run(app_protocol proto, const std::vector<step>& steps, const parser_options& opts = {}) {
  const protocol_entry* e = find_protocol(proto);
  REQUIRE(e != nullptr);
  REQUIRE(static_cast<bool>(e->make_stream));
  result r;
  auto p = e->make_stream(opts, r.counters);
  uint32_t seq[2] = {1000, 5000};
  uint64_t ts = 1;
  for (const step& st : steps) {
    const auto* d = reinterpret_cast<const uint8_t*>(st.bytes.data());
    const size_t n = st.bytes.size();
    auto& q = seq[static_cast<size_t>(st.dir) & 1];
    if (st.bytewise) {
      for (size_t i = 0; i < n; ++i)
        p->deliver(st.dir, d + i, 1, ts++, q++, r.records);
    } else {
      p->deliver(st.dir, d, n, ts++, q, r.records);
      q += static_cast<uint32_t>(n);
    }
    r.delivered += n;
  }
  p->finish(ts, r.records);
  return r;
}

// Header lines of `total` bytes together, each at most `line` bytes.
std::string pad_headers(const char* name, size_t total, size_t line) {
  std::string out;
  for (size_t i = 0; out.size() < total; ++i) {
    std::string l = std::string(name) + "-" + std::to_string(i) + ": ";
    const size_t want = std::min(line, total - out.size());
    if (want > l.size() + 2)
      l.append(want - l.size() - 2, 'a');
    l += "\r\n";
    out += l;
  }
  return out;
}

// The bound every case checks: each delivered byte searched at most
// `factor` times (plus a constant for the terminators looked for again
// across a segment boundary).
void check_linear(const result& r, double factor = 2.0) {
  INFO("delivered " << r.delivered << ", scanned " << r.counters.bytes_scanned);
  CHECK(r.counters.bytes_scanned >= r.delivered / 2); // the scans are counted
  CHECK(static_cast<double>(r.counters.bytes_scanned) <= factor * static_cast<double>(r.delivered) + 64);
}

} // namespace

TEST_CASE("linear scans: SIP, a 64 KiB header block byte by byte, and resync over a long line") {
  parser_options o;
  const std::string head = "INVITE sip:bob@example.test SIP/2.0\r\n"
                           "Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
                           "From: <sip:alice@example.test>;tag=1\r\n"
                           "To: <sip:bob@example.test>\r\n"
                           "Call-ID: linear-1@example.test\r\n"
                           "CSeq: 1 INVITE\r\n";
  std::string msg = head + pad_headers("X-Pad", o.max_buffered - head.size() - 200, 1000) +
                    "Content-Length: 0\r\n\r\n";
  REQUIRE(msg.size() < o.max_buffered);
  auto r = run(app_protocol::sip, {{c2s, msg}});
  CHECK(r.records.size() == 1);
  check_linear(r);

  // After a gap the parser looks for the next start line: one long line
  // without a start line first, then a message.
  const protocol_entry* e = find_protocol(app_protocol::sip);
  parser_counters c;
  auto p = e->make_stream(o, c);
  record_sink out;
  const std::string first = head + "Content-Length: 0\r\n\r\n";
  p->deliver(c2s, reinterpret_cast<const uint8_t*>(first.data()), first.size(), 1, 1, out);
  p->gap(c2s, 100);
  const std::string junk = std::string(o.max_buffered - 100, 'j') + "\r\n";
  const std::string second = "BYE sip:bob@example.test SIP/2.0\r\nCall-ID: linear-1@example.test\r\n"
                             "CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
  uint64_t delivered = first.size();
  for (const std::string* part : {&junk, &second})
    for (char ch : *part) {
      p->deliver(c2s, reinterpret_cast<const uint8_t*>(&ch), 1, 2, 0, out);
      ++delivered;
    }
  p->finish(3, out);
  CHECK(out.size() == 2);
  INFO("delivered " << delivered << ", scanned " << c.bytes_scanned);
  CHECK(c.bytes_scanned <= 2 * delivered + 64);
}

TEST_CASE("linear scans: XMPP, a 64 KiB open tag, comment and CDATA byte by byte") {
  parser_options o;
  const std::string open = "<?xml version='1.0'?><stream:stream to='example.test' "
                           "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
                           "version='1.0'>";
  const std::string server = "<?xml version='1.0'?><stream:stream from='example.test' id='s1' "
                             "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
                             "version='1.0'><stream:features><mechanisms "
                             "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"
                             "</mechanisms></stream:features>";
  const size_t big = o.max_buffered - 1000;
  // '>' inside the quoted value must not end the tag.
  const std::string tag = "<presence x='" + std::string(big, '>') + "'/>";
  const std::string comment = "<!--" + std::string(big, '-') + "-->";
  const std::string cdata = "<message to='a@example.test'><body><![CDATA[" + std::string(big, ']') +
                            "]]></body></message>";
  // SASL PLAIN "\0alice\0secret"
  const std::string auth = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                           "AGFsaWNlAHNlY3JldA==</auth>";
  auto r = run(app_protocol::xmpp, {{c2s, open, false},
                                    {s2c, server, false},
                                    {c2s, tag},
                                    {c2s, comment},
                                    {c2s, cdata},
                                    {c2s, auth},
                                    {s2c, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>", false}});
  CHECK(r.counters.violations == 0);
  CHECK(r.counters.limit_hits == 0);
  CHECK(r.records.size() == 2); // the message and the login
  // A terminator of n bytes ("-->", "]]>") is looked for again across each
  // segment boundary: n reads per byte at 1-byte segments.
  check_linear(r, 3.0);
}

TEST_CASE("linear scans: HTTP, max-length request line and headers byte by byte") {
  parser_options o;
  // The header block at its bound (max_buffered), lines at max_line.
  std::string req = "GET /" + std::string(o.max_line - 100, 'p') + " HTTP/1.1\r\n" +
                    "Host: www.example.test\r\n" +
                    pad_headers("X-Pad", o.max_buffered - 200, o.max_line - 10) + "\r\n";
  auto r = run(app_protocol::http, {{c2s, req}, {s2c, "HTTP/1.1 204 No Content\r\n\r\n"}});
  CHECK(r.records.size() == 1);
  CHECK(r.counters.limit_hits == 0);
  check_linear(r);
}

TEST_CASE("linear scans: SMTP, POP3, IMAP, FTP, max-length lines byte by byte") {
  parser_options o;
  const std::string name = std::string(o.max_line - 20, 'h');
  const std::string imap_msg = "Subject: " + name + "\r\nFrom: bob@example.test\r\n\r\nbody\r\n";
  SUBCASE("smtp") {
    auto r = run(app_protocol::smtp,
                 {{s2c, "220 mx.example.test ESMTP\r\n"},
                  {c2s, "EHLO " + name + "\r\n"},
                  {s2c, "250 mx.example.test\r\n"},
                  {c2s, "MAIL FROM:<alice@example.test>\r\n"},
                  {s2c, "250 ok\r\n"},
                  {c2s, "RCPT TO:<bob@example.test>\r\n"},
                  {s2c, "250 ok\r\n"},
                  {c2s, "DATA\r\n"},
                  {s2c, "354 go\r\n"},
                  {c2s, "Subject: " + name + "\r\nFrom: alice@example.test\r\n" +
                          pad_headers("X-Pad", 32 * (o.max_line - 10), o.max_line - 10) +
                          "\r\nbody\r\n.\r\n"},
                  {s2c, "250 queued\r\n"}});
    CHECK(r.records.size() == 1);
    check_linear(r);
  }
  SUBCASE("pop3") {
    auto r = run(app_protocol::pop3, {{s2c, "+OK ready\r\n"},
                                      {c2s, "USER alice" + std::string(o.max_line - 40, 'u') + "\r\n"},
                                      {s2c, "+OK\r\n"},
                                      {c2s, "PASS secret\r\n"},
                                      {s2c, "+OK logged in " + name + "\r\n"},
                                      {c2s, "RETR 1\r\n"},
                                      {s2c, "+OK message follows\r\nSubject: " + name +
                                              "\r\nFrom: bob@example.test\r\n\r\nbody\r\n.\r\n"}});
    CHECK(r.records.size() == 1);
    check_linear(r);
  }
  SUBCASE("imap") {
    auto r = run(app_protocol::imap,
                 {{s2c, "* OK " + name + "\r\n"},
                  {c2s, "a1 CAPABILITY " + name + "\r\n"},
                  {s2c, "* CAPABILITY IMAP4rev1\r\na1 OK done\r\n"},
                  {c2s, "a2 LOGIN alice secret\r\n"},
                  {s2c, "a2 OK " + name + "\r\n"},
                  {c2s, "a3 SELECT INBOX\r\n"},
                  {s2c, "a3 OK [READ-WRITE] done\r\n"},
                  {c2s, "a4 FETCH 1 BODY[]\r\n"},
                  {s2c, "* 1 FETCH (BODY[] {" + std::to_string(imap_msg.size()) + "}\r\n" + imap_msg +
                          ")\r\na4 OK done\r\n"}});
    CHECK(r.records.size() == 1);
    check_linear(r);
  }
  SUBCASE("ftp") {
    auto r = run(app_protocol::ftp, {{s2c, "220 " + name + "\r\n"},
                                     {c2s, "USER alice\r\n"},
                                     {s2c, "331 " + name + "\r\n"},
                                     {c2s, "PASS secret\r\n"},
                                     {s2c, "230 " + name + "\r\n"}});
    CHECK(r.records.size() >= 1);
    check_linear(r);
  }
}
