// SPDX-License-Identifier: Apache-2.0
// Unit tests of the FTP control-channel parser.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "parsers/ftp/ftp_message.hpp"
#include "parsers/ftp/ftp_parser.hpp"

using namespace metaprobe;

namespace {

constexpr auto c2s = direction::client_to_server;
constexpr auto s2c = direction::server_to_client;

struct fixture {
  parser_options opts;
  parser_counters counters;
  std::unique_ptr<ftp_parser> p;
  record_sink out;
  uint64_t ts = 1;

  fixture() { reset(); }
  void reset() { p = std::make_unique<ftp_parser>(opts, counters); }
  void send(direction d, const std::string& data, size_t chunk = 0) {
    const size_t step = chunk ? chunk : data.size();
    for (size_t i = 0; i < data.size(); i += step) {
      const size_t n = std::min(step, data.size() - i);
      p->deliver(d, reinterpret_cast<const uint8_t*>(data.data() + i), n, ++ts, 0, out);
    }
  }
  // Command then reply, as on the wire.
  void exchange(const std::string& cmd, const std::string& reply, size_t chunk = 0) {
    send(c2s, cmd, chunk);
    send(s2c, reply, chunk);
  }
  const v1::Ftp& ftp(size_t i) const { return out.at(i).record.ftp(); }
};

} // namespace

TEST_CASE("ftp syntax helpers") {
  ftp::command_line c;
  CHECK(ftp::parse_command("USER anonymous", c));
  CHECK(c.id == ftp::command_id::user);
  CHECK(c.arg == "anonymous");
  CHECK(ftp::parse_command("pasv", c));
  CHECK(c.id == ftp::command_id::pasv);
  CHECK(c.arg.empty());
  CHECK(ftp::parse_command("PASS  secret ", c));
  CHECK(c.arg == " secret");
  CHECK_FALSE(ftp::parse_command("220 hello", c));
  CHECK_FALSE(ftp::parse_command("TOOLONG x", c));

  ftp::reply_line r;
  CHECK(ftp::parse_reply("220-Welcome", r));
  CHECK(r.code == 220);
  CHECK(r.more);
  CHECK(r.text == "Welcome");
  CHECK(ftp::parse_reply("230", r));
  CHECK_FALSE(r.more);
  CHECK_FALSE(ftp::parse_reply("2200 x", r));
  CHECK_FALSE(ftp::parse_reply("USER x", r));

  ftp::endpoint e;
  REQUIRE(ftp::parse_port_arg("192,168,1,2,100,85", e));
  CHECK(e.family == 4);
  CHECK(e.addr[0] == 192);
  CHECK(e.addr[3] == 2);
  CHECK(e.port == 25685);
  CHECK_FALSE(ftp::parse_port_arg("192,168,1,2,100", e));
  CHECK_FALSE(ftp::parse_port_arg("192,168,1,256,100,1", e));
  REQUIRE(ftp::parse_227("Entering Passive Mode (90,130,70,73,95,203).", e));
  CHECK(e.port == 24523);
  CHECK(e.addr[0] == 90);
  REQUIRE(ftp::parse_227("=10,220,50,76,64,155", e));
  CHECK(e.port == 16539);
  REQUIRE(ftp::parse_229("Entering Extended Passive Mode (|||6446|)", e));
  CHECK(e.family == 0);
  CHECK(e.port == 6446);
  CHECK_FALSE(ftp::parse_229("Entering Extended Passive Mode (||6446|)", e));
  REQUIRE(ftp::parse_eprt_arg("|2|2a00:d40:1:3:192:12:193:11|50123|", e));
  CHECK(e.family == 6);
  CHECK(e.addr[0] == 0x2a);
  CHECK(e.addr[15] == 0x11);
  CHECK(e.port == 50123);
  REQUIRE(ftp::parse_eprt_arg("|1|132.235.1.2|6275|", e));
  CHECK(e.family == 4);
  CHECK_FALSE(ftp::parse_eprt_arg("|3|1.2.3.4|5|", e));
  CHECK_FALSE(ftp::parse_eprt_arg("|1|1.2.3|5|", e));

  std::array<uint8_t, 16> a{};
  REQUIRE(ftp::parse_ipv6("::ffff:1.2.3.4", a));
  CHECK(a[10] == 0xff);
  CHECK(a[12] == 1);
  CHECK(a[15] == 4);
  REQUIRE(ftp::parse_ipv6("2001:db8::1", a));
  CHECK(a[0] == 0x20);
  CHECK(a[15] == 1);
  REQUIRE(ftp::parse_ipv6("::", a));
  CHECK_FALSE(ftp::parse_ipv6("1::2::3", a));
  CHECK_FALSE(ftp::parse_ipv6("1:2:3:4:5:6:7:8:9", a));
  CHECK_FALSE(ftp::parse_ipv6("12345::", a));
  CHECK_FALSE(ftp::parse_ipv6("1:", a));

  const std::string g = "220 (vsFTPd 3.0.3)\r\n";
  CHECK(ftp_probe(reinterpret_cast<const uint8_t*>(g.data()), g.size(), s2c));
  const std::string smtp = "220 mail.example.com ESMTP\r\n";
  CHECK_FALSE(ftp_probe(reinterpret_cast<const uint8_t*>(smtp.data()), smtp.size(), s2c));
}

