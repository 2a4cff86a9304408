// SPDX-License-Identifier: Apache-2.0
// The exporter loop against a local ZeroMQ channel with scripted sinks:
// sending cycles are counted, slow cycles are overruns, skipped records
// make alert lines, and the stat lines have the seed's format.
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "core/event_log.hpp"
#include "exporters/exporter.hpp"
#include "metaprobe/v1/envelope.pb.h"

using namespace metaprobe;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// A sink that drops every `drop_every`-th record and whose tick() takes
// `tick_cost` (a slow collector, a long write).
class scripted_sink : public sink {
public:
  scripted_sink(std::string name, uint64_t drop_every, std::chrono::milliseconds tick_cost)
    : name_(std::move(name)), drop_every_(drop_every), tick_cost_(tick_cost) {}
  std::string name() const override { return name_; }
  void add(const v1::Record&) override {
    ++in_;
    if (drop_every_ && in_ % drop_every_ == 0) ++dropped_;
  }
  void tick(std::chrono::system_clock::time_point) override {
    ++ticks_;
    if (tick_cost_.count() > 0) std::this_thread::sleep_for(tick_cost_);
  }
  void flush() override { ++flushes_; }
  uint64_t held_records() const override { return 0; } // every record is done at once
  std::vector<sink_counter> counters() const override {
    return {{"records_in", in_, ""}, {"records_dropped", dropped_, ""}};
  }
  uint64_t in_ = 0, dropped_ = 0, ticks_ = 0, flushes_ = 0;

private:
  std::string name_;
  uint64_t drop_every_;
  std::chrono::milliseconds tick_cost_;
};

std::vector<std::string> read_lines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::string batch(uint64_t seq, int records, bool eos) {
  v1::RecordBatch b;
  b.set_group("dns");
  b.set_producer_id(7);
  b.set_sequence(seq);
  for (int i = 0; i < records; ++i) b.add_records()->mutable_dns()->set_domain("example.org");
  b.set_end_of_stream(eos);
  return b.SerializeAsString();
}

struct run_result {
  exporter_counters counters;
  std::vector<std::string> stat, alert;
  uint64_t dropped = 0;
};

// Pushes `batches` batches of 10 records over `duration`, then end of
// stream; the exporter runs with `sinks` and writes its logs to a temp dir.
run_result run_exporter(std::vector<std::unique_ptr<sink>> sinks, int batches,
                        std::chrono::milliseconds duration, bool stat_on) {
  static int n = 0;
  const fs::path dir = fs::temp_directory_path() /
                       ("mp_exporter_test_" + std::to_string(::getpid()) + "_" + std::to_string(++n));
  fs::remove_all(dir);
  event_log stat, alert;
  REQUIRE(stat.open((dir / "x_stat.log").string()) == "");
  REQUIRE(alert.open((dir / "x_alert.log").string()) == "");
  exporter_options o;
  o.endpoint = "ipc://" + (dir / "ch").string();
  o.ch = {sink_group::dns, sink_kind::ipfix};
  o.tick = 10ms;
  o.stats_period = 200ms;
  o.alert_interval = 50ms;
  o.stat_log = stat_on ? &stat : nullptr;
  o.alert_log = &alert;
  std::vector<scripted_sink*> raw;
  for (auto& s : sinks) raw.push_back(static_cast<scripted_sink*>(s.get()));
  exporter ex(o, std::move(sinks));

  zmq::context_t ctx(1);
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::linger, 1000);
  push.bind(o.endpoint);
  std::atomic<bool> stop{false};
  bool ok = false;
  std::string error;
  std::thread t([&] { ok = ex.run(stop, error); });
  for (int i = 1; i <= batches; ++i) {
    const std::string b = batch(static_cast<uint64_t>(i), 10, false);
    push.send(zmq::buffer(b), zmq::send_flags::none);
    std::this_thread::sleep_for(duration / batches);
  }
  const std::string eos = batch(static_cast<uint64_t>(batches + 1), 0, true);
  push.send(zmq::buffer(eos), zmq::send_flags::none);
  t.join();
  CHECK(ok);
  CHECK(error == "");
  run_result r;
  r.counters = ex.counters();
  for (auto* s : raw) {
    CHECK(s->flushes_ == 1);
    r.dropped += s->dropped_;
  }
  r.stat = read_lines(dir / "x_stat.log");
  r.alert = read_lines(dir / "x_alert.log");
  fs::remove_all(dir);
  return r;
}

// Splits `[TAG     ][YYYY/MM/DD-HH:MM:SS:uuuuuu] text` into tag and text;
// false when the frame is not exactly that.
bool split_line(const std::string& l, const std::string& tag, std::string& text) {
  const std::string head = "[" + tag + std::string(8 - tag.size(), ' ') + "][";
  const size_t time_len = 26; // YYYY/MM/DD-HH:MM:SS:uuuuuu
  if (l.compare(0, head.size(), head) != 0 || l.size() < head.size() + time_len + 2) return false;
  if (l.compare(head.size() + time_len, 2, "] ") != 0) return false;
  text = l.substr(head.size() + time_len + 2);
  return true;
}

struct stat_fields {
  unsigned long long a = 0, b = 0, c_int = 0, c_frac = 0, d = 0, e = 0;
};

// `Statistics on NFLW_export : {a/b/c.cc%/dus/eus}` exactly: parsed,
// then printed again from the numbers and compared.
bool parse_stat(const std::string& line, stat_fields& f) {
  std::string text;
  if (!split_line(line, "STAT", text)) return false;
  if (std::sscanf(text.c_str(), "Statistics on NFLW_export : {%llu/%llu/%llu.%2llu%%/%lluus/%lluus}", &f.a, &f.b,
                  &f.c_int, &f.c_frac, &f.d, &f.e) != 6)
    return false;
  char again[160];
  std::snprintf(again, sizeof again, "Statistics on NFLW_export : {%llu/%llu/%llu.%02llu%%/%lluus/%lluus}", f.a, f.b,
                f.c_int, f.c_frac, f.d, f.e);
  return text == again;
}

} // namespace

