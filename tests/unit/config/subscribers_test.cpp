// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <string>

#include "core/subscribers.hpp"

using namespace metaprobe;

namespace {

ip_address ip(const char* text) {
  auto a = parse_ip_address(text);
  REQUIRE(a.has_value());
  return *a;
}

std::string error_of(const std::string& text) {
  try {
    subscriber_map::parse(text, "subs.txt");
  } catch (const config_error& e) {
    return e.what();
  }
  FAIL("expected a config_error");
  return {};
}

} // namespace

TEST_CASE("address parsing and text") {
  CHECK(ip("10.0.0.1").family == 4);
  CHECK(ip("2001:db8::1").family == 6);
  CHECK(ip_address_text(ip("10.0.0.1")) == "10.0.0.1");
  CHECK(ip_address_text(ip("2001:0db8:0:0::1")) == "2001:db8::1");
  CHECK_FALSE(parse_ip_address("10.0.0"));
  CHECK_FALSE(parse_ip_address("10.0.0.256"));
  CHECK_FALSE(parse_ip_address("[::1]"));
  CHECK_FALSE(parse_ip_address(""));
  CHECK(ip_address_text(ip_address{}).empty());
}

TEST_CASE("a good subscribers file") {
  auto m = subscriber_map::parse("# subscribers\n"
                                 "10.0.0.1 alice\n"
                                 "\n"
                                 "  10.0.0.2\tbob   # trailing comment\n"
                                 "2001:db8::10 carol#1\r\n"
                                 "::ffff:10.0.0.3 mapped\n",
                                 "subs.txt");
  CHECK(m.size() == 4);
  CHECK(m.login_for(ip("10.0.0.1")) == "alice");
  CHECK(m.login_for(ip("10.0.0.2")) == "bob");
  CHECK(m.login_for(ip("2001:db8::10")) == "carol#1");
  CHECK(m.login_for(ip("10.0.0.4")).empty());
  // exact match only: the IPv4-mapped IPv6 form is its own entry
  CHECK(m.login_for(ip("10.0.0.3")).empty());
  CHECK(m.login_for(ip("::ffff:10.0.0.3")) == "mapped");
  CHECK(m.login_for(ip_address{}).empty());
}

TEST_CASE("bytes past an IPv4 address never matter") {
  auto m = subscriber_map::parse("192.0.2.7 dave\n", "subs.txt");
  ip_address a = ip("192.0.2.7");
  a.bytes[10] = 0xaa; // garbage a producer might leave
  CHECK(m.login_for(a) == "dave");
}

TEST_CASE("bad subscriber lines name file and line") {
  CHECK(error_of("10.0.0.1 alice\n10.0.0.2\n") ==
        "subs.txt:2: expected `ip login`, got '10.0.0.2'");
  CHECK(error_of("10.0.0.1 alice extra\n") ==
        "subs.txt:1: expected `ip login`, got '10.0.0.1 alice extra'");
  CHECK(error_of("\n\n10.0.0.300 alice\n") ==
        "subs.txt:3: bad address '10.0.0.300' (expected an IPv4 or IPv6 address)");
  CHECK(error_of("10.0.0.1 alice\n10.0.0.1 bob\n") ==
        "subs.txt:2: address 10.0.0.1 listed twice (first on line 1)");
  CHECK(error_of("10.0.0.1 " + std::string(300, 'x') + "\n").find("login longer than 256") !=
        std::string::npos);
  CHECK(error_of("10.0.0.1 al\x01ice\n").find("control character in login") != std::string::npos);
}

TEST_CASE("subscribers file on disk") {
  char tmpl[] = "/tmp/mp_subs_test_XXXXXX";
  int fd = mkstemp(tmpl);
  REQUIRE(fd >= 0);
  std::string text = "198.51.100.1 erin\n";
  REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  close(fd);
  auto m = subscriber_map::load(tmpl);
  CHECK(m.login_for(ip("198.51.100.1")) == "erin");
  std::remove(tmpl);

  try {
    subscriber_map::load("/nonexistent-dir/subs.txt");
    FAIL("expected a config_error");
  } catch (const config_error& e) {
    CHECK(std::string(e.what()) ==
          "cannot open subscribers file '/nonexistent-dir/subs.txt': No such file or directory");
  }
}

TEST_CASE("programmatic add replaces") {
  subscriber_map m;
  m.add(ip("10.1.1.1"), "x");
  m.add(ip("10.1.1.1"), "y");
  CHECK(m.size() == 1);
  CHECK(m.login_for(ip("10.1.1.1")) == "y");
}
