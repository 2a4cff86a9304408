// SPDX-License-Identifier: Apache-2.0
// Unit tests of the DNS wire decoder, RDATA formatting and the UDP/TCP parsers.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "parsers/dns/dns_message.hpp"
#include "parsers/dns/dns_parser.hpp"
#include "parsers/dns/dns_rdata.hpp"

using namespace metaprobe;

namespace {

constexpr auto c2s = direction::client_to_server;
constexpr auto s2c = direction::server_to_client;

// Builds DNS messages byte by byte, good or broken.
struct msg_builder {
  std::string b;
  msg_builder& u8(unsigned v) {
    b.push_back(static_cast<char>(v & 0xff));
    return *this;
  }
  msg_builder& u16(unsigned v) { return u8(v >> 8).u8(v); }
  msg_builder& u32(uint32_t v) { return u16(v >> 16).u16(v & 0xffff); }
  msg_builder& raw(const std::string& s) {
    b += s;
    return *this;
  }
  msg_builder& header(unsigned id, unsigned flags, unsigned qd, unsigned an, unsigned ns = 0,
                      unsigned ar = 0) {
    return u16(id).u16(flags).u16(qd).u16(an).u16(ns).u16(ar);
  }
  // "www.example.com" -> labels; "" -> root. No compression.
  msg_builder& name(const std::string& dotted) {
    size_t i = 0;
    while (i < dotted.size()) {
      size_t j = dotted.find('.', i);
      if (j == std::string::npos)
        j = dotted.size();
      u8(static_cast<unsigned>(j - i));
      b.append(dotted, i, j - i);
      i = j + 1;
    }
    return u8(0);
  }
  msg_builder& ptr(unsigned off) { return u8(0xc0 | (off >> 8)).u8(off); }
  msg_builder& question(const std::string& n, unsigned type, unsigned cls = 1) {
    return name(n).u16(type).u16(cls);
  }
  // RR header after its name; rdata appended by the caller.
  msg_builder& rr(unsigned type, uint32_t ttl, unsigned rdlen, unsigned cls = 1) {
    return u16(type).u16(cls).u32(ttl).u16(rdlen);
  }
  size_t size() const { return b.size(); }
  const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(b.data()); }
};

struct udp_fixture {
  parser_options opts;
  parser_counters counters;
  std::unique_ptr<datagram_parser> p;
  record_sink out;
  udp_fixture() { p = make_dns_datagram_parser(opts, counters); }
  void reset() { p = make_dns_datagram_parser(opts, counters); }
  void send(direction d, const msg_builder& m, uint64_t ts = 7) {
    p->deliver(d, m.data(), m.size(), ts, out);
  }
  const v1::Dns& dns(size_t i) const { return out.at(i).record.dns(); }
};

// A response: www.example.com CNAME web.example.net (compressed), A, AAAA.
msg_builder cname_response() {
  msg_builder m;
  m.header(0x1234, 0x8180, 1, 3);
  m.question("www.example.com", 1); // name at offset 12
  // answer 1: www.example.com CNAME web.example.net -> "web" + ptr to "example" ... no: .net
  m.ptr(12).rr(5, 300, 2 + 4 + 4 + 4 + 1 - 4 - 4 + 4); // patched below
  const size_t rdlen_at = m.size() - 2;
  const size_t rd_start = m.size();
  m.u8(3).raw("web").u8(7).raw("example").u8(3).raw("net").u8(0);
  const size_t rdlen = m.size() - rd_start;
  m.b[rdlen_at] = static_cast<char>(rdlen >> 8);
  m.b[rdlen_at + 1] = static_cast<char>(rdlen & 0xff);
  // answer 2: web.example.net A 192.0.2.1 (owner name compressed to rd_start)
  m.ptr(static_cast<unsigned>(rd_start)).rr(1, 60, 4).u8(192).u8(0).u8(2).u8(1);
  // answer 3: AAAA 2001:db8::1
  m.ptr(static_cast<unsigned>(rd_start)).rr(28, 60, 16).u16(0x2001).u16(0xdb8);
  for (int i = 0; i < 5; ++i)
    m.u16(0);
  m.u16(1);
  return m;
}

} // namespace

