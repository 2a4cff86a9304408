// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/config.hpp"

using namespace metaprobe;

namespace {

// what() of the config_error `f` throws; fails the test if it throws none.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const config_error& e) {
    return e.what();
  }
  FAIL("expected a config_error");
  return {};
}

config parse(const std::string& text, const std::vector<std::string>& sets = {}) {
  return config::parse(text, "metaprobe.conf", sets);
}

std::string parse_error(const std::string& text, const std::vector<std::string>& sets = {}) {
  return error_of([&] { parse(text, sets); });
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

} // namespace

TEST_CASE("defaults without a file") {
  config c = config::from_overrides({});
  CHECK(c.integer("workers") == 1);
  CHECK(c.str("input").empty());
  CHECK(c.integer("snaplen") == 65535);
  CHECK(c.integer("batch_size") == 256);
  CHECK(c.integer("flow_max") == 0);
  CHECK(c.size("memory_budget") == 0);
  CHECK(c.seconds("flow_inactive_timeout") == 30);
  CHECK(c.seconds("flow_active_timeout") == 300);
  CHECK(c.seconds("tcp_close_linger") == 2);
  CHECK(c.size("tcp_max_ooo_bytes") == 65536);
  CHECK(c.seconds("ipfix_udp_template_timer") == 20);
  CHECK(c.integer("ipfix_mtu") == 1400);
  CHECK(c.seconds("netflow_timeout") == 30);
  CHECK(c.integer("dbg_log_mask") == 0);
  CHECK_FALSE(c.flag("http_parse_reply"));
  CHECK(c.endpoints("ipfix_udp_collectors").empty());
  CHECK(c.str("ajb_url_path") == "/var/dump/dpi");
  CHECK(c.size("ajb_url_fsize") == 100u << 20);
  CHECK(c.seconds("ajb_url_ftimeout") == 30);
  CHECK(c.seconds("ajb_dns_ftimeout") == 60); // minutes per the seed
  CHECK(c.str("ajb_save_url_format") ==
        "ts:prg:login:ipsrc:ipdst:host:path:ref:uagent:cookie:tphost:blockd:method");
  CHECK(c.fields("ajb_save_dns_format").size() == 14);
  CHECK(c.str("channel_endpoint") == "auto");
  CHECK(c.integer("publisher_block_ms") == -1);
  CHECK(c.integer("exporter_instances.dns") == 1);
  CHECK(c.str("log_level") == "info");
  CHECK(c.str("log_dir") == "./log");
  CHECK_FALSE(c.is_set("workers"));
  CHECK(c.origin("workers") == "default");
}

TEST_CASE("every schema default parses and every key has a doc and section") {
  for (const auto& k : config_schema()) {
    CAPTURE(k.name);
    CHECK_FALSE(k.doc.empty());
    CHECK_FALSE(k.section.empty());
    CHECK(find_key_spec(k.pattern ? k.name + "." + (k.suffixes.empty() ? "x" : k.suffixes[0])
                                  : k.name) == &k);
  }
  CHECK(find_key_spec("nope") == nullptr);
  CHECK(find_key_spec("exporter_instances") == nullptr);
  CHECK(find_key_spec("exporter_instances.bogus") == nullptr);
}

TEST_CASE("comments, blank lines, whitespace and quotes") {
  config c = parse("# whole-line comment\n"
                   "\n"
                   "   \t\n"
                   "  workers   =   4   # trailing comment\n"
                   "\t# indented comment\n"
                   "bpf_filter=tcp#not-a-comment\n"
                   "dpdk_eal_args = \"--no-huge  --vdev=x # kept\"   # comment\n"
                   "ipfix_dev='em1'\r\n"
                   "log_dir = \n");
  CHECK(c.integer("workers") == 4);
  CHECK(c.str("bpf_filter") == "tcp#not-a-comment");
  CHECK(c.str("dpdk_eal_args") == "--no-huge  --vdev=x # kept");
  CHECK(c.str("ipfix_dev") == "em1");
  CHECK(c.str("log_dir").empty());
  CHECK(c.is_set("log_dir"));
  CHECK(c.is_set("workers"));
  CHECK(c.origin("workers") == "metaprobe.conf:4");
  CHECK_FALSE(c.is_set("snaplen"));
}