TEST_CASE("ftp session: login, passive and active data connections") {
  for (size_t chunk : {1, 3, 0}) {
    CAPTURE(chunk);
    fixture f;
    f.send(s2c, "220 (vsFTPd 3.0.3)\r\n", chunk);
    f.exchange("USER anonymous\r\n", "331 Please specify the password.\r\n", chunk);
    CHECK(f.out.empty());
    f.exchange("PASS NcFTP@\r\n", "230 Login successful.\r\n", chunk);
    REQUIRE(f.out.size() == 1);
    CHECK(f.ftp(0).server_name() == "(vsFTPd 3.0.3)");
    CHECK(f.ftp(0).user() == "anonymous");
    CHECK(f.ftp(0).password() == "NcFTP@");
    CHECK(f.ftp(0).mode() == 0);
    CHECK(f.ftp(0).result_code() == 230);
    CHECK(f.out[0].dir == c2s);
    CHECK_FALSE(f.out[0].expect.valid()); // a login announces no connection

    f.exchange("FEAT\r\n", "211-Features:\r\n EPRT\r\n EPSV\r\n211 End\r\n", chunk);
    f.exchange("PASV\r\n", "227 Entering Passive Mode (90,130,70,73,100,85).\r\n", chunk);
    REQUIRE(f.out.size() == 2);
    CHECK(f.ftp(1).mode() == 1);
    CHECK(f.ftp(1).result_code() == 227);
    CHECK(f.ftp(1).user() == "anonymous");
    CHECK(f.p->data_endpoint().valid);
    CHECK(f.p->data_endpoint().port == 25685);
    CHECK(f.p->data_endpoint_mode() == 1);
    // The passive endpoint travels with the record to the correlator.
    const expected_connection& pasv = f.out[1].expect;
    REQUIRE(pasv.valid());
    CHECK(pasv.mode == 1);
    CHECK(pasv.server_port == 25685);
    CHECK(pasv.server.family == 4);
    CHECK(pasv.server == ip_address::v4(std::array<uint8_t, 4>{90, 130, 70, 73}.data()));

    f.exchange("PORT 192,168,1,212,7,208\r\n", "200 PORT command successful.\r\n", chunk);
    REQUIRE(f.out.size() == 3);
    CHECK(f.ftp(2).mode() == 0);
    CHECK(f.ftp(2).result_code() == 200);
    CHECK(f.p->data_endpoint().port == 2000);
    CHECK(f.p->data_endpoint_mode() == 0);
    const expected_connection& port = f.out[2].expect;
    REQUIRE(port.valid());
    CHECK(port.mode == 0);
    CHECK(port.server_port == 2000);
    CHECK(port.server == ip_address::v4(std::array<uint8_t, 4>{192, 168, 1, 212}.data()));

    f.exchange("EPSV\r\n", "229 Entering Extended Passive Mode (|||6446|)\r\n", chunk);
    f.exchange("EPRT |2|2a00:d40::11|50123|\r\n", "200 EPRT ok\r\n", chunk);
    REQUIRE(f.out.size() == 5);
    CHECK(f.ftp(3).mode() == 1);
    CHECK(f.ftp(4).mode() == 0);
    CHECK(f.p->data_endpoint().family == 6);
    // EPSV names only the port: family 0, the record's destination.
    CHECK(f.out[3].expect.valid());
    CHECK(f.out[3].expect.server.family == 0);
    CHECK(f.out[3].expect.server_port == 6446);
    CHECK(f.out[3].expect.mode == 1);
    CHECK(f.out[4].expect.server.family == 6);
    CHECK(f.out[4].expect.server_port == 50123);
    CHECK(f.out[4].expect.server.bytes[0] == 0x2a);
    CHECK(f.out[4].expect.server.bytes[15] == 0x11);
    // RETR with a preliminary reply does not disturb the pairing.
    f.exchange("RETR a\r\n", "150 Opening\r\n226 Done\r\n", chunk);
    f.exchange("PASV\r\n", "227 =10,0,0,1,0,21\r\n", chunk);
    REQUIRE(f.out.size() == 6);
    CHECK(f.ftp(5).result_code() == 227);
    CHECK(f.p->state() == parser_state::confirmed);
  }
}