TEST_CASE("a query gives one QUESTION record per question") {
  udp_fixture f;
  msg_builder m;
  m.header(0xbeef, 0x0100, 2, 0).question("example.com", 1).question("example.org", 28);
  f.send(c2s, m, 55);
  REQUIRE(f.out.size() == 2);
  const auto& d = f.dns(0);
  CHECK(d.domain() == "example.com");
  CHECK(d.rrtype() == 1);
  CHECK(d.rrclass() == 1);
  CHECK(d.ttl() == 0);
  CHECK(d.rdata().empty());
  CHECK(d.rdata_text().empty());
  CHECK_FALSE(d.response());
  CHECK(d.dns_id() == 0xbeef);
  CHECK(d.section() == v1::Dns::QUESTION);
  CHECK(d.transport() == 0);
  CHECK_FALSE(d.has_meta());
  CHECK(f.out[0].ts_ns == 55);
  CHECK(f.out[0].dir == c2s);
  CHECK(f.out[0].tcp_seq == 0);
  CHECK(f.dns(1).domain() == "example.org");
  CHECK(f.dns(1).rrtype() == 28);
  CHECK(f.p->state() == parser_state::confirmed);
  CHECK(f.counters.messages == 1);
  CHECK(f.counters.records == 2);
}

TEST_CASE("a response gives one ANSWER record per answer, names decompressed") {
  udp_fixture f;
  f.send(s2c, cname_response());
  REQUIRE(f.out.size() == 3);
  const auto& c = f.dns(0);
  CHECK(c.domain() == "www.example.com");
  CHECK(c.rrtype() == 5);
  CHECK(c.ttl() == 300);
  CHECK(c.rdata_text() == "web.example.net");
  CHECK(c.rdata() == std::string("\x03web\x07" "example\x03net\x00", 17));
  CHECK(c.response());
  CHECK(c.rcode() == 0);
  CHECK(c.section() == v1::Dns::ANSWER);
  CHECK(f.dns(1).domain() == "web.example.net");
  CHECK(f.dns(1).rdata_text() == "192.0.2.1");
  CHECK(f.dns(1).rdata() == std::string("\xc0\x00\x02\x01", 4));
  CHECK(f.dns(2).rdata_text() == "2001:db8::1");
  CHECK(f.dns(2).rdata().size() == 16);
}

TEST_CASE("a response without answers gives its questions with the rcode") {
  udp_fixture f;
  msg_builder m;
  m.header(7, 0x8183, 1, 0, 1).question("nx.example", 1);
  m.ptr(15).rr(6, 900, 0); // authority SOA: not reported (and empty rdata)
  f.send(s2c, m);
  REQUIRE(f.out.size() == 1);
  CHECK(f.dns(0).domain() == "nx.example");
  CHECK(f.dns(0).response());
  CHECK(f.dns(0).rcode() == 3);
  CHECK(f.dns(0).section() == v1::Dns::QUESTION);
}

TEST_CASE("an inverse query without questions reports its answer RRs") {
  udp_fixture f;
  msg_builder m;
  m.header(0x77fc, 0x0800, 0, 1).name("").rr(1, 0, 4).u32(0xd83aca04);
  f.send(c2s, m);
  REQUIRE(f.out.size() == 1);
  CHECK(f.dns(0).domain() == "<Root>");
  CHECK(f.dns(0).rdata_text() == "216.58.202.4");
  CHECK_FALSE(f.dns(0).response());
  CHECK(f.dns(0).section() == v1::Dns::ANSWER);
}