TEST_CASE("a UTF-8 byte-order mark is skipped") {
  config c = parse("\xEF\xBB\xBFworkers=3\n");
  CHECK(c.integer("workers") == 3);
}

TEST_CASE("unknown key names the line and suggests the nearest key") {
  CHECK(parse_error("workers=2\nipfix_udp_colectors=1.2.3.4:1500\n") ==
        "metaprobe.conf:2: key 'ipfix_udp_colectors': unknown key (did you mean "
        "'ipfix_udp_collectors'?)");
  CHECK(parse_error("Workers=2\n") ==
        "metaprobe.conf:1: key 'Workers': unknown key (did you mean 'workers'?)");
  CHECK(parse_error("completely_unrelated=1\n") ==
        "metaprobe.conf:1: key 'completely_unrelated': unknown key");
}

TEST_CASE("bad integer and out of range") {
  CHECK(parse_error("workers=abc\n") ==
        "metaprobe.conf:1: key 'workers': expected an integer 1..64, got 'abc'");
  CHECK(parse_error("\n\nworkers=65\n") ==
        "metaprobe.conf:3: key 'workers': expected an integer 1..64, got '65'");
  CHECK(contains(parse_error("workers=0\n"), "expected an integer 1..64, got '0'"));
  CHECK(contains(parse_error("workers=4x\n"), "got '4x'"));
  CHECK(contains(parse_error("workers=99999999999999999999999\n"), "expected an integer"));
  CHECK(contains(parse_error("ajb_save_dns=3\n"), "expected an integer 0..2"));
  CHECK(parse("ajb_save_url=-1\nworkers=+2\n").integer("ajb_save_url") == -1);
}

TEST_CASE("hex-or-decimal masks") {
  CHECK(parse("dbg_log_mask=0x80\n").integer("dbg_log_mask") == 0x80);
  CHECK(parse("dbg_log_mask=128\n").integer("dbg_log_mask") == 128);
  CHECK(parse("dbg_log_mask=0XfF\n").integer("dbg_log_mask") == 255);
  CHECK(contains(parse_error("dbg_log_mask=0x100000000\n"), "key 'dbg_log_mask'"));
  CHECK(contains(parse_error("dbg_log_mask=0xzz\n"), "got '0xzz'"));
  // hex only where the schema says mask
  CHECK(contains(parse_error("workers=0x2\n"), "expected an integer 1..64"));
}

TEST_CASE("booleans") {
  for (const char* t : {"1", "yes", "true", "on", "TRUE", "Yes"})
    CHECK(parse(std::string("http_parse_reply=") + t + "\n").flag("http_parse_reply"));
  for (const char* f : {"0", "no", "false", "off"})
    CHECK_FALSE(parse(std::string("http_parse_reply=") + f + "\n").flag("http_parse_reply"));
  CHECK(parse_error("ssl_parse_reply=maybe\n") ==
        "metaprobe.conf:1: key 'ssl_parse_reply': expected a boolean (0/1, yes/no, "
        "true/false, on/off), got 'maybe'");
  CHECK(parse("http_parse_reply=yes\n").integer("http_parse_reply") == 1);
  CHECK(parse("ajb_save_url=-1\n").flag("ajb_save_url"));
}