TEST_CASE("ftp data connections refused or unparsable announce nothing") {
  fixture f;
  f.send(s2c, "220 FTP ready\r\n");
  f.exchange("PORT 10,0,0,1,4,1\r\n", "500 Illegal PORT command.\r\n");
  f.exchange("PASV\r\n", "227 Entering Passive Mode.\r\n"); // no address in it
  f.exchange("EPSV\r\n", "229 Entering Extended Passive Mode (|||0|)\r\n");
  f.exchange("PASV\r\n", "425 Can't open passive connection.\r\n");
  REQUIRE(f.out.size() == 4);
  for (const auto& r : f.out)
    CHECK_FALSE(r.expect.valid());
  CHECK(f.ftp(0).result_code() == 500);
  CHECK(f.ftp(3).result_code() == 425);
}

TEST_CASE("ftp failed logins") {
  fixture f;
  f.send(s2c, "220-multi\r\n220 line greeting\r\n");
  f.exchange("USER hello\r\n", "530 This FTP server is anonymous only.\r\n");
  f.exchange("SYST\r\n", "530 Please login with USER and PASS.\r\n");
  REQUIRE(f.out.size() == 1);
  CHECK(f.ftp(0).server_name() == "multi");
  CHECK(f.ftp(0).user() == "hello");
  CHECK(f.ftp(0).password() == "");
  CHECK(f.ftp(0).result_code() == 530);
  f.exchange("USER bob\r\n", "331 ok\r\n");
  f.exchange("PASS wrong\r\n", "530 Login incorrect.\r\n");
  REQUIRE(f.out.size() == 2);
  CHECK(f.ftp(1).user() == "bob");
  CHECK(f.ftp(1).password() == "wrong");
  // USER clears the previous password.
  f.exchange("USER carol\r\n", "230 no password needed\r\n");
  REQUIRE(f.out.size() == 3);
  CHECK(f.ftp(2).password() == "");
  CHECK(f.ftp(2).result_code() == 230);
}

TEST_CASE("ftp HOST names the server; pipelined commands pair in order") {
  fixture f;
  f.send(s2c, "220 greeting\r\n");
  f.send(c2s, "HOST ftp.example.com\r\nUSER u\r\nPASS p\r\n");
  f.send(s2c, "220 host ok\r\n331 need password\r\n230 ok\r\n");
  REQUIRE(f.out.size() == 1);
  CHECK(f.ftp(0).server_name() == "ftp.example.com");
  CHECK(f.ftp(0).result_code() == 230);
}

