// SPDX-License-Identifier: Apache-2.0
#include "exporters/exporter.hpp"

#include <algorithm>

#include <google/protobuf/arena.h>

#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "metaprobe/v1/envelope.pb.h"

namespace metaprobe {

namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using steady = std::chrono::steady_clock;

microseconds us(steady::duration d) { return duration_cast<microseconds>(d); }

} // namespace

exporter::exporter(exporter_options opts, std::vector<std::unique_ptr<sink>> sinks)
  : opts_(std::move(opts)), sinks_(std::move(sinks)),
    cycles_(us(opts_.tick), us(opts_.stats_period), steady::now()), alerts_(opts_.alert_interval) {
}

exporter::~exporter() = default;

bool exporter::handle(const void* data, size_t len) {
  // The batch and its records live in an arena whose first block is reused
  // for every batch: parsing allocates (almost) nothing and freeing the
  // batch is one reset instead of a delete per record and string.
  if (arena_block_.empty())
    arena_block_.resize(arena_block_bytes);
  google::protobuf::ArenaOptions ao;
  ao.initial_block = arena_block_.data();
  ao.initial_block_size = arena_block_.size();
  google::protobuf::Arena arena(ao);
  v1::RecordBatch& batch = *google::protobuf::Arena::CreateMessage<v1::RecordBatch>(&arena);
  if (!batch.ParseFromArray(data, static_cast<int>(len))) {
    ++counters_.bad_messages;
    return false;
  }
  if (opts_.producer != 0 && batch.producer_id() != opts_.producer) {
    ++counters_.foreign_batches;
    counters_.foreign_records += static_cast<uint64_t>(batch.records_size());
    return false;
  }
  if (batch.producer_id() != producer_) {
    producer_ = batch.producer_id();
    last_sequence_ = batch.sequence() - 1;
  }
  // With several instances per channel each sees a share of the sequence;
  // a gap is only meaningful with one instance.
  if (batch.sequence() > last_sequence_ + 1 && opts_.instance == 0)
    counters_.sequence_gaps += batch.sequence() - last_sequence_ - 1;
  last_sequence_ = std::max(last_sequence_, batch.sequence());
  counters_.upstream_dropped += batch.dropped_records();
  ++counters_.batches;
  if (opts_.delivery)
    opts_.delivery->on_batch(batch.producer_id(), batch.records_before(), batch.dropped_before(),
                             static_cast<uint64_t>(batch.records_size()), batch.end_of_stream());
  for (const auto& rec : batch.records()) {
    ++counters_.records;
    for (auto& s : sinks_)
      s->add(rec);
  }
  if (opts_.delivery)
    opts_.delivery->on_held(held());
  if (batch.end_of_stream()) {
    ++counters_.end_of_stream;
    return true;
  }
  return false;
}

bool exporter::run(const std::atomic<bool>& stop, std::string& error) {
  zmq::context_t ctx(1);
  zmq::socket_t sock(ctx, zmq::socket_type::pull);
  sock.set(zmq::sockopt::rcvhwm, opts_.rcvhwm);
  sock.set(zmq::sockopt::linger, 0);
  if (opts_.keys.on())
    if (auto e = make_curve_client(sock.handle(), opts_.keys); !e.empty()) {
      error = "channel " + opts_.ch.name() + ": " + e;
      return false;
    }
  try {
    sock.connect(opts_.endpoint);
  } catch (const zmq::error_t& e) {
    error = "cannot connect to " + opts_.endpoint + ": " + e.what();
    return false;
  }
  spdlog::info("exporter {}#{}: pulling from {}{}", opts_.ch.name(), opts_.instance, opts_.endpoint,
               opts_.keys.on() ? " (CURVE)" : "");
  auto next_tick = steady::now(); // the sinks' first tick comes at once
  cycles_ = send_cycle_stats(us(opts_.tick), us(opts_.stats_period), steady::now());
  steady::duration busy{}; // work done in the current cycle
  steady::time_point drain_until{};
  bool draining = false;
  for (;;) {
    if (stop.load() && !draining) {
      draining = true;
      drain_until = steady::now() + opts_.drain;
    }
    // wait for input until the next tick at most, so cycles are regular
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_tick - steady::now());
    wait = std::clamp(wait, std::chrono::milliseconds(0), opts_.tick);
    if (draining) wait = std::min(wait, std::chrono::milliseconds(50));
    zmq::pollitem_t items[] = {{sock.handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 1, wait);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR)
        throw;
      continue; // a signal (stop request) interrupted the wait
    }
    const auto work_start = steady::now();
    bool eos = false;
    bool got = false;
    if (items[0].revents & ZMQ_POLLIN) {
      // drain what is queued, a bounded number per round so ticks happen
      for (int i = 0; i < 256; ++i) {
        zmq::message_t msg;
        if (!sock.recv(msg, zmq::recv_flags::dontwait))
          break;
        got = true;
        if (handle(msg.data(), msg.size())) {
          eos = true;
          break;
        }
      }
    }
    auto now = steady::now();
    if (now >= next_tick) {
      auto wall = std::chrono::system_clock::now();
      if (opts_.on_tick)
        opts_.on_tick(sinks_);
      for (auto& s : sinks_)
        s->tick(wall);
      if (opts_.delivery) {
        opts_.delivery->on_held(held());
        opts_.delivery->on_sink_dropped(sink_dropped());
      }
      now = steady::now();
      busy += now - work_start;
      end_cycle(us(busy), now);
      busy = {};
      next_tick += opts_.tick;
      if (next_tick <= now) next_tick = now + opts_.tick; // no catch-up burst after a long cycle
    } else {
      busy += now - work_start;
    }
    if (eos)
      break;
    if (draining && (!got || now >= drain_until))
      break;
  }
  // the final flush is the last cycle (with what the current one did)
  const auto flush_start = steady::now();
  for (auto& s : sinks_)
    s->flush();
  if (opts_.delivery) {
    opts_.delivery->on_sink_dropped(sink_dropped());
    opts_.delivery->clean_exit(held());
  }
  const auto end = steady::now();
  busy += end - flush_start;
  end_cycle(us(busy), end);
  finish_cycles(end);
  return true;
}