TEST_CASE("exporter: slow cycles overrun, skipped records make alert lines, stat lines add up") {
  std::vector<std::unique_ptr<sink>> sinks;
  sinks.push_back(std::make_unique<scripted_sink>("test:dropping", 3, 0ms));
  sinks.push_back(std::make_unique<scripted_sink>("test:slow", 0, 15ms)); // every tick > 10 ms
  const run_result r = run_exporter(std::move(sinks), 40, 800ms, true);

  CHECK(r.counters.records == 400);
  CHECK(r.dropped == 133);
  CHECK(r.counters.send_cycles >= 20);
  // every tick took 15 ms of a 10 ms period; the final flush cycle did not
  CHECK(r.counters.send_cycle_overruns + 1 >= r.counters.send_cycles);
  CHECK(r.counters.max_send_cycle_us >= 15000);

  // stat lines: every 200 ms and one at the end; the figures add up
  REQUIRE(r.stat.size() >= 3);
  CHECK(r.counters.stat_lines == r.stat.size());
  uint64_t a_sum = 0, b_sum = 0;
  for (const std::string& l : r.stat) {
    stat_fields f;
    REQUIRE_MESSAGE(parse_stat(l, f), l);
    const uint64_t c = f.c_int * 100 + f.c_frac;
    CHECK(f.b <= f.a);
    if (f.a) CHECK(c == (10000 * f.b + f.a / 2) / f.a);
    a_sum += f.a;
    b_sum += f.b;
  }
  CHECK(a_sum == r.counters.send_cycles);
  CHECK(b_sum == r.counters.send_cycle_overruns);
  for (size_t i = 0; i + 1 < r.stat.size(); ++i) {
    stat_fields f;
    parse_stat(r.stat[i], f);
    CHECK(f.e >= 200000); // e: the actual elapsed period
    CHECK(f.e < 400000);
  }

  // alert lines name the dropping sink only, and report every drop
  REQUIRE(!r.alert.empty());
  CHECK(r.counters.alert_lines == r.alert.size());
  CHECK(r.alert.size() <= 800 / 50 + 2); // rate-limited
  uint64_t reported = 0;
  for (const std::string& l : r.alert) {
    std::string text;
    REQUIRE_MESSAGE(split_line(l, "ALERT", text), l);
    unsigned long long cycle = 0, since = 0, total = 0, busy = 0, period = 0;
    char state[16] = {};
    const int n = std::sscanf(text.c_str(),
                              "[NFLW] very long operation: test:dropping skipped %llu record(s) in this cycle, "
                              "%llu since the last alert, %llu in total; cycle %lluus of %lluus period (%15[^)])",
                              &cycle, &since, &total, &busy, &period, state);
    REQUIRE_MESSAGE(n == 6, l);
    CHECK(period == 10000);
    CHECK((std::string(state) == "overran" || std::string(state) == "within period"));
    CHECK(text.back() == ')');
    reported += since;
    CHECK(total == reported);
  }
  CHECK(reported == 133);
}

TEST_CASE("exporter: no drops, no alert lines; no stat log, no stat lines") {
  std::vector<std::unique_ptr<sink>> sinks;
  sinks.push_back(std::make_unique<scripted_sink>("test:fine", 0, 0ms));
  const run_result r = run_exporter(std::move(sinks), 10, 100ms, false);
  CHECK(r.counters.records == 100);
  CHECK(r.counters.send_cycles >= 5);
  CHECK(r.counters.send_cycle_overruns == 0);
  CHECK(r.alert.empty());
  CHECK(r.counters.alert_lines == 0);
  CHECK(r.stat.empty());
  CHECK(r.counters.stat_lines == 0);
}

TEST_CASE("exporter: with a producer set, another producer's batches are dropped and counted") {
  auto make = [](uint64_t producer) {
    exporter_options o;
    o.ch = {sink_group::dns, sink_kind::ipfix};
    o.producer = producer;
    std::vector<std::unique_ptr<sink>> sinks;
    sinks.push_back(std::make_unique<scripted_sink>("s", 0, 0ms));
    return std::make_unique<exporter>(o, std::move(sinks));
  };
  // batch() comes from producer 7
  auto own = make(7);
  auto foreign = make(9);
  auto any = make(0);
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    const std::string b = batch(seq, 4, false);
    CHECK_FALSE(own->handle(b.data(), b.size()));
    CHECK_FALSE(foreign->handle(b.data(), b.size()));
    CHECK_FALSE(any->handle(b.data(), b.size()));
  }
  const std::string eos = batch(4, 0, true);
  CHECK(own->handle(eos.data(), eos.size()));
  CHECK_FALSE(foreign->handle(eos.data(), eos.size())); // not its end of stream
  CHECK(any->handle(eos.data(), eos.size()));
  CHECK(own->counters().records == 12);
  CHECK(own->counters().foreign_batches == 0);
  CHECK(any->counters().records == 12);
  CHECK(foreign->counters().records == 0);
  CHECK(foreign->counters().batches == 0);
  CHECK(foreign->counters().end_of_stream == 0);
  CHECK(foreign->counters().foreign_batches == 4);
  CHECK(foreign->counters().foreign_records == 12);
  CHECK(static_cast<const scripted_sink&>(*foreign->sinks().front()).in_ == 0);
}
