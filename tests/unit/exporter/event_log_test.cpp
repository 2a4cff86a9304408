// SPDX-License-Identifier: Apache-2.0
// The stat/alert log writer: line format, timestamps, appending from two
// writers, directory creation and clear errors.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/event_log.hpp"

using namespace metaprobe;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// `YYYY/MM/DD-HH:MM:SS:uuuuuu`: digits and separators in place.
bool looks_like_event_time(const std::string& t) {
  const std::string shape = "dddd/dd/dd-dd:dd:dd:dddddd";
  if (t.size() != shape.size()) return false;
  for (size_t i = 0; i < t.size(); ++i)
    if (shape[i] == 'd' ? !(t[i] >= '0' && t[i] <= '9') : t[i] != shape[i]) return false;
  return true;
}

struct temp_dir {
  fs::path path;
  temp_dir() {
    path = fs::temp_directory_path() / ("mp_event_log_test_" + std::to_string(::getpid()));
    fs::remove_all(path);
  }
  ~temp_dir() { fs::remove_all(path); }
};

} // namespace

TEST_CASE("timestamp and line format follow the seed") {
  std::tm tm{};
  tm.tm_year = 2022 - 1900;
  tm.tm_mon = 10; // November
  tm.tm_mday = 20;
  tm.tm_hour = 17;
  tm.tm_min = 55;
  tm.tm_sec = 3;
  CHECK(format_event_time(tm, 213770) == "2022/11/20-17:55:03:213770");
  CHECK(format_event_time(tm, 5) == "2022/11/20-17:55:03:000005");
  CHECK(format_event_line("STAT", "2022/11/20-17:55:03:213770",
                          "Statistics on NFLW_export : {7/0/0.00%/45297us/30008163us}") ==
        "[STAT    ][2022/11/20-17:55:03:213770] Statistics on NFLW_export : {7/0/0.00%/45297us/30008163us}");
  CHECK(format_event_line("ALERT", "t", "x") == "[ALERT   ][t] x");
  CHECK(format_event_line("LONGERTAG", "t", "x") == "[LONGERTAG][t] x");

  // a time point: local time, microseconds kept
  const auto t = std::chrono::system_clock::from_time_t(1669000000) + std::chrono::microseconds(42);
  std::time_t secs = 1669000000;
  std::tm local{};
  localtime_r(&secs, &local);
  CHECK(format_event_time(t) == format_event_time(local, 42));
  CHECK(looks_like_event_time(format_event_time(std::chrono::system_clock::now())));
  CHECK(!looks_like_event_time("2022/11/20-17:55:03:21377"));
  CHECK(!looks_like_event_time("2022/11/20 17:55:03:213770"));
}

TEST_CASE("file names per process") {
  CHECK(event_log_tag("exporter", "clickstream.ipfix", 0) == "exporter-clickstream.ipfix-0");
  CHECK(event_log_path("log", "exporter-dns.ipfix-2", "stat") == "log/exporter-dns.ipfix-2_stat.log");
  CHECK(event_log_path("/var/log/mp/", "x", "alert") == "/var/log/mp/x_alert.log");
}

TEST_CASE("lines are appended whole; the directory is created") {
  temp_dir d;
  const std::string path = (d.path / "a" / "b" / "x_stat.log").string();
  event_log one;
  REQUIRE(one.open(path) == "");
  CHECK(one.is_open());
  event_log two; // a second writer (another process in real life)
  REQUIRE(two.open(path) == "");
  const auto t = std::chrono::system_clock::now();
  CHECK(one.append("STAT", t, "first"));
  CHECK(two.append("ALERT", t, "second"));
  CHECK(one.append("STAT", t, "third"));
  CHECK(one.lines() == 2);
  const auto lines = read_lines(path);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].rfind("[STAT    ][", 0) == 0);
  CHECK(lines[0].size() > 5);
  CHECK(lines[0].substr(lines[0].size() - 5) == "first");
  CHECK(lines[1].substr(lines[1].size() - 6) == "second");
  CHECK(lines[2].substr(lines[2].size() - 5) == "third");

  // reopening appends, never truncates
  event_log again;
  REQUIRE(again.open(path) == "");
  CHECK(again.append("STAT", t, "fourth"));
  CHECK(read_lines(path).size() == 4);

  // moved-from writers do not write or close twice
  event_log moved = std::move(again);
  CHECK(!again.is_open());
  CHECK(!again.append("STAT", t, "lost"));
  CHECK(moved.append("STAT", t, "fifth"));
  CHECK(read_lines(path).size() == 5);
}

TEST_CASE("a log directory that cannot be created is a clear error, not a crash") {
  temp_dir d;
  fs::create_directories(d.path);
  const fs::path blocker = d.path / "file";
  std::ofstream(blocker) << "not a directory\n";
  event_log log;
  const std::string err = log.open((blocker / "sub" / "x_alert.log").string());
  CHECK(err.find("log directory " + (blocker / "sub").string() + ": cannot create") == 0);
  CHECK(!log.is_open());
  CHECK(!log.append("ALERT", std::chrono::system_clock::now(), "x"));

  const std::string err2 = log.open(blocker.string() + "/x_alert.log");
  CHECK(!err2.empty());
  CHECK(err2.find(blocker.string()) != std::string::npos);
}