TEST_CASE("rdata text of every supported type") {
  struct rd_case {
    unsigned type;
    std::string rdata;
    std::string text;
  };
  const std::vector<rd_case> cases = {
    {1, std::string("\x0a\x00\x00\x01", 4), "10.0.0.1"},
    {28, std::string("\xfe\x80\0\0\0\0\0\0\x02\x1f\xf3\xff\xfe\xcd\xf6\x17", 16),
     "fe80::21f:f3ff:fecd:f617"},
    {2, std::string("\x02ns\x01x\x00", 6), "ns.x"},
    {5, std::string("\x01" "c\x00", 3), "c"},
    {12, std::string("\x03www\x06" "cesnet\x02" "cz\x00", 15), "www.cesnet.cz"},
    {39, std::string("\x01" "d\x00", 3), "d"},
    {15, std::string("\x00\x0a\x02mx\x01x\x00", 8), "10 mx.x"},
    {15, std::string("\x00\x00\x00", 3), "0 <Root>"},
    {16, std::string("\x05hello\x0awith \"q\" \\", 17), "\"hello\" \"with \\\"q\\\" \\\\\""},
    {16, std::string("\x03\x01\xc3\xa9", 4), "\"\\001\xc3\xa9\""},
    {16, std::string("\x02\xff\x7f", 3), "\"\\255\\127\""},
    {16, std::string("\x00", 1), "\"\""},
    {6, std::string("\x02ns\x00\x04mail\x00\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x03"
                    "\x00\x00\x00\x04\x00\x00\x00\x05", 30),
     "ns mail 1 2 3 4 5"},
    {33, std::string("\x00\x01\x00\x02\x14\x51\x03srv\x00", 11), "1 2 5201 srv"},
    {99, std::string("\x06v=spf1", 7), "\"v=spf1\""},
    {48, std::string("\x01\x01\x03\x08", 4), "\\# 4 01010308"},
    {10, std::string(), "\\# 0"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.type);
    CAPTURE(c.text);
    msg_builder m;
    m.header(1, 0x8180, 0, 1).name("a").rr(c.type, 1, static_cast<unsigned>(c.rdata.size()));
    const size_t off = m.size();
    m.raw(c.rdata);
    std::string text, bytes;
    CHECK(dns::format_rdata(m.data(), m.size(), off, static_cast<uint16_t>(c.rdata.size()),
                            static_cast<uint16_t>(c.type), text, bytes));
    CHECK(text == c.text);
    CHECK(bytes == c.rdata);
  }
}

TEST_CASE("malformed rdata gives an empty text and the raw bytes") {
  msg_builder m;
  m.header(1, 0x8180, 0, 1).name("a").rr(1, 1, 3);
  const size_t off = m.size();
  m.raw("abc");
  std::string text, bytes;
  CHECK_FALSE(dns::format_rdata(m.data(), m.size(), off, 3, 1, text, bytes));
  CHECK(text.empty());
  CHECK(bytes == "abc");
  // TXT string longer than the RDATA; MX whose name runs past the RDATA.
  CHECK_FALSE(dns::format_rdata(m.data(), m.size(), off, 3, 16, text, bytes));
  CHECK_FALSE(dns::format_rdata(m.data(), m.size(), off, 3, 15, text, bytes));
  CHECK_FALSE(dns::format_rdata(m.data(), m.size(), off, 3, 6, text, bytes));
  CHECK_FALSE(dns::format_rdata(m.data(), m.size(), off, 3, 33, text, bytes));
}

TEST_CASE("names: root, escapes, UTF-8, forward pointers") {
  std::string text;
  size_t next = 0;
  {
    const std::string m = std::string(12, '\0') + std::string("\x00", 1);
    CHECK(dns::read_name(reinterpret_cast<const uint8_t*>(m.data()), m.size(), 12, text, nullptr,
                         next) == dns::name_status::ok);
    CHECK(text == "<Root>");
    CHECK(next == 13);
  }
  {
    msg_builder m;
    m.header(0, 0, 0, 0)
      .raw(std::string("\x05" "a.b\\c\x04" "x\x7fy\x01\x03" "\xc3\xa9\xff\x00", 16));
    std::string wire;
    CHECK(dns::read_name(m.data(), m.size(), 12, text, &wire, next) == dns::name_status::ok);
    CHECK(text == "a.b\\c.x\\177y\\001.\xc3\xa9\xef\xbf\xbd");
    CHECK(wire == m.b.substr(12));
    CHECK(next == m.size());
  }
  {
    msg_builder m;
    m.header(0, 0, 0, 0).raw(std::string("\x03\t\n\r\x04\x07\x08\x0b\x0c\x02\x1b\x00\x00", 13));
    CHECK(dns::read_name(m.data(), m.size(), 12, text, nullptr, next) == dns::name_status::ok);
    CHECK(text == "\\t\\n\\r.\\a\\b\\v\\f.\\033\\000");
  }
  {
    // "abc" + pointer forward to "def".
    msg_builder m;
    m.header(0, 0, 0, 0).u8(3).raw("abc").ptr(18).u8(3).raw("def").u8(0);
    std::string wire;
    CHECK(dns::read_name(m.data(), m.size(), 12, text, &wire, next) == dns::name_status::ok);
    CHECK(text == "abc.def");
    CHECK(next == 18);
    CHECK(wire == std::string("\x03" "abc\x03" "def\x00", 9));
  }
}