TEST_CASE("durations") {
  CHECK(parse("flow_inactive_timeout=1.5\n").seconds("flow_inactive_timeout") == 1.5);
  CHECK(parse("flow_inactive_timeout=1500ms\n").seconds("flow_inactive_timeout") == 1.5);
  CHECK(parse("flow_active_timeout=5m\n").seconds("flow_active_timeout") == 300);
  CHECK(parse("flow_active_timeout=1h\n").seconds("flow_active_timeout") == 3600);
  CHECK(parse("flow_active_timeout=90 s\n").seconds("flow_active_timeout") == 90);
  // ajb_dns_ftimeout counts minutes when bare, like the seed
  CHECK(parse("ajb_dns_ftimeout=5\n").seconds("ajb_dns_ftimeout") == 300);
  CHECK(parse("ajb_dns_ftimeout=90s\n").seconds("ajb_dns_ftimeout") == 90);
  CHECK(contains(parse_error("ajb_dns_ftimeout=soon\n"), "a bare number counts minutes"));
  CHECK(contains(parse_error("tcp_close_linger=-1\n"), "expected a duration 0..300 s"));
  CHECK(contains(parse_error("frag_timeout=0\n"), "expected a duration 1..3600 s"));
  CHECK(contains(parse_error("frag_timeout=3days\n"), "got '3days'"));
}

TEST_CASE("sizes") {
  CHECK(parse("ajb_url_fsize=64K\n").size("ajb_url_fsize") == 65536);
  CHECK(parse("ajb_url_fsize=1M\n").size("ajb_url_fsize") == 1u << 20);
  CHECK(parse("ajb_url_fsize=2G\n").size("ajb_url_fsize") == uint64_t{2} << 30);
  CHECK(parse("ajb_url_fsize=10kb\n").size("ajb_url_fsize") == 10240);
  CHECK(parse("ajb_url_fsize=4096\n").size("ajb_url_fsize") == 4096);
  CHECK(parse("ajb_dns_bufsize=0\n").size("ajb_dns_bufsize") == 0);
  CHECK(contains(parse_error("ajb_url_fsize=12Q\n"), "expected a size 1K..1T bytes"));
  CHECK(contains(parse_error("ajb_url_fsize=100\n"), "got '100'"));          // below 1K
  CHECK(contains(parse_error("ajb_url_fsize=99999999999T\n"), "expected a size"));
  // integer() of a size key gives its bytes
  CHECK(parse("parser_max_line=16K\n").integer("parser_max_line") == 16384);
}

TEST_CASE("endpoint lists") {
  config c = parse("ipfix_udp_collectors = 1.2.3.4:1500, [2001:db8::1]:4739 ,collector.example:9\n");
  auto eps = c.endpoints("ipfix_udp_collectors");
  REQUIRE(eps.size() == 3);
  CHECK(eps[0].host == "1.2.3.4");
  CHECK(eps[0].port == 1500);
  CHECK(eps[0].text() == "1.2.3.4:1500");
  CHECK(eps[1].host == "2001:db8::1");
  CHECK(eps[1].port == 4739);
  CHECK(eps[1].text() == "[2001:db8::1]:4739");
  CHECK(eps[2].host == "collector.example");
  CHECK(eps[2].text() == "collector.example:9");

  CHECK(parse_error("ipfix_udp_collectors=1.2.3.4\n") ==
        "metaprobe.conf:1: key 'ipfix_udp_collectors': bad address '1.2.3.4' (expected "
        "host:port)");
  CHECK(contains(parse_error("ipfix_tcp_collectors=1.2.3.4:0\n"), "bad port in '1.2.3.4:0'"));
  CHECK(contains(parse_error("ipfix_tcp_collectors=1.2.3.4:65536\n"), "expected 1..65535"));
  CHECK(contains(parse_error("ipfix_tcp_collectors=1.2.3.4:http\n"), "bad port"));
  CHECK(contains(parse_error("ipfix_tcp_collectors=300.1.1.1:5\n"), "not an IPv4 address"));
  CHECK(contains(parse_error("ipfix_tcp_collectors=2001:db8::1:5\n"), "write IPv6 as [address]:port"));
  CHECK(contains(parse_error("ipfix_tcp_collectors=[zz::1]:5\n"), "not an IPv6 address"));
  CHECK(contains(parse_error("ipfix_tcp_collectors=[::1]5\n"), "expected [IPv6]:port"));
  CHECK(contains(parse_error("ipfix_tcp_collectors=bad_host!:5\n"), "not a valid hostname"));
  CHECK(contains(parse_error("ipfix_tcp_collectors=:5\n"), "bad address ':5'"));
  CHECK(contains(parse_error("ipfix_tcp_collectors=1.2.3.4:5,,1.2.3.5:6\n"), "empty address"));
  CHECK(parse("ipfix_tcp_collectors=\n").endpoints("ipfix_tcp_collectors").empty());
}