uint64_t exporter::sink_dropped() const {
  uint64_t most = 0;
  for (const auto& s : sinks_)
    most = std::max(most, dropped_by(*s));
  return most;
}

uint64_t exporter::held() const {
  uint64_t most = 0;
  for (const auto& s : sinks_)
    most = std::max(most, s->held_records());
  return most;
}

uint64_t exporter::dropped_by(const sink& s) {
  uint64_t n = 0;
  for (const auto& c : s.counters())
    if (c.name == "records_dropped") n += c.value;
  return n;
}

void exporter::end_cycle(microseconds busy, steady::time_point now) {
  last_cycle_.busy = busy;
  last_cycle_.period = cycles_.cycle_period();
  last_cycle_.overran = cycles_.end_cycle(busy);
  counters_.send_cycles = cycles_.total_cycles();
  counters_.send_cycle_overruns = cycles_.total_overruns();
  counters_.max_send_cycle_us = static_cast<uint64_t>(cycles_.max_cycle_ever().count());
  for (size_t i = 0; i < sinks_.size(); ++i)
    if (auto text = alerts_.observe(i, sinks_[i]->name(), dropped_by(*sinks_[i]), last_cycle_, now))
      write_alert(*text);
  if (cycles_.period_due(now)) write_stat_line(now);
}

void exporter::finish_cycles(steady::time_point now) {
  for (size_t i = 0; i < sinks_.size(); ++i)
    if (auto text = alerts_.finish(i, sinks_[i]->name(), last_cycle_))
      write_alert(*text);
  if (cycles_.period_cycles() > 0) write_stat_line(now); // the last, partial period
}

void exporter::write_stat_line(steady::time_point now) {
  const send_cycle_period p = cycles_.take_period(now);
  if (!opts_.stat_log) return;
  if (opts_.stat_log->append("STAT", std::chrono::system_clock::now(), format_nflw_stats(p)))
    ++counters_.stat_lines;
}

void exporter::write_alert(const std::string& text) {
  spdlog::debug("{}", text);
  if (opts_.alert_log && opts_.alert_log->append("ALERT", std::chrono::system_clock::now(), text))
    ++counters_.alert_lines;
}

void exporter::publish_counters(stage_stats& stats) const {
  std::string p = "exporter." + opts_.ch.name() + "." + std::to_string(opts_.instance) + ".";
  stats.set(p + "batches", counters_.batches);
  stats.set(p + "records", counters_.records);
  stats.set(p + "bad_messages", counters_.bad_messages);
  stats.set(p + "foreign_batches", counters_.foreign_batches);
  stats.set(p + "foreign_records", counters_.foreign_records);
  stats.set(p + "sequence_gaps", counters_.sequence_gaps);
  stats.set(p + "upstream_dropped", counters_.upstream_dropped);
  if (opts_.delivery) {
    const auto& d = opts_.delivery->record();
    stats.set(p + "restarts", d.incarnations > 0 ? d.incarnations - 1 : 0);
    stats.set(p + "lost_in_process", d.lost_in_process);
    stats.set(p + "lost_in_transit", d.lost_in_transit);
  }
  stats.set(p + "send_cycles", counters_.send_cycles);
  stats.set(p + "send_cycle_overruns", counters_.send_cycle_overruns);
  stats.set(p + "max_send_cycle_us", counters_.max_send_cycle_us);
  stats.set(p + "stat_lines", counters_.stat_lines);
  stats.set(p + "alert_lines", counters_.alert_lines);
  for (const auto& s : sinks_)
    for (const auto& c : s->counters())
      stats.set(p + s->name() + "." + c.name + (c.label.empty() ? "" : "{" + c.label + "}"),
                c.value);
}

} // namespace metaprobe