TEST_CASE("ftp roles from the first line (capture starts reversed)") {
  fixture f;
  f.send(c2s, "220 server speaks first here\r\n"); // the flow's "client" is the server
  f.send(s2c, "USER x\r\n");
  f.send(c2s, "530 no\r\n");
  REQUIRE(f.out.size() == 1);
  CHECK(f.out[0].dir == s2c);
  CHECK(f.ftp(0).user() == "x");
}

TEST_CASE("ftp AUTH TLS: records skipped, clear text after TLS ends") {
  fixture f;
  f.send(s2c, "220 \"Authorized users only\"\r\n");
  f.exchange("AUTH TLS\r\n", "234 Proceed with negotiation.\r\n");
  // TLS records both ways, split oddly; the PASS inside is invisible.
  const std::string hello = std::string("\x16\x03\x01\x00\x05", 5) + "hello";
  const std::string app = std::string("\x17\x03\x03\x00\x08", 5) + "PASS abc";
  f.send(c2s, hello + app, 3);
  f.send(s2c, std::string("\x16\x03\x03\x00\x02", 5) + "ok" + app);
  CHECK(f.out.empty());
  // Back to clear text (TLS shut down / CCC).
  f.exchange("PASV\r\n", "227 Entering Passive Mode (10,220,50,76,64,155).\r\n", 2);
  REQUIRE(f.out.size() == 1);
  CHECK(f.ftp(0).mode() == 1);
  CHECK(f.ftp(0).result_code() == 227);
  CHECK(f.ftp(0).server_name() == "\"Authorized users only\"");

  // A gap inside TLS on both sides: nothing more to parse.
  fixture g;
  g.exchange("AUTH TLS\r\n", "234 go\r\n");
  g.send(c2s, std::string("\x16\x03\x01\x00\x10", 5));
  g.send(s2c, std::string("\x16\x03\x01\x00\x10", 5));
  g.p->gap(c2s, 100);
  CHECK(g.p->state() != parser_state::done);
  g.p->gap(s2c, 100);
  CHECK(g.p->state() == parser_state::done);
}

TEST_CASE("ftp malformed input") {
  fixture f;
  f.send(c2s, "\x01\x02\x03 binary junk\r\n");
  CHECK(f.p->state() == parser_state::violated);
  CHECK(f.counters.violations == 1);

  fixture g;
  g.send(s2c, "220 ok\r\n");
  g.send(s2c, "garbage line\r\n"); // after confirmation: skipped
  g.exchange("USER a\r\n", "530 no\r\n");
  CHECK(g.out.size() == 1);
  // A gap drops the pending commands: the next reply pairs with nothing.
  g.send(c2s, "PASS x\r\n");
  g.p->gap(s2c, 10);
  g.send(s2c, "230 ok\r\n");
  CHECK(g.out.size() == 1);
  g.exchange("PASV\r\n", "227 (1,2,3,4,5,6)\r\n");
  CHECK(g.out.size() == 2);
}

TEST_CASE("ftp limits") {
  fixture f;
  f.opts.max_line = 16;
  f.opts.max_field = 4;
  f.opts.max_records_per_flow = 2;
  f.reset();
  f.send(s2c, "220 ok\r\n");
  f.exchange("USER " + std::string(100, 'u') + "\r\n", "530 no\r\n");
  REQUIRE(f.out.size() == 1);
  CHECK(f.ftp(0).user() == "uuuu");
  CHECK(f.counters.limit_hits >= 1);
  CHECK(f.counters.truncated_fields >= 1);
  f.exchange("PASV\r\n", "227 (1,2,3,4,5,6)\r\n");
  f.exchange("PASV\r\n", "227 (1,2,3,4,5,6)\r\n");
  CHECK(f.out.size() == 2);

  fixture g;
  g.send(s2c, "220 ok\r\n");
  for (size_t i = 0; i < ftp_parser::pending_cap + 3; ++i)
    g.send(c2s, "NOOP\r\n");
  CHECK(g.counters.limit_hits == 3);
}