TEST_CASE("enumerations and checked strings") {
  CHECK(parse("log_level=DEBUG\n").str("log_level") == "debug");
  CHECK(parse_error("log_level=verbose\n") ==
        "metaprobe.conf:1: key 'log_level': expected one of trace, debug, info, warn, error, "
        "critical, off, got 'verbose'");
  CHECK(parse("input=pcap:/tmp/x.pcap\n").str("input") == "pcap:/tmp/x.pcap");
  CHECK(parse("input=iface:eth0\n").str("input") == "iface:eth0");
  CHECK(parse("input=dpdk\n").str("input") == "dpdk");
  CHECK(contains(parse_error("input=eth0\n"), "expected pcap:PATH, iface:NAME, afpacket:NAME or dpdk"));
  CHECK(contains(parse_error("input=pcap:\n"), "expected pcap:PATH"));
  CHECK(contains(parse_error("channel_endpoint=/tmp/x\n"),
                 "expected auto, ipc://PATH or tcp://HOST:PORT"));
  CHECK(parse("channel_endpoint=auto\n").str("channel_endpoint") == "auto");
  CHECK(parse("channel_endpoint=tcp://127.0.0.1:5550\n").str("channel_endpoint") ==
        "tcp://127.0.0.1:5550");
  CHECK(contains(parse_error("channel_endpoint=tcp://127.0.0.1\n"), "expected tcp://HOST:PORT"));
  CHECK(contains(parse_error("channel_endpoint=tcp://127.0.0.1:65530\n"), "PORT 1..65528"));
  CHECK(contains(parse_error("channel_endpoint=tcp://h:99999999999\n"), "expected tcp://HOST:PORT"));
  CHECK(contains(parse_error("control_listen=localhost:7300\n"), "expected auto, off, ipc://PATH or tcp://HOST:PORT"));
  CHECK(parse("control_listen=tcp://127.0.0.1:7300\n").str("control_listen") ==
        "tcp://127.0.0.1:7300");
}

TEST_CASE("tcp off loopback needs CURVE keys or allow_plaintext_tcp") {
  // loopback is fine in clear
  for (const char* ok : {"channel_endpoint=tcp://127.0.0.1:7400\n", "channel_endpoint=tcp://127.1.2.3:7400\n",
                         "channel_endpoint=tcp://[::1]:7400\n", "channel_endpoint=tcp://localhost:7400\n",
                         "control_listen=tcp://127.0.0.1:7300\n", "control_listen=tcp://::1:7300\n"})
    CHECK_NOTHROW(parse(ok));
  CHECK(parse_error("channel_endpoint=tcp://0.0.0.0:7400\n") ==
        "metaprobe.conf:1: key 'channel_endpoint': tcp://0.0.0.0:7400 is not a loopback address "
        "and would carry records in clear: set curve_keys (keys from metaprobe-keygen DIR) or, on "
        "a trusted network only, allow_plaintext_tcp=1");
  CHECK(contains(parse_error("control_listen=tcp://10.0.0.5:7300\n"),
                 "key 'control_listen': tcp://10.0.0.5:7300 is not a loopback address and would "
                 "carry control requests in clear"));
  CHECK(contains(parse_error("channel_endpoint=tcp://capture:7400\n"), "allow_plaintext_tcp=1"));
  CHECK(contains(parse_error("channel_endpoint=tcp://127.0.0.1.evil:7400\n"), "not a loopback"));
  CHECK(contains(parse_error("channel_endpoint=tcp://*:7400\n"), "not a loopback"));
  // the way out, either of them
  CHECK_NOTHROW(parse("channel_endpoint=tcp://0.0.0.0:7400\nallow_plaintext_tcp=1\n"));
  CHECK_NOTHROW(parse("channel_endpoint=tcp://0.0.0.0:7400\ncurve_keys=/etc/metaprobe/keys\n"));
  CHECK_NOTHROW(parse("control_listen=tcp://10.0.0.5:7300\n", {"allow_plaintext_tcp=yes"}));
  CHECK(loopback_host("127.0.0.1"));
  CHECK_FALSE(loopback_host("127.0.0"));
  CHECK_FALSE(loopback_host("128.0.0.1"));
}