TEST_CASE("names: loops, over-long names and bad labels") {
  std::string text;
  size_t next = 0;
  {
    msg_builder m;
    m.header(0, 0, 0, 0).u8(3).raw("abc").ptr(12);
    CHECK(dns::read_name(m.data(), m.size(), 12, text, nullptr, next) == dns::name_status::loop);
    CHECK(text == "<Name contains a pointer that loops>");
    CHECK(next == m.size());
  }
  {
    msg_builder m;
    m.header(0, 0, 0, 0).ptr(12);
    CHECK(dns::read_name(m.data(), m.size(), 12, text, nullptr, next) == dns::name_status::loop);
  }
  {
    msg_builder m; // 63*3 + 61 + 3 dots = 253: fine; 254: too long
    m.header(0, 0, 0, 0)
      .name(std::string(63, 'a') + "." + std::string(63, 'a') + "." + std::string(63, 'a') + "." +
            std::string(61, 'b'));
    CHECK(dns::read_name(m.data(), m.size(), 12, text, nullptr, next) == dns::name_status::ok);
    CHECK(text.size() == 253);
    msg_builder n;
    n.header(0, 0, 0, 0)
      .name(std::string(63, 'a') + "." + std::string(63, 'a') + "." + std::string(63, 'a') + "." +
            std::string(62, 'b'));
    CHECK(dns::read_name(n.data(), n.size(), 12, text, nullptr, next) ==
          dns::name_status::too_long);
    CHECK(text == "<Name too long>");
    CHECK(next == n.size());
  }
  {
    // A pointer to the two bytes just past itself counts as a loop (tshark).
    msg_builder m;
    m.header(0, 0, 0, 0).ptr(16).u16(0).u8(1).raw("a").u8(0);
    CHECK(dns::read_name(m.data(), m.size(), 12, text, nullptr, next) == dns::name_status::loop);
  }
  for (unsigned n : {255u, 256u}) {
    // A chain of n forward pointers: 255 is fine, 256 is a loop.
    msg_builder m;
    m.header(0, 0, 0, 0);
    for (unsigned i = 0; i < n; ++i)
      m.ptr(12 + 2 * (i + 1));
    m.u8(1).raw("a").u8(0);
    const auto st = dns::read_name(m.data(), m.size(), 12, text, nullptr, next);
    CHECK(st == (n == 255 ? dns::name_status::ok : dns::name_status::loop));
    CHECK(next == 14);
  }
  {
    // The walk after the first pointer is budgeted.
    msg_builder m;
    m.header(0, 0, 0, 0).ptr(14);
    for (int i = 0; i < 20; ++i)
      m.u8(1).raw("x");
    m.u8(0);
    size_t budget = 10;
    CHECK(dns::read_name(m.data(), m.size(), 12, text, nullptr, next, budget) ==
          dns::name_status::overload);
    budget = 21;
    CHECK(dns::read_name(m.data(), m.size(), 12, text, nullptr, next, budget) ==
          dns::name_status::ok);
    CHECK(budget == 1);
    dns::message_view view;
    dns::decode_limits limits;
    limits.max_name_steps = 5;
    msg_builder q;
    q.header(1, 0x0100, 2, 0).question("a.b.c.d.e.f", 1).ptr(12).u16(1).u16(1);
    CHECK(dns::decode_message(q.data(), q.size(), limits, view) == dns::decode_status::limit);
    CHECK(view.count == 1);
  }
  for (unsigned bad : {0x41u, 0x81u}) {
    msg_builder m;
    m.header(0, 0, 0, 0).u8(3).raw("abc").u8(bad).raw("xyz").u8(0);
    CHECK(dns::read_name(m.data(), m.size(), 12, text, nullptr, next) ==
          dns::name_status::malformed);
  }
  {
    msg_builder m; // pointer past the end, label past the end, missing terminator
    m.header(0, 0, 0, 0).ptr(0x3fff);
    CHECK(dns::read_name(m.data(), m.size(), 12, text, nullptr, next) ==
          dns::name_status::malformed);
    msg_builder n;
    n.header(0, 0, 0, 0).u8(10).raw("abc");
    CHECK(dns::read_name(n.data(), n.size(), 12, text, nullptr, next) ==
          dns::name_status::malformed);
    msg_builder o;
    o.header(0, 0, 0, 0).u8(3).raw("abc");
    CHECK(dns::read_name(o.data(), o.size(), 12, text, nullptr, next) ==
          dns::name_status::malformed);
  }
}

