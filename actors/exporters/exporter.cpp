// SPDX-License-Identifier: Apache-2.0
#include "exporters/exporter.hpp"

#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "metaprobe/v1/envelope.pb.h"

namespace metaprobe {

exporter::exporter(exporter_options opts, std::vector<std::unique_ptr<sink>> sinks)
  : opts_(std::move(opts)), sinks_(std::move(sinks)) {
}

exporter::~exporter() = default;

bool exporter::handle(const void* data, size_t len) {
  v1::RecordBatch batch;
  if (!batch.ParseFromArray(data, static_cast<int>(len))) {
    ++counters_.bad_messages;
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
  try {
    sock.connect(opts_.endpoint);
  } catch (const zmq::error_t& e) {
    error = "cannot connect to " + opts_.endpoint + ": " + e.what();
    return false;
  }
  spdlog::info("exporter {}#{}: pulling from {}", opts_.ch.name(), opts_.instance, opts_.endpoint);
  auto next_tick = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point drain_until{};
  bool draining = false;
  for (;;) {
    if (stop.load() && !draining) {
      draining = true;
      drain_until = std::chrono::steady_clock::now() + opts_.drain;
    }
    zmq::pollitem_t items[] = {{sock.handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 1, draining ? std::chrono::milliseconds(50) : opts_.tick);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR)
        throw;
      continue; // a signal (stop request) interrupted the wait
    }
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
    auto now = std::chrono::steady_clock::now();
    if (now >= next_tick) {
      auto wall = std::chrono::system_clock::now();
      if (opts_.on_tick)
        opts_.on_tick(sinks_);
      for (auto& s : sinks_)
        s->tick(wall);
      if (opts_.delivery)
        opts_.delivery->on_held(held());
      next_tick = now + opts_.tick;
    }
    if (eos)
      break;
    if (draining && (!got || now >= drain_until))
      break;
  }
  for (auto& s : sinks_)
    s->flush();
  if (opts_.delivery)
    opts_.delivery->clean_exit(held());
  return true;
}

uint64_t exporter::held() const {
  uint64_t most = 0;
  for (const auto& s : sinks_)
    most = std::max(most, s->held_records());
  return most;
}

void exporter::publish_counters(stage_stats& stats) const {
  std::string p = "exporter." + opts_.ch.name() + "." + std::to_string(opts_.instance) + ".";
  stats.set(p + "batches", counters_.batches);
  stats.set(p + "records", counters_.records);
  stats.set(p + "bad_messages", counters_.bad_messages);
  stats.set(p + "sequence_gaps", counters_.sequence_gaps);
  stats.set(p + "upstream_dropped", counters_.upstream_dropped);
  if (opts_.delivery) {
    const auto& d = opts_.delivery->record();
    stats.set(p + "restarts", d.incarnations > 0 ? d.incarnations - 1 : 0);
    stats.set(p + "lost_in_process", d.lost_in_process);
    stats.set(p + "lost_in_transit", d.lost_in_transit);
  }
  for (const auto& s : sinks_)
    for (const auto& c : s->counters())
      stats.set(p + s->name() + "." + c.name + (c.label.empty() ? "" : "{" + c.label + "}"),
                c.value);
}

} // namespace metaprobe