TEST_CASE("text formats are checked against the kind's fields") {
  config c = parse("ajb_save_sip_format=ts:ssid:callid\n");
  CHECK(c.fields("ajb_save_sip_format") == std::vector<std::string>{"ts", "ssid", "callid"});
  std::string e = parse_error("ajb_save_url_format=ts:login:bogus:host\n");
  CHECK(contains(e, "metaprobe.conf:1: key 'ajb_save_url_format': unknown field 'bogus' in format "
                    "(valid fields: ts, prg, login,"));
  // a sip field is not a url field
  CHECK(contains(parse_error("ajb_save_url_format=ts:callid\n"), "unknown field 'callid'"));
  CHECK(contains(parse_error("ajb_save_dns_format=ts::host\n"), "empty field"));
  CHECK(contains(parse_error("ajb_save_dns_format=\n"), "expected colon-separated fields"));
}

TEST_CASE("pattern keys with a dotted suffix") {
  config c = parse("exporter_instances.dns=3\nexporter_instances.fullflow = 2\n");
  CHECK(c.integer("exporter_instances.dns") == 3);
  CHECK(c.integer("exporter_instances.fullflow") == 2);
  CHECK(c.integer("exporter_instances.meta") == 1);
  CHECK(c.is_set("exporter_instances.dns"));
  CHECK_FALSE(c.is_set("exporter_instances.meta"));
  CHECK(contains(parse_error("exporter_instances.dsn=2\n"),
                 "key 'exporter_instances.dsn': unknown exporter_instances suffix 'dsn' (expected "
                 "one of clickstream, meta, dns, fullflow, text)"));
  CHECK(contains(parse_error("exporter_instances=2\n"),
                 "needs a suffix: exporter_instances.<clickstream|meta|dns|fullflow|text>"));
  CHECK(contains(parse_error("exporter_instances.text=0\n"), "expected an integer 1..64"));
  CHECK_THROWS_AS(c.integer("exporter_instances.bogus"), std::logic_error);
}

TEST_CASE("missing file") {
  CHECK(error_of([] { config::load("/nonexistent-dir/x.conf"); }) ==
        "cannot open config file '/nonexistent-dir/x.conf': No such file or directory");
}

TEST_CASE("load reads a real file and applies overrides") {
  char tmpl[] = "/tmp/mp_config_test_XXXXXX";
  int fd = mkstemp(tmpl);
  REQUIRE(fd >= 0);
  std::string text = "workers=2\nipfix_udp_collectors=127.0.0.1:4739\n";
  REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  close(fd);
  config c = config::load(tmpl, {"workers=8"});
  CHECK(c.integer("workers") == 8);
  CHECK(c.origin("workers") == "--set workers=8");
  CHECK(c.endpoints("ipfix_udp_collectors").at(0).port == 4739);
  CHECK(c.origin("ipfix_udp_collectors") == std::string(tmpl) + ":2");
  std::remove(tmpl);
}