TEST_CASE("a name too long or looping still lets the message continue") {
  udp_fixture f;
  msg_builder m;
  m.header(0x84b4, 0x8100, 2, 1).question("www.xt.com", 1);
  m.u8(3).raw("abc").ptr(m.size()).u16(1).u16(1); // self-loop in the second question
  m.ptr(12).rr(5, 0, 2).ptr(12 + 12 + 4);         // CNAME -> the looping name
  f.send(s2c, m);
  REQUIRE(f.out.size() == 1);
  CHECK(f.dns(0).domain() == "www.xt.com");
  CHECK(f.dns(0).rdata_text() == "<Name contains a pointer that loops>");
  CHECK(f.dns(0).rdata() == std::string("\xc0\x1c", 2));
  CHECK(f.counters.violations == 0);
}

TEST_CASE("malformed messages keep the records decoded before the error") {
  SUBCASE("bad label in the second answer") {
    udp_fixture f;
    msg_builder m;
    m.header(1, 0x8180, 1, 2).question("a.example", 1);
    m.ptr(12).rr(1, 5, 4).u32(0x01020304);
    m.u8(0x80).raw("junk");
    f.send(s2c, m);
    REQUIRE(f.out.size() == 1);
    CHECK(f.dns(0).rdata_text() == "1.2.3.4");
    CHECK(f.counters.violations == 1);
  }
  SUBCASE("RDATA past the end: the RR is dropped, the question reported") {
    udp_fixture f;
    msg_builder m;
    m.header(1, 0x8180, 1, 1).question("a.example", 1);
    m.ptr(12).rr(1, 5, 40).u32(0x01020304);
    f.send(s2c, m);
    REQUIRE(f.out.size() == 1);
    CHECK(f.dns(0).section() == v1::Dns::QUESTION);
    CHECK(f.dns(0).domain() == "a.example");
    CHECK(f.counters.violations == 1);
  }
  SUBCASE("answers missing: the question is reported") {
    udp_fixture f;
    msg_builder m;
    m.header(1, 0x8180, 1, 7).question("ac.in", 48);
    f.send(s2c, m);
    REQUIRE(f.out.size() == 1);
    CHECK(f.dns(0).domain() == "ac.in");
    CHECK(f.dns(0).section() == v1::Dns::QUESTION);
    CHECK(f.counters.violations == 1);
  }
  SUBCASE("huge counts, nothing decodable") {
    udp_fixture f;
    msg_builder m;
    m.header(1, 0x02b8, 25528, 1, 0, 40016).u8(0x80).raw("garbage");
    f.send(c2s, m);
    CHECK(f.out.empty());
    CHECK(f.counters.violations == 1);
  }
  SUBCASE("shorter than a header") {
    udp_fixture f;
    msg_builder m;
    m.u16(1).u16(2);
    f.send(c2s, m);
    CHECK(f.out.empty());
    CHECK(f.counters.violations == 1);
    CHECK(f.counters.messages == 0);
  }
}

TEST_CASE("mDNS: the cache-flush / QU bit is dropped from class IN") {
  udp_fixture f;
  msg_builder m;
  m.header(0, 0x0000, 1, 0).question("_smb._tcp.local", 12, 0x8001);
  f.send(c2s, m);
  msg_builder r;
  r.header(0, 0x8400, 0, 1).name("host.local").rr(1, 120, 4, 0x8001).u32(0xc0a80103);
  f.send(s2c, r);
  REQUIRE(f.out.size() == 2);
  CHECK(f.dns(0).rrclass() == 1);
  CHECK(f.dns(1).rrclass() == 1);
  CHECK(f.dns(1).rdata_text() == "192.168.1.3");
  msg_builder ch;
  ch.header(0, 0x0000, 1, 0).question("version.bind", 16, 3);
  f.send(c2s, ch);
  CHECK(f.dns(2).rrclass() == 3);
}

