// SPDX-License-Identifier: Apache-2.0
// Unit tests of the XMPP stream parser.
#include <doctest/doctest.h>

#include <string>

#include "parsers/xmpp/xmpp_parser.hpp"

using namespace metaprobe;

namespace {

constexpr auto c2s = direction::client_to_server;
constexpr auto s2c = direction::server_to_client;

struct fixture {
  parser_options opts;
  parser_counters counters;
  std::unique_ptr<stream_parser> p;
  record_sink out;

  fixture() { reset(); }
  void reset() {
    p = make_xmpp_parser(opts, counters);
    out.clear();
  }
  void send(direction d, const std::string& data, size_t chunk = 0) {
    const size_t step = chunk ? chunk : data.size();
    for (size_t i = 0; i < data.size(); i += step) {
      const size_t n = std::min(step, data.size() - i);
      p->deliver(d, reinterpret_cast<const uint8_t*>(data.data() + i), n, 7, 0, out);
    }
  }
  const v1::Im& im(size_t i) const { return out.at(i).record.im(); }
};

const std::string client_open =
    "<?xml version='1.0' ?><stream:stream to='example.com' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
const std::string server_open =
    "<?xml version='1.0'?><stream:stream id='1' from='example.com' version='1.0' "
    "xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client'>";

} // namespace