TEST_CASE("a key set twice is an error naming both lines") {
  CHECK(parse_error("workers=2\nsnaplen=100\nworkers=3\n") ==
        "metaprobe.conf:3: key 'workers': set twice (first on line 1); remove one");
}

TEST_CASE("--set overrides win and have their own errors") {
  config c = parse("workers=2\n", {"workers=4", "exporter_instances.meta=5", "bpf_filter = 'udp port 53'"});
  CHECK(c.integer("workers") == 4);
  CHECK(c.integer("exporter_instances.meta") == 5);
  CHECK(c.str("bpf_filter") == "udp port 53");
  CHECK(c.is_set("workers"));
  // several --set of one key: the last wins
  CHECK(parse("", {"workers=4", "workers=6"}).integer("workers") == 6);

  CHECK(parse_error("", {"workers=abc"}) ==
        "--set workers=abc: key 'workers': expected an integer 1..64, got 'abc'");
  CHECK(parse_error("", {"workers"}) == "--set workers: expected key=value");
  CHECK(parse_error("", {"=5"}) == "--set =5: expected key=value");
  CHECK(parse_error("", {"wokers=5"}) ==
        "--set wokers=5: key 'wokers': unknown key (did you mean 'workers'?)");
  CHECK(error_of([] { config::from_overrides({"snaplen=1"}); }) ==
        "--set snaplen=1: key 'snaplen': expected an integer 64..262144, got '1'");
}

TEST_CASE("syntax errors") {
  CHECK(parse_error("just some words\n") ==
        "metaprobe.conf:1: expected key=value, got 'just some words'");
  CHECK(contains(parse_error("bpf_filter=\"tcp\n"), "key 'bpf_filter': unterminated quote"));
  CHECK(contains(parse_error("bpf_filter=\"tcp\" port\n"), "unexpected text after quoted value"));
  CHECK(contains(parse_error("work ers=1\n"), "bad key name 'work ers'"));
  CHECK(contains(parse_error("=1\n"), "bad key name ''"));
  CHECK(contains(parse_error(std::string("bpf_filter=a\x01z\n")),
                 "control character in value 'a\\x01z'"));
}

TEST_CASE("all problems are reported together, nothing half-configured") {
  std::string e = parse_error("workers=abc\nsnaplen=1\nnope=1\n", {"batch_size=0"});
  CHECK(contains(e, "metaprobe.conf:1: key 'workers'"));
  CHECK(contains(e, "metaprobe.conf:2: key 'snaplen'"));
  CHECK(contains(e, "metaprobe.conf:3: key 'nope'"));
  CHECK(contains(e, "--set batch_size=0: key 'batch_size'"));
  CHECK(std::count(e.begin(), e.end(), '\n') == 3);
}

TEST_CASE("cross-key rule: an enabled text export needs a path") {
  CHECK(parse_error("ajb_save_url=1\najb_url_path=\n") ==
        "metaprobe.conf:2: key 'ajb_url_path': must not be empty when ajb_save_url is on");
  CHECK_NOTHROW(parse("ajb_save_url=0\najb_url_path=\n"));
}

TEST_CASE("getters: unknown keys and wrong types are programming errors") {
  config c = config::from_overrides({});
  CHECK_THROWS_AS(c.str("no_such_key"), std::logic_error);
  CHECK_THROWS_AS(c.is_set("no_such_key"), std::logic_error);
  CHECK_THROWS_AS(c.seconds("workers"), std::logic_error);
  CHECK_THROWS_AS(c.size("workers"), std::logic_error);
  CHECK_THROWS_AS(c.endpoints("workers"), std::logic_error);
  CHECK_THROWS_AS(c.integer("ipfix_udp_collectors"), std::logic_error);
  CHECK_THROWS_AS(c.flag("input"), std::logic_error);
  CHECK_THROWS_AS(c.fields("input"), std::logic_error);
  // config_error is not a logic_error: callers can tell them apart
  CHECK_FALSE(std::is_base_of<std::logic_error, config_error>::value);
  CHECK(std::is_base_of<std::runtime_error, config_error>::value);
}