TEST_CASE("limits: entries per message, records per flow, field length") {
  {
    udp_fixture f;
    msg_builder m;
    m.header(1, 0x8180, 1, 300).question("a", 1);
    for (int i = 0; i < 300; ++i)
      m.ptr(12).rr(1, 1, 4).u32(static_cast<uint32_t>(i));
    f.send(s2c, m);
    CHECK(f.out.size() == dns_message_decoder::max_entries_per_message - 1);
    CHECK(f.counters.limit_hits == 1);
  }
  {
    udp_fixture f;
    f.opts.max_records_per_flow = 3;
    f.reset();
    msg_builder m;
    m.header(1, 0x0100, 2, 0).question("a", 1).question("b", 1);
    f.send(c2s, m);
    f.send(c2s, m);
    CHECK(f.out.size() == 3);
    CHECK(f.counters.limit_hits == 1);
  }
  {
    udp_fixture f;
    f.opts.max_field = 8;
    f.reset();
    msg_builder m;
    m.header(1, 0x8180, 1, 1).question("abcdefghij.example", 16);
    m.ptr(12).rr(16, 1, 12).u8(11).raw("hello world");
    f.send(s2c, m);
    REQUIRE(f.out.size() == 1);
    CHECK(f.dns(0).domain() == "abcdefgh");
    CHECK(f.dns(0).rdata_text() == "\"hello w");
    CHECK(f.dns(0).rdata().size() == 12); // bytes are never cut
    CHECK(f.counters.truncated_fields == 2);
  }
}

TEST_CASE("a header-only message with nothing to report decodes to no record") {
  udp_fixture f;
  msg_builder m;
  m.header(0x77fc, 0x8904, 0, 0);
  f.send(s2c, m);
  CHECK(f.out.empty());
  CHECK(f.p->state() == parser_state::confirmed);
  CHECK(f.counters.violations == 0);
}

// ---- TCP -------------------------------------------------------------------

namespace {

struct tcp_fixture {
  parser_options opts;
  parser_counters counters;
  std::unique_ptr<stream_parser> p;
  record_sink out;
  uint32_t seq[2] = {100, 900};
  tcp_fixture() { p = make_dns_stream_parser(opts, counters); }
  void reset() { p = make_dns_stream_parser(opts, counters); }
  void send(direction d, const std::string& s, size_t chunk = 0) {
    const size_t step = chunk ? chunk : s.size();
    for (size_t i = 0; i < s.size(); i += step) {
      const size_t n = std::min(step, s.size() - i);
      p->deliver(d, reinterpret_cast<const uint8_t*>(s.data() + i), n, 3,
                 seq[static_cast<int>(d)], out);
      seq[static_cast<int>(d)] += static_cast<uint32_t>(n);
    }
  }
  void lose(direction d, size_t n) {
    p->gap(d, n);
    seq[static_cast<int>(d)] += static_cast<uint32_t>(n);
  }
};

std::string framed(const msg_builder& m) {
  std::string s;
  s.push_back(static_cast<char>(m.size() >> 8));
  s.push_back(static_cast<char>(m.size() & 0xff));
  return s + m.b;
}

msg_builder query(const std::string& name, unsigned id = 1) {
  msg_builder m;
  m.header(id, 0x0100, 1, 0).question(name, 1);
  return m;
}

} // namespace

TEST_CASE("TCP: several messages in one segment, sequence of each prefix") {
  tcp_fixture f;
  const std::string a = framed(query("a.example")), b = framed(query("b.example"));
  f.send(c2s, a + b);
  REQUIRE(f.out.size() == 2);
  CHECK(f.out[0].record.dns().domain() == "a.example");
  CHECK(f.out[0].record.dns().transport() == 1);
  CHECK(f.out[0].tcp_seq == 100);
  CHECK(f.out[1].record.dns().domain() == "b.example");
  CHECK(f.out[1].tcp_seq == 100 + a.size());
  CHECK(f.p->state() == parser_state::confirmed);
}

TEST_CASE("TCP: messages split anywhere, prefix included") {
  for (size_t chunk : {1, 2, 3, 5, 11}) {
    CAPTURE(chunk);
    tcp_fixture f;
    f.send(c2s, framed(query("a.example")) + framed(query("b.example")), chunk);
    f.send(s2c, framed(cname_response()), chunk);
    REQUIRE(f.out.size() == 5);
    CHECK(f.out[1].record.dns().domain() == "b.example");
    CHECK(f.out[1].tcp_seq == 100 + 2 + query("a.example").size());
    CHECK(f.out[2].record.dns().rdata_text() == "web.example.net");
    CHECK(f.out[4].record.dns().rdata_text() == "2001:db8::1");
  }
}