TEST_CASE("SASL PLAIN, bind, messages; split anywhere") {
  for (size_t chunk : {0, 1, 13}) {
    CAPTURE(chunk);
    fixture f;
    f.send(c2s, client_open, chunk);
    f.send(s2c, server_open + "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                "<mechanism>PLAIN</mechanism></mechanisms></stream:features>", chunk);
    // base64 of "\0juliet\0r0m30"
    f.send(c2s, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                "AGp1bGlldAByMG0zMA==</auth>", chunk);
    f.send(s2c, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>", chunk);
    f.send(c2s, client_open, chunk);
    f.send(s2c, server_open + "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                "</stream:features>", chunk);
    f.send(c2s, "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                "<resource>balcony</resource></bind></iq>", chunk);
    f.send(s2c, "<iq type='result' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                "<jid>juliet@example.com/balcony</jid></bind></iq>", chunk);
    f.send(c2s, "<message type='chat' to='romeo@example.net' id='m1'><body>a &lt; b</body>"
                "</message>", chunk);
    f.send(s2c, "<message from='romeo@example.net/x' to='juliet@example.com/balcony'>"
                "<body>hi</body></message>", chunk);
    f.send(c2s, "<presence to='room@conf.example.com/j'/><message type='error'/>", chunk);
    f.send(c2s, "</stream:stream>", chunk);
    f.p->finish(9, f.out);
    REQUIRE(f.out.size() == 3);
    CHECK(f.im(0).im_login() == "juliet");
    CHECK(f.im(0).im_passw() == "r0m30");
    CHECK(f.im(0).im_screen_name() == "juliet@example.com/balcony");
    CHECK(f.im(0).im_protocol() == 7);
    CHECK(f.im(0).result_code() == 0);
    CHECK(f.out[0].dir == c2s);
    CHECK(f.im(1).im_receivers() == "romeo@example.net");
    CHECK(f.im(1).im_login() == "juliet");
    CHECK(f.out[1].dir == c2s);
    CHECK(f.im(2).im_receivers() == "juliet@example.com/balcony");
    CHECK(f.out[2].dir == s2c);
    CHECK(f.p->state() == parser_state::confirmed);
  }
}

TEST_CASE("DIGEST-MD5 failure and SCRAM user names") {
  fixture f;
  f.send(c2s, client_open);
  f.send(s2c, server_open);
  f.send(c2s, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'/>");
  f.send(s2c, "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>bm9uY2U9IjEi</challenge>");
  // base64 of username="tom",realm="x"
  f.send(c2s, "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
              "dXNlcm5hbWU9InRvbSIscmVhbG09IngiCg==</response>");
  f.send(s2c, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>");
  REQUIRE(f.out.size() == 1);
  CHECK(f.im(0).im_login() == "tom");
  CHECK(f.im(0).im_passw().empty());
  CHECK(f.im(0).result_code() == 1);

  fixture g;
  g.send(c2s, client_open);
  // base64 of "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
  g.send(c2s, "<auth xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\" mechanism=\"SCRAM-SHA-1\">"
              "biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdM</auth>");
  g.send(s2c, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>dj1ybUY5cHFWOFM3c3VBb1pXamE0ZEpSa0ZzS1E9</success>");
  g.p->finish(9, g.out); // authenticated, never bound
  REQUIRE(g.out.size() == 1);
  CHECK(g.im(0).im_login() == "user");
  CHECK(g.im(0).result_code() == 0);
}

TEST_CASE("legacy jabber:iq:auth") {
  fixture f;
  f.send(c2s, client_open);
  f.send(c2s, "<iq type='get' id='a0'><query xmlns='jabber:iq:auth'><username>bill</username>"
              "</query></iq>");
  f.send(s2c, "<iq type='result' id='a0'><query xmlns='jabber:iq:auth'><username/><password/>"
              "<resource/></query></iq>");
  CHECK(f.out.empty());
  f.send(c2s, "<iq type='set' id='a1'><query xmlns='jabber:iq:auth'><username>bill</username>"
              "<password>Calli0pe</password><resource>globe</resource></query></iq>");
  f.send(s2c, "<iq type='result' id='a1'/>");
  REQUIRE(f.out.size() == 1);
  CHECK(f.im(0).im_login() == "bill");
  CHECK(f.im(0).im_passw() == "Calli0pe");
  CHECK(f.im(0).im_screen_name() == "bill@example.com/globe");
  CHECK(f.im(0).result_code() == 0);
}

TEST_CASE("STARTTLS ends parsing; binary streams are violations") {
  fixture f;
  f.send(c2s, client_open);
  f.send(s2c, server_open + "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
              "<required/></starttls></stream:features>");
  f.send(c2s, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
  f.send(s2c, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
  CHECK(f.p->state() == parser_state::done);

  fixture g;
  g.send(c2s, std::string("WA\x01\x05\x00\x00\x1a\xf8\x05", 9));
  CHECK(g.p->state() == parser_state::violated);
}

TEST_CASE("mid-stream start, comments, CDATA, quotes with '>' and limits") {
  fixture f;
  f.send(s2c, "<!-- c --><message to='a@b' note='x>y'><body><![CDATA[<not a tag>]]></body></message>");
  REQUIRE(f.out.size() == 1);
  CHECK(f.im(0).im_receivers() == "a@b");

  fixture g;
  g.opts.max_buffered = 64;
  g.opts.max_field = 5;
  g.opts.max_records_per_flow = 1;
  g.reset();
  g.send(c2s, client_open);
  g.send(c2s, "<message to='" + std::string(100, 'x')); // one tag over the buffer: skipped
  g.send(c2s, "'/>");
  CHECK(g.counters.limit_hits == 1);
  CHECK(g.out.empty());
  g.send(c2s, "<message to='abcdefgh'/><message to='z'/>");
  REQUIRE(g.out.size() == 1);
  CHECK(g.im(0).im_receivers() == "abcde");
  CHECK(g.counters.truncated_fields == 2); // the stream domain and the receiver
  CHECK(g.counters.limit_hits == 2);
  // A gap drops the partial tag; the next stanza parses.
  g.reset();
  g.send(c2s, client_open + "<message to='q@r");
  g.p->gap(c2s, 10);
  g.send(c2s, "<presence/>");
  CHECK(g.p->state() == parser_state::confirmed);
}

TEST_CASE("xml_unescape and probe") {
  CHECK(xml_unescape("a&lt;b&gt;&amp;&quot;&apos;&#65;&#x42;") == "a<b>&\"'AB");
  CHECK(xml_unescape("&bogus; & &#xZZ;") == "&bogus; & &#xZZ;");
  CHECK(xml_unescape("&#233;") == "\xc3\xa9");
  auto probe = [](const std::string& s) {
    return xmpp_probe(reinterpret_cast<const uint8_t*>(s.data()), s.size(), c2s);
  };
  CHECK(probe("<?xml version='1.0'?><stream:stream to='x'>"));
  CHECK(probe("  <stream:stream to='x'>"));
  CHECK_FALSE(probe("<html>"));
  CHECK_FALSE(probe("GET / HTTP/1.1\r\n"));
}
