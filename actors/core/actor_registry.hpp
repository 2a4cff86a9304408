// SPDX-License-Identifier: Apache-2.0
#pragma once
// Runtime inspection of the actors of one process: every actor registers
// once (name, stage kind, shard) and keeps its entry's counters up to date;
// the control endpoint and /metrics read snapshots.
//
// Cost on the hot path: one relaxed atomic add per handled or sent batch
// (never per packet) and one relaxed store of the mailbox depth. Entries are
// never removed while the process runs: an actor that finished keeps its
// final counters (and `finished` set).
//
// Threading: add() and snapshot() may be called from any thread; an entry's
// counters are written by its actor only. Ownership: the registry owns its
// entries; actors hold them by shared_ptr, so an entry outlives a registry
// that goes first.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace metaprobe {

class actor_entry {
public:
  actor_entry(std::string name, std::string kind, int shard)
    : name_(std::move(name)), kind_(std::move(kind)), shard_(shard) {}

  const std::string& name() const { return name_; }   // "parser:http"
  const std::string& kind() const { return kind_; }   // stage: "parser"
  int shard() const { return shard_; }                // -1: not sharded

  // Written by the owning actor.
  void received(uint64_t n = 1) { in_.fetch_add(n, std::memory_order_relaxed); }
  void sent(uint64_t n = 1) { out_.fetch_add(n, std::memory_order_relaxed); }
  void set_sent_total(uint64_t total) { out_.store(total, std::memory_order_relaxed); }
  void set_drops(uint64_t total) { drops_.store(total, std::memory_order_relaxed); }
  void set_mailbox_depth(uint64_t n) { depth_.store(n, std::memory_order_relaxed); }
  void set_finished() { finished_.store(true, std::memory_order_relaxed); }
  // Keeps the most recent error text (bounded to 256 bytes).
  void set_error(std::string text) {
    if (text.size() > 256)
      text.resize(256);
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::move(text);
    ++errors_;
  }

  uint64_t messages_in() const { return in_.load(std::memory_order_relaxed); }
  uint64_t messages_out() const { return out_.load(std::memory_order_relaxed); }
  uint64_t drops() const { return drops_.load(std::memory_order_relaxed); }
  uint64_t mailbox_depth() const { return depth_.load(std::memory_order_relaxed); }
  bool finished() const { return finished_.load(std::memory_order_relaxed); }
  std::string last_error() const {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }
  uint64_t errors() const {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }

private:
  const std::string name_;
  const std::string kind_;
  const int shard_;
  std::atomic<uint64_t> in_{0};
  std::atomic<uint64_t> out_{0};
  std::atomic<uint64_t> drops_{0};
  std::atomic<uint64_t> depth_{0};
  std::atomic<bool> finished_{false};
  mutable std::mutex mu_;
  std::string error_;
  uint64_t errors_ = 0;
};

using actor_entry_ptr = std::shared_ptr<actor_entry>;

// One actor as read by the control endpoint.
struct actor_snapshot {
  std::string name;
  std::string kind;
  int shard = -1;
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;
  uint64_t drops = 0;
  uint64_t mailbox_depth = 0;
  uint64_t errors = 0;
  double rate = 0;         // messages in per second over the last sample window
  bool finished = false;
  std::string last_error;
};

class actor_registry {
public:
  // Registers an actor; entries keep registration order.
  actor_entry_ptr add(std::string name, std::string kind, int shard = -1) {
    auto e = std::make_shared<actor_entry>(std::move(name), std::move(kind), shard);
    std::lock_guard<std::mutex> lock(mu_);
    entries_.push_back({e, 0, 0});
    return e;
  }

  // Samples every entry's messages_in; rates are computed over the time
  // between two samples (the control server samples about once a second).
  void sample(std::chrono::steady_clock::time_point now) {
    std::lock_guard<std::mutex> lock(mu_);
    const double dt = last_sample_ == std::chrono::steady_clock::time_point{}
                        ? 0
                        : std::chrono::duration<double>(now - last_sample_).count();
    for (auto& s : entries_) {
      uint64_t in = s.entry->messages_in();
      s.rate = dt > 0 ? static_cast<double>(in - s.sampled_in) / dt : 0;
      s.sampled_in = in;
    }
    last_sample_ = now;
  }

  std::vector<actor_snapshot> snapshot() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<actor_snapshot> out;
    out.reserve(entries_.size());
    for (const auto& s : entries_) {
      const auto& e = *s.entry;
      out.push_back({e.name(), e.kind(), e.shard(), e.messages_in(), e.messages_out(), e.drops(),
                     e.mailbox_depth(), e.errors(), s.rate, e.finished(), e.last_error()});
    }
    return out;
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_.size();
  }

private:
  struct slot {
    actor_entry_ptr entry;
    uint64_t sampled_in;
    double rate;
  };
  mutable std::mutex mu_;
  std::vector<slot> entries_;
  std::chrono::steady_clock::time_point last_sample_{};
};

} // namespace metaprobe