TEST_CASE("TCP: a message longer than max_buffered is skipped, framing kept") {
  tcp_fixture f;
  f.opts.max_buffered = 40;
  f.reset();
  msg_builder big;
  big.header(1, 0x8180, 1, 1).question("big.example", 16);
  big.ptr(12).rr(16, 1, 51).u8(50).raw(std::string(50, 'x'));
  f.send(s2c, framed(query("first")) + framed(big) + framed(query("after")), 4);
  REQUIRE(f.out.size() == 2);
  CHECK(f.out[1].record.dns().domain() == "after");
  CHECK(f.counters.limit_hits == 1);
}

TEST_CASE("TCP: a gap inside a message drops it; a gap across messages stops the side") {
  tcp_fixture f;
  const std::string a = framed(query("a.example"));
  f.send(c2s, a.substr(0, 10));
  f.lose(c2s, a.size() - 10);
  f.send(c2s, framed(query("b.example")));
  REQUIRE(f.out.size() == 1);
  CHECK(f.out[0].record.dns().domain() == "b.example");
  f.lose(c2s, 5);
  f.send(c2s, framed(query("c.example")));
  CHECK(f.out.size() == 1);
  CHECK(f.counters.gaps == 2);
  f.send(s2c, framed(query("d.example")));
  CHECK(f.out.size() == 2);
  f.lose(s2c, 3);
  CHECK(f.p->state() == parser_state::done);
}

TEST_CASE("TCP: a first message that is not DNS detaches the parser") {
  tcp_fixture f;
  f.send(c2s, std::string("\x00\x04junk", 6));
  CHECK(f.p->state() == parser_state::violated);
  f.send(c2s, framed(query("late.example")));
  CHECK(f.out.empty());
}

TEST_CASE("probe: strict on other ports") {
  auto probe = [](const std::string& s) {
    return dns_probe(reinterpret_cast<const uint8_t*>(s.data()), s.size(), c2s);
  };
  CHECK(probe(query("www.example.com").b));
  CHECK(probe(cname_response().b));
  CHECK(probe(framed(query("www.example.com"))));
  CHECK(probe(framed(query("x.y")) + framed(query("z"))));
  CHECK_FALSE(probe(query("www.example.com").b + "trailing"));
  CHECK_FALSE(probe("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"));
  CHECK_FALSE(probe(std::string(64, '\0')));
  CHECK_FALSE(probe(std::string(12, '\x01')));
  msg_builder bad_class;
  bad_class.header(1, 0x0100, 1, 0).question("a.example", 1, 77);
  CHECK_FALSE(probe(bad_class.b));
  msg_builder loop;
  loop.header(1, 0x0100, 1, 0).ptr(12).u16(1).u16(1);
  CHECK_FALSE(probe(loop.b));
  msg_builder query_with_answer;
  query_with_answer.header(1, 0x0100, 1, 1).question("a", 1).ptr(12).rr(1, 1, 4).u32(1);
  CHECK_FALSE(probe(query_with_answer.b));
  msg_builder nbns; // NBNS name query for WORKGROUP<1d>-style encoded name
  nbns.header(0xe6a1, 0x0110, 1, 0).question("FHFAEBEECACACACACACACACACACACAAA", 32);
  CHECK_FALSE(probe(nbns.b));
  // A simple pseudo-random byte soup never looks like DNS.
  uint32_t x = 12345;
  int hits = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string s;
    for (int k = 0; k < 40; ++k) {
      x = x * 1103515245u + 12345u;
      s.push_back(static_cast<char>(x >> 16));
    }
    hits += probe(s) ? 1 : 0;
  }
  CHECK(hits == 0);
  CHECK_FALSE(dns_probe(nullptr, 0, c2s));
}

TEST_CASE("registry entry") {
  const protocol_entry e = dns_protocol_entry();
  CHECK(e.id == app_protocol::dns);
  CHECK(std::string(e.name) == "dns");
  CHECK((e.make_stream != nullptr));
  CHECK((e.make_datagram != nullptr));
  CHECK(e.udp_ports == std::vector<uint16_t>{53, 5353, 5355});
  CHECK(e.tcp_ports == std::vector<uint16_t>{53});
}
