// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "exporters/text/text_format.hpp"
#include "exporters/text/text_sink.hpp"

using namespace metaprobe;
namespace fs = std::filesystem;
using clock_type = std::chrono::system_clock;

namespace {

std::string v4(const char* text) {
  std::string b(4, '\0');
  REQUIRE(inet_pton(AF_INET, text, b.data()) == 1);
  return b;
}

std::string v6(const char* text) {
  std::string b(16, '\0');
  REQUIRE(inet_pton(AF_INET6, text, b.data()) == 1);
  return b;
}

void fill_meta(v1::FlowMeta* m) {
  m->set_time_stamp(1700000000);
  m->set_login("alice");
  m->set_ip_source(v4("10.0.0.1"));
  m->set_ip_destination(v4("93.184.216.34"));
  m->set_port_source(51000);
  m->set_port_destination(80);
  m->set_session_id(123456789);
}

v1::Record http_record(const std::string& host = "example.com") {
  v1::Record r;
  auto* c = r.mutable_clickstream();
  fill_meta(c->mutable_meta());
  c->set_hostname(host);
  c->set_path("/index.html?q=1");
  c->set_referer("http://ref.example/");
  c->set_user_agent("curl/8.0");
  c->set_cookie("a=b; c=d");
  c->set_host_type(1);
  c->set_locked(0);
  c->set_method(1);
  c->set_method_name("GET");
  return r;
}

v1::Record sni_record(uint32_t host_type, const std::string& host) {
  v1::Record r;
  auto* c = r.mutable_clickstream();
  fill_meta(c->mutable_meta());
  c->set_hostname(host);
  c->set_host_type(host_type);
  return r;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::string line_of(const text_line_formatter& f, const v1::Record& r) {
  std::string out;
  REQUIRE(f.append(r, out));
  return out;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct temp_dir {
  fs::path path;
  temp_dir() {
    char tmpl[] = "/tmp/mp_text_sink_XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::vector<fs::path> files(const std::string& ext) const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(path)) {
      const std::string name = e.path().filename().string();
      if (name.size() >= ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0)
        out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

uint64_t counter(const sink& s, const std::string& name) {
  for (const auto& c : s.counters())
    if (c.name == name)
      return c.value;
  FAIL("no counter " << name);
  return 0;
}

clock_type::time_point at(int64_t unix_seconds) {
  return clock_type::time_point(std::chrono::seconds(unix_seconds));
}

} // namespace

TEST_CASE("escaping keeps one record on one line") {
  std::string out;
  append_escaped(out, "a\tb\nc\rd\\e\x01" "f\x7f" "g\xc3\xa9");
  CHECK(out == "a\\tb\\nc\\rd\\\\e\\x01f\\x7fg\xc3\xa9");
}

TEST_CASE("escaping: the word-at-a-time scan equals a byte-by-byte reference") {
  auto reference = [](std::string_view s) {
    static const char digits[] = "0123456789abcdef";
    std::string r;
    for (unsigned char c : s) {
      if (c == '\\') r += "\\\\";
      else if (c == '\t') r += "\\t";
      else if (c == '\r') r += "\\r";
      else if (c == '\n') r += "\\n";
      else if (c < 0x20 || c == 0x7f) { r += "\\x"; r += digits[c >> 4]; r += digits[c & 15]; }
      else r += static_cast<char>(c);
    }
    return r;
  };
  uint32_t seed = 12345;
  auto next = [&] { seed = seed * 1103515245u + 12345u; return seed >> 16; };
  for (int round = 0; round < 3000; ++round) {
    std::string s(next() % 70, 'x');
    for (auto& ch : s) {
      const uint32_t pick = next() % 10;
      // mostly printable text, sometimes every byte value (escapes, 0x7f, UTF-8)
      ch = static_cast<char>(pick < 7 ? 0x20 + next() % 95 : next() % 256);
    }
    std::string out = "prefix:";
    append_escaped(out, s);
    CAPTURE(s);
    CHECK(out == "prefix:" + reference(s));
  }
}

TEST_CASE("url line in the seed's default format") {
  const auto fields = config::from_overrides({}).fields("ajb_save_url_format");
  text_line_formatter f(text_kind::url, fields);
  CHECK(line_of(f, http_record()) ==
        "1700000000\t0\talice\t10.0.0.1\t93.184.216.34\texample.com\t/index.html?q=1\t"
        "http://ref.example/\tcurl/8.0\ta=b; c=d\t1\t0\t1\n");
}

TEST_CASE("extra url fields and escaping inside a line") {
  text_line_formatter f(text_kind::url, {"ssid", "psrc", "pdst", "methodname", "host", "uagent"});
  v1::Record r = http_record("evil\thost\nname");
  r.mutable_clickstream()->set_user_agent("back\\slash\r");
  std::string line = line_of(f, r);
  CHECK(line == "123456789\t51000\t80\tGET\tevil\\thost\\nname\tback\\\\slash\\r\n");
  CHECK(std::count(line.begin(), line.end(), '\n') == 1);
  CHECK(split(line, '\t').size() == 6);
}

TEST_CASE("ts falls back to the capture time in ns") {
  text_line_formatter f(text_kind::url, {"ts"});
  v1::Record r = http_record();
  r.mutable_clickstream()->mutable_meta()->set_time_stamp(0);
  r.mutable_clickstream()->mutable_meta()->set_time_ns(1690000000123456789ull);
  CHECK(line_of(f, r) == "1690000000\n");
}

TEST_CASE("IPv6 addresses and empty values") {
  text_line_formatter f(text_kind::url, {"login", "ipsrc", "ipdst", "cookie"});
  v1::Record r = http_record();
  auto* m = r.mutable_clickstream()->mutable_meta();
  m->set_ip_source(v6("2001:db8::1"));
  m->set_ip_destination(v6("2001:db8:0:0:0:0:0:2"));
  m->clear_login();
  r.mutable_clickstream()->clear_cookie();
  CHECK(line_of(f, r) == "\t2001:db8::1\t2001:db8::2\t\n");
}

TEST_CASE("url takes HTTP, ssl takes host types by the ajb_save_ssl mask") {
  text_line_formatter url(text_kind::url, {"host"});
  CHECK(url.selects(http_record()));
  CHECK_FALSE(url.selects(sni_record(3, "x")));

  text_line_formatter all(text_kind::ssl, {"host", "tphost"}, -1);
  CHECK_FALSE(all.selects(http_record()));
  CHECK(all.selects(sni_record(2, "x")));
  CHECK(all.selects(sni_record(3, "x")));
  CHECK(all.selects(sni_record(4, "x")));
  CHECK_FALSE(all.selects(sni_record(0, "x")));
  CHECK(line_of(all, sni_record(4, "quic.example")) == "quic.example\t4\n");

  text_line_formatter sni(text_kind::ssl, {"host"}, ssl_mask_sni);
  CHECK(sni.selects(sni_record(3, "x")));
  CHECK_FALSE(sni.selects(sni_record(2, "x")));
  CHECK_FALSE(sni.selects(sni_record(4, "x")));

  text_line_formatter cname_quic(text_kind::ssl, {"host"}, ssl_mask_cname | ssl_mask_quic);
  CHECK_FALSE(cname_quic.selects(sni_record(3, "x")));
  CHECK(cname_quic.selects(sni_record(2, "x")));
  CHECK(cname_quic.selects(sni_record(4, "x")));

  v1::Record dns;
  dns.mutable_dns();
  CHECK_FALSE(all.selects(dns));
  std::string out;
  CHECK_FALSE(all.append(dns, out));
  CHECK(out.empty());
}

TEST_CASE("sip line in the seed's default format") {
  text_line_formatter f(text_kind::sip, config::from_overrides({}).fields("ajb_save_sip_format"));
  v1::Record r;
  auto* s = r.mutable_sip();
  fill_meta(s->mutable_meta());
  s->set_msg_code("INVITE");
  s->set_status_code(0);
  s->set_from("<sip:100@example.com>;tag=1");
  s->set_to("<sip:200@example.com>");
  s->set_callid("abc@host");
  s->set_uagent("softphone 1.0");
  CHECK(line_of(f, r) ==
        "1700000000\t123456789\t10.0.0.1\t93.184.216.34\talice\tINVITE\t0\t"
        "<sip:100@example.com>;tag=1\t<sip:200@example.com>\tabc@host\tsoftphone 1.0\n");
}

TEST_CASE("dns line in the seed's default format") {
  text_line_formatter f(text_kind::dns, config::from_overrides({}).fields("ajb_save_dns_format"));
  v1::Record r;
  auto* d = r.mutable_dns();
  fill_meta(d->mutable_meta());
  d->mutable_meta()->set_port_destination(53);
  d->set_transport(0);
  d->set_domain("example.com");
  d->set_rrtype(1);
  d->set_rrclass(1);
  d->set_ttl(300);
  d->set_rdata(v4("93.184.216.34"));
  d->set_rdata_text("93.184.216.34");
  CHECK(line_of(f, r) == "1700000000\t123456789\talice\t10.0.0.1\t93.184.216.34\t51000\t53\t0\t"
                         "example.com\t1\t1\t300\t4\t93.184.216.34\n");
  // no readable form: hex of the raw rdata
  d->clear_rdata_text();
  d->set_rdata(std::string("\x01\xab", 2));
  text_line_formatter raw(text_kind::dns, {"rdlen", "rdata", "transport"});
  d->set_transport(1);
  CHECK(line_of(raw, r) == "2\t01ab\t1\n");
}

TEST_CASE("every field the config accepts can be formatted") {
  for (text_kind k : {text_kind::url, text_kind::ssl, text_kind::sip, text_kind::dns}) {
    const auto& fields = text_format_fields(text_kind_name(k));
    CAPTURE(text_kind_name(k));
    REQUIRE(fields.size() >= 11);
    text_line_formatter f(k, fields);
    v1::Record r;
    if (k == text_kind::sip)
      fill_meta(r.mutable_sip()->mutable_meta());
    else if (k == text_kind::dns)
      fill_meta(r.mutable_dns()->mutable_meta());
    else
      r = k == text_kind::url ? http_record() : sni_record(3, "sni.example");
    std::string line = line_of(f, r);
    CHECK(split(line.substr(0, line.size() - 1), '\t').size() == fields.size());
  }
}

TEST_CASE("formats with fields of another kind are rejected") {
  CHECK_THROWS_AS(text_line_formatter(text_kind::url, {"ts", "callid"}), config_error);
  CHECK_THROWS_AS(text_line_formatter(text_kind::dns, {"cookie"}), config_error);
  CHECK_THROWS_AS(text_line_formatter(text_kind::sip, {}), config_error);
}

TEST_CASE("sink writes a .tmp file and flush() renames it atomically") {
  temp_dir dir;
  text_sink_config cfg;
  cfg.kind = text_kind::url;
  cfg.path = (dir.path / "sub" / "dir").string(); // created on demand
  cfg.format = {"ts", "host"};
  cfg.instance = 3;
  auto s = make_text_sink(cfg);
  s->tick(at(1700000000)); // 2023-11-14 22:13:20 UTC
  s->add(http_record("a.example"));
  s->add(sni_record(3, "ignored.example")); // not a url record: ignored, not dropped
  s->add(http_record("b.example"));
  s->tick(at(1700000001));
  fs::path out = dir.path / "sub" / "dir";
  REQUIRE(fs::is_directory(out));
  size_t tmp = 0, txt = 0;
  for (const auto& e : fs::directory_iterator(out)) {
    const std::string n = e.path().filename().string();
    tmp += n.size() > 8 && n.compare(n.size() - 8, 8, ".txt.tmp") == 0;
    txt += n.size() > 4 && n.compare(n.size() - 4, 4, ".txt") == 0;
  }
  CHECK(tmp == 1);
  CHECK(txt == 0);

  s->flush();
  std::vector<fs::path> finished;
  for (const auto& e : fs::directory_iterator(out)) {
    CHECK(e.path().extension() == ".txt");
    finished.push_back(e.path());
  }
  REQUIRE(finished.size() == 1);
  CHECK(finished[0].filename() == "url_20231114-221320_3_000000.txt");
  CHECK(read_file(finished[0]) == "1700000000\ta.example\n1700000000\tb.example\n");
  CHECK(counter(*s, "records_written") == 2);
  CHECK(counter(*s, "records_dropped") == 0);
  CHECK(counter(*s, "files_finished") == 1);
  CHECK(counter(*s, "bytes_written") == 42);
  CHECK(s->name() == "text:url:" + cfg.path);

  // flush() with nothing buffered creates no empty file
  s->flush();
  s->tick(at(1700000100));
  CHECK(std::distance(fs::directory_iterator(out), fs::directory_iterator()) == 1);
}

TEST_CASE("rotation by size keeps whole lines within fsize") {
  temp_dir dir;
  text_sink_config cfg;
  cfg.kind = text_kind::url;
  cfg.path = dir.path.string();
  cfg.format = {"host"};
  cfg.fsize = 100;
  cfg.bufsize = 30;
  auto s = make_text_sink(cfg);
  s->tick(at(1700000000));
  std::string expected;
  for (int i = 0; i < 50; ++i) {
    std::string host = "host-" + std::to_string(i) + ".example"; // 15..16 bytes + '\n'
    s->add(http_record(host));
    expected += host + "\n";
  }
  s->flush();
  CHECK(dir.files(".tmp").empty());
  auto files = dir.files(".txt");
  CHECK(files.size() >= 8);
  std::string all;
  for (const auto& f : files) {
    std::string body = read_file(f);
    CAPTURE(f);
    CHECK(body.size() <= 100);
    if (f != files.back())
      CHECK(body.size() > 80); // no needlessly small files
    REQUIRE_FALSE(body.empty());
    CHECK(body.back() == '\n');
    all += body;
  }
  CHECK(all == expected); // in order, nothing lost or repeated
  CHECK(counter(*s, "files_finished") == files.size());
  CHECK(counter(*s, "records_written") == 50);
}

TEST_CASE("a line longer than fsize gets a file of its own") {
  temp_dir dir;
  text_sink_config cfg;
  cfg.path = dir.path.string();
  cfg.format = {"host"};
  cfg.fsize = 10;
  auto s = make_text_sink(cfg);
  s->add(http_record("a"));
  s->add(http_record(std::string(40, 'x')));
  s->add(http_record("b"));
  s->flush();
  auto files = dir.files(".txt");
  REQUIRE(files.size() == 3);
  CHECK(read_file(files[0]) == "a\n");
  CHECK(read_file(files[1]) == std::string(40, 'x') + "\n");
  CHECK(read_file(files[2]) == "b\n");
}

TEST_CASE("rotation by time in tick(), only for non-empty files") {
  temp_dir dir;
  text_sink_config cfg;
  cfg.kind = text_kind::ssl;
  cfg.path = dir.path.string();
  cfg.format = {"host"};
  cfg.ftimeout_s = 30;
  auto s = make_text_sink(cfg);
  s->tick(at(1000));
  s->add(sni_record(3, "one.example"));
  s->tick(at(1010));
  CHECK(dir.files(".txt").empty());
  CHECK(dir.files(".tmp").size() == 1);
  // buffered lines reach the .tmp file at each tick
  CHECK(read_file(dir.files(".tmp")[0]) == "one.example\n");
  s->tick(at(1029));
  CHECK(dir.files(".txt").empty());
  s->tick(at(1030));
  REQUIRE(dir.files(".txt").size() == 1);
  CHECK(dir.files(".tmp").empty());
  CHECK(read_file(dir.files(".txt")[0]) == "one.example\n");
  // idle: no new file however much time passes
  s->tick(at(2000));
  s->tick(at(3000));
  CHECK(dir.files(".txt").size() == 1);
  CHECK(dir.files(".tmp").empty());
  // the next record opens a new file timed from now
  s->add(sni_record(4, "two.example"));
  s->tick(at(3029));
  CHECK(dir.files(".txt").size() == 1);
  s->tick(at(3031));
  CHECK(dir.files(".txt").size() == 2);
  CHECK(dir.files(".txt")[1].filename().string().rfind("ssl_19700101-005000_0_", 0) == 0);
}

TEST_CASE("unbuffered sink writes each line at once") {
  temp_dir dir;
  text_sink_config cfg;
  cfg.path = dir.path.string();
  cfg.format = {"host"};
  cfg.bufsize = 0;
  auto s = make_text_sink(cfg);
  s->add(http_record("x.example"));
  auto tmp = dir.files(".tmp");
  REQUIRE(tmp.size() == 1);
  CHECK(fs::file_size(tmp[0]) == 10);
  s->add(http_record("y.example"));
  CHECK(fs::file_size(tmp[0]) == 20);
}

TEST_CASE("unwritable directory: counted drops, no crash, recovery later") {
  temp_dir dir;
  fs::path blocker = dir.path / "not-a-dir";
  { std::ofstream(blocker) << "x"; }
  text_sink_config cfg;
  cfg.kind = text_kind::dns;
  cfg.path = (blocker / "dns").string(); // a path under a regular file: impossible even for root
  cfg.format = {"host"};
  auto s = make_text_sink(cfg);
  v1::Record r;
  r.mutable_dns()->set_domain("example.org");
  s->tick(at(100));
  for (int i = 0; i < 5; ++i)
    s->add(r);
  s->tick(at(101)); // retries opening, fails again
  s->add(r);
  s->flush();
  CHECK(counter(*s, "records_dropped") == 6);
  CHECK(counter(*s, "records_written") == 0);
  CHECK(counter(*s, "write_errors") == 2); // one per attempt, not per record
  CHECK_FALSE(prepare_text_dir(cfg.path).empty());

  // the obstacle goes away: the next tick allows a retry and writing resumes
  fs::remove(blocker);
  s->tick(at(102));
  s->add(r);
  s->flush();
  CHECK(counter(*s, "records_written") == 1);
  CHECK(counter(*s, "files_finished") == 1);
  CHECK(fs::exists(blocker / "dns"));
}

TEST_CASE("a failing write is cut back to whole lines and counted") {
  // Simulate a full disk with RLIMIT_FSIZE: writes past the limit fail with
  // EFBIG once SIGXFSZ is ignored.
  temp_dir dir;
  struct rlimit old_limit;
  REQUIRE(getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);

  text_sink_config cfg;
  cfg.path = dir.path.string();
  cfg.format = {"host"};
  cfg.bufsize = 25; // writes of two or three 10-byte lines
  auto s = make_text_sink(cfg);
  struct rlimit small = old_limit;
  small.rlim_cur = 45;
  REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
  for (int i = 0; i < 9; ++i)
    s->add(http_record("h" + std::to_string(i) + ".example")); // 11 bytes each
  s->tick(at(5));
  REQUIRE(setrlimit(RLIMIT_FSIZE, &old_limit) == 0);
  std::signal(SIGXFSZ, old_handler);

  uint64_t written = counter(*s, "records_written");
  uint64_t dropped = counter(*s, "records_dropped");
  CHECK(written + dropped == 9);
  CHECK(dropped > 0);
  CHECK(counter(*s, "write_errors") >= 1);
  s->add(http_record("after.example"));
  s->flush();
  auto files = dir.files(".txt");
  REQUIRE(files.size() == 1);
  std::string body = read_file(files[0]);
  CHECK(body.back() == '\n');
  auto lines = split(body.substr(0, body.size() - 1), '\n');
  CHECK(lines.size() == written + 1);
  for (const auto& l : lines)
    CHECK(l.find(".example") != std::string::npos); // every line whole
  CHECK(lines.back() == "after.example");
}

TEST_CASE("text_sinks_from_config builds one config per enabled kind") {
  config c = config::from_overrides({"ajb_save_url=-1", "ajb_url_path=/data/url", "ajb_url_fsize=10M",
                                     "ajb_save_ssl=5", "ajb_save_dns=2", "ajb_dns_ftimeout=2",
                                     "ajb_dns_bufsize=1K", "ajb_save_dns_format=ts:host"});
  auto v = text_sinks_from_config(c);
  REQUIRE(v.size() == 3);
  CHECK(v[0].kind == text_kind::url);
  CHECK(v[0].path == "/data/url");
  CHECK(v[0].fsize == 10u << 20);
  CHECK(v[0].ftimeout_s == 30);
  CHECK(v[0].format.size() == 13);
  CHECK(v[1].kind == text_kind::ssl);
  CHECK(v[1].ssl_mask == 5);
  CHECK(v[1].format == std::vector<std::string>{"ts", "prg", "login", "ipsrc", "ipdst", "host",
                                                "tphost", "blockd", "method"});
  CHECK(v[2].kind == text_kind::dns);
  CHECK(v[2].ftimeout_s == 120);
  CHECK(v[2].bufsize == 1024);
  CHECK(v[2].format == std::vector<std::string>{"ts", "host"});

  CHECK(text_sinks_from_config(config::from_overrides({})).empty());
  auto sip = text_sinks_from_config(config::from_overrides({"ajb_save_sip=1"}));
  REQUIRE(sip.size() == 1);
  CHECK(sip[0].kind == text_kind::sip);
  CHECK(sip[0].path == "/var/dump/dpi");
}

TEST_CASE("prepare_text_dir creates the directory") {
  temp_dir dir;
  fs::path p = dir.path / "a" / "b";
  CHECK(prepare_text_dir(p.string()) == "");
  CHECK(fs::is_directory(p));
  CHECK_FALSE(prepare_text_dir("").empty());
}

TEST_CASE("kind names") {
  CHECK(text_kind_name(text_kind::dns) == "dns");
  CHECK(text_kind_from_name("ssl") == text_kind::ssl);
  CHECK_FALSE(text_kind_from_name("ftp").has_value());
}