TEST_CASE("effective() lists every key once, sorted, with current values") {
  config c = parse("workers=5\nexporter_instances.text=2\n");
  auto eff = c.effective();
  CHECK(std::is_sorted(eff.begin(), eff.end()));
  size_t expected = 0;
  for (const auto& k : config_schema())
    expected += k.pattern ? k.suffixes.size() : 1;
  CHECK(eff.size() == expected);
  auto find = [&](const std::string& k) {
    auto it = std::find_if(eff.begin(), eff.end(), [&](const auto& p) { return p.first == k; });
    REQUIRE(it != eff.end());
    return it->second;
  };
  CHECK(find("workers") == "5");
  CHECK(find("exporter_instances.text") == "2");
  CHECK(find("exporter_instances.dns") == "1");
  CHECK(find("ipfix_udp_template_timer") == "20");
}

TEST_CASE("config/metaprobe.conf loads cleanly and documents every key") {
  std::string path = std::string(METAPROBE_SOURCE_DIR) + "/config/metaprobe.conf";
  config c = config::load(path);
  std::string text = read_file(path);
  std::string docs = read_file(std::string(METAPROBE_SOURCE_DIR) + "/docs/configuration.md");
  REQUIRE_FALSE(text.empty());
  REQUIRE_FALSE(docs.empty());
  for (const auto& k : config_schema()) {
    CAPTURE(k.name);
    if (k.pattern) {
      for (const auto& s : k.suffixes) {
        CHECK(contains(text, k.name + "." + s + "="));
        CHECK(contains(docs, k.name));
      }
    } else {
      // as a setting or a commented-out setting
      bool mentioned = contains(text, "\n" + k.name + "=") ||
                       contains(text, "\n#" + k.name + "=") ||
                       contains(text, "\n# " + k.name + "=");
      CHECK(mentioned);
      CHECK(contains(docs, "`" + k.name + "`"));
    }
  }
}

TEST_CASE("config/metaprobe.conf sets every key to its default") {
  config file = config::load(std::string(METAPROBE_SOURCE_DIR) + "/config/metaprobe.conf");
  CHECK(file.effective() == config::from_overrides({}).effective());
  for (const auto& [key, value] : file.effective()) {
    CAPTURE(key);
    CHECK(file.is_set(key));
  }
}

TEST_CASE("every example config in config/ loads") {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(METAPROBE_SOURCE_DIR) / "config";
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".conf")
      continue;
    CAPTURE(e.path().string());
    CHECK_NOTHROW(config::load(e.path().string()));
    ++n;
  }
  CHECK(n >= 1);
}

TEST_CASE("raw metadata keys: protocol names or META_PROTO codes, bounds") {
  config c = parse("raw_meta_protocols=sip, 4,XMPP\nraw_meta_max_bytes=200\n"
                   "raw_meta_max_packets=0\n");
  CHECK(c.str("raw_meta_protocols") == "sip, 4,XMPP");
  CHECK(c.integer("raw_meta_max_bytes") == 200);
  CHECK(c.integer("raw_meta_max_packets") == 0);
  config d = parse("");
  CHECK(d.str("raw_meta_protocols").empty());
  CHECK(d.integer("raw_meta_max_bytes") == 1024);
  CHECK(d.integer("raw_meta_max_packets") == 512);
  CHECK(parse_error("raw_meta_protocols=sip,icq\n") ==
        "metaprobe.conf:1: key 'raw_meta_protocols': 'icq' (META_PROTO 9, icq) is not detected "
        "by metaprobe; expected a comma-separated list of sip, ftp, smtp, pop3, imap, xmpp or "
        "their META_PROTO codes 3..8");
  CHECK(contains(parse_error("raw_meta_protocols=dns\n"), "unknown protocol 'dns'"));
  CHECK(contains(parse_error("raw_meta_max_bytes=10\n"), "expected an integer 20..65535"));
}
