// SPDX-License-Identifier: Apache-2.0
#pragma once
// One memory budget per capture process (`memory_budget`): the bytes that
// traffic makes metaprobe hold — flow table slots, TCP out-of-order
// buffers, bytes held for detection by content, IP reassembly and every
// parser's buffers — are charged to it, by every shard, and the stages
// react to its pressure (docs/limits.md, "Memory budget"):
//
//   level     used/limit   reaction
//   normal    < 70 %       none
//   tight     >= 70 %      new flows are lean: no out-of-order buffering,
//                          little held for detection, their parsers may
//                          buffer at most lean_parser_bytes (else the flow
//                          is left, counted); no new IP datagrams in
//                          reassembly
//   critical  >= 85 %      + no new flow-table chunk that would reach this
//                          level (already from tight on: new flows take the
//                          slot of an evicted one), and every shard evicts
//                          unconfirmed flows (no completed handshake, no
//                          reply), oldest first, until below critical
//   full      >= 100 %     + confirmed flows are evicted too (oldest
//                          first), and every parser that grows beyond
//                          lean_parser_bytes is left, old flows included
//
// Each reaction is counted per reason (reasons below) and published as
// memory.* counters (console, /metrics).
//
// What is charged is what the stages ask for; the allocator rounds every
// block up, keeps freed pages for a while and fragments, and batches in
// flight between stages are not charged at all. So where the allocator
// can tell (jemalloc, which the service binaries use), the pressure is
// taken from whichever is larger: the charged bytes, or the allocator's
// resident pages beyond those at the budget's creation (sampled at most
// every sample_interval_ms, every idle_sample_interval_ms while the
// pressure is normal, by whichever thread charges). The process's
// RSS then stays within the budget plus what it held at start (code,
// libraries, the pipeline's fixed tables) plus the allocator's metadata:
// the documented constant (docs/limits.md).
//
// Threading: the budget is shared by every stage thread (atomics, relaxed).
// Each owner (a classifier shard, a parser host) charges through its own
// memory_account, which moves its changes to the budget in steps of at
// most `slack` bytes, so the shared counter is written rarely; the error
// of the total is at most slack per account.

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace metaprobe {

enum class memory_pressure : uint8_t { normal = 0, tight = 1, critical = 2, full = 3 };

enum class memory_reason : uint8_t {
  lean_flows = 0,     // flows created lean (pressure tight or worse)
  chunk_refused,      // new flows that took an evicted flow's slot instead of a new chunk
  evicted,            // flows ended (reason evicted) to bring pressure down
  evicted_confirmed,  // ... of which had a completed handshake or a reply
  parser_left,        // flows whose parser was left for growing over its allowance
  frag_refused,       // IP datagrams not taken into reassembly
  heap_purges,        // times the allocator was asked to return freed pages
  count_
};
inline constexpr size_t memory_reason_count = static_cast<size_t>(memory_reason::count_);
inline constexpr std::array<const char*, memory_reason_count> memory_reason_names = {
  "lean_flows", "chunk_refused", "evicted", "evicted_confirmed", "parser_left", "frag_refused",
  "heap_purges"};

class memory_budget {
public:
  static constexpr unsigned tight_percent = 70;
  static constexpr unsigned critical_percent = 85;
  // What a lean flow's parser may buffer (and any parser at pressure full).
  static constexpr size_t lean_parser_bytes = 16 * 1024;
  // What a lean TCP flow may hold while its protocol is looked for.
  static constexpr size_t lean_probe_bytes = 1024;

  explicit memory_budget(uint64_t limit_bytes);
  memory_budget(const memory_budget&) = delete;
  memory_budget& operator=(const memory_budget&) = delete;

  uint64_t limit() const { return limit_; }
  // Bytes charged now (may be slightly negative transiently: accounts
  // release in steps too).
  int64_t used() const { return used_.load(std::memory_order_relaxed); }
  uint64_t peak() const { return peak_.load(std::memory_order_relaxed); }
  // The allocator's resident bytes beyond those at creation (0 without
  // jemalloc), as last sampled, and its peak.
  int64_t heap_over() const { return heap_over_.load(std::memory_order_relaxed); }
  uint64_t heap_over_peak() const { return heap_over_peak_.load(std::memory_order_relaxed); }
  memory_pressure pressure() const {
    // The allocator's view includes freed pages that the next purge
    // (relieve) returns: it makes memory full only 10 % beyond the limit.
    const int64_t charged = used(), heap = heap_over();
    const int64_t u = std::max(charged, heap);
    if (u < tight_)
      return memory_pressure::normal;
    if (u < critical_)
      return memory_pressure::tight;
    const bool full = charged >= static_cast<int64_t>(limit_) || heap >= heap_full_;
    return full ? memory_pressure::full : memory_pressure::critical;
  }
  // Whether charging `bytes` more would bring the pressure to `level`.
  bool would_reach(int64_t bytes, memory_pressure level) const {
    const int64_t u = std::max(used(), heap_over()) + bytes;
    switch (level) {
      case memory_pressure::normal: return true;
      case memory_pressure::tight: return u >= tight_;
      case memory_pressure::critical: return u >= critical_;
      case memory_pressure::full: return u >= static_cast<int64_t>(limit_);
    }
    return true;
  }

  void charge(int64_t delta);
  void count(memory_reason r, uint64_t n = 1) {
    reasons_[static_cast<size_t>(r)].fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t counted(memory_reason r) const {
    return reasons_[static_cast<size_t>(r)].load(std::memory_order_relaxed);
  }

  // Pressure critical: asks the allocator to give the pages of freed
  // memory back to the system now (jemalloc keeps them for seconds
  // otherwise, and a flood frees much as it evicts), at most every
  // purge_interval_ms over all callers. Any thread.
  static constexpr int64_t purge_interval_ms = 50;
  void relieve();
  // Samples the allocator now if sample_interval_ms passed (any thread;
  // charge() calls it); every idle_sample_interval_ms while the pressure
  // is normal (a sample refreshes the allocator's statistics: about 30 k
  // instructions).
  static constexpr int64_t sample_interval_ms = 10;
  static constexpr int64_t idle_sample_interval_ms = 100;
  void sample_heap();

  // The allocator's own view, where it has one (jemalloc): bytes allocated
  // by the program and bytes of resident allocator pages. False otherwise.
  static bool heap_stats(uint64_t& allocated, uint64_t& resident);

  // The default budget: half of the smaller of the machine's memory and
  // the cgroup's limit (v2 memory.max, v1 memory.limit_in_bytes); `why`
  // says which was used.
  static uint64_t default_limit(std::string& why);

private:
  uint64_t limit_;
  int64_t tight_;
  int64_t critical_;
  int64_t heap_full_;
  std::atomic<int64_t> used_{0};
  std::atomic<uint64_t> peak_{0};
  std::atomic<int64_t> last_purge_ms_{0};
  std::atomic<int64_t> last_sample_ms_{0};
  std::atomic<int64_t> heap_over_{0};
  std::atomic<uint64_t> heap_over_peak_{0};
  uint64_t heap_base_ = 0;   // allocator resident bytes at creation
  bool heap_known_ = false;
  std::array<std::atomic<uint64_t>, memory_reason_count> reasons_{};
};

// One owner's share of the budget (one thread). A null budget: nothing is
// charged. Changes reach the budget once they add up to `slack` bytes;
// destruction (or release_all) gives back everything this account charged.
class memory_account {
public:
  static constexpr int64_t slack = 64 * 1024;

  explicit memory_account(memory_budget* budget = nullptr) : budget_(budget) {}
  memory_account(const memory_account&) = delete;
  memory_account& operator=(const memory_account&) = delete;
  ~memory_account() { release_all(); }

  void add(int64_t delta) {
    if (!budget_)
      return;
    total_ += delta;
    pending_ += delta;
    if (pending_ >= slack || pending_ <= -slack)
      flush();
  }
  void flush() {
    if (budget_ && pending_ != 0) {
      budget_->charge(pending_);
      pending_ = 0;
    }
  }
  void release_all() {
    add(-total_);
    flush();
  }
  // Bytes this account holds (charged or pending).
  int64_t total() const { return total_; }
  memory_budget* budget() const { return budget_; }
  memory_pressure pressure() const {
    return budget_ ? budget_->pressure() : memory_pressure::normal;
  }

private:
  memory_budget* budget_;
  int64_t total_ = 0;
  int64_t pending_ = 0;
};

} // namespace metaprobe
