// SPDX-License-Identifier: Apache-2.0
#include "core/memory_budget.hpp"

#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>

namespace metaprobe {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

void raise_peak(std::atomic<uint64_t>& peak, uint64_t v) {
  uint64_t p = peak.load(std::memory_order_relaxed);
  while (v > p && !peak.compare_exchange_weak(p, v, std::memory_order_relaxed)) {
  }
}

} // namespace

memory_budget::memory_budget(uint64_t limit_bytes)
  : limit_(std::max<uint64_t>(limit_bytes, 1)),
    tight_(static_cast<int64_t>(limit_ / 100 * tight_percent)),
    critical_(static_cast<int64_t>(limit_ / 100 * critical_percent)),
    heap_full_(static_cast<int64_t>(limit_ / 100 * 110)) {
  uint64_t allocated = 0;
  heap_known_ = heap_stats(allocated, heap_base_);
}

void memory_budget::charge(int64_t delta) {
  int64_t now = used_.fetch_add(delta, std::memory_order_relaxed) + delta;
  if (now > 0)
    raise_peak(peak_, static_cast<uint64_t>(now));
  sample_heap();
}

void memory_budget::sample_heap() {
  if (!heap_known_)
    return;
  const int64_t now = now_ms();
  int64_t last = last_sample_ms_.load(std::memory_order_relaxed);
  const int64_t every =
    pressure() == memory_pressure::normal ? idle_sample_interval_ms : sample_interval_ms;
  if (now - last < every ||
      !last_sample_ms_.compare_exchange_strong(last, now, std::memory_order_relaxed))
    return;
  uint64_t allocated = 0, resident = 0;
  if (!heap_stats(allocated, resident))
    return;
  const int64_t over = resident > heap_base_ ? static_cast<int64_t>(resident - heap_base_) : 0;
  heap_over_.store(over, std::memory_order_relaxed);
  raise_peak(heap_over_peak_, static_cast<uint64_t>(over));
}

namespace {

// jemalloc's mallctl when the process runs on jemalloc (the service
// binaries link it, core CMakeLists METAPROBE_JEMALLOC), else nullptr.
using mallctl_fn = int (*)(const char*, void*, size_t*, void*, size_t);
mallctl_fn find_mallctl() {
  static const mallctl_fn fn = reinterpret_cast<mallctl_fn>(::dlsym(RTLD_DEFAULT, "mallctl"));
  return fn;
}

void purge_heap() {
  if (mallctl_fn mallctl = find_mallctl()) {
    // "arena.<MALLCTL_ARENAS_ALL>.purge": every arena's dirty and muzzy pages
    mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
    return;
  }
  ::malloc_trim(0); // glibc
}

// First number in the file, 0 when absent, unreadable or "max".
uint64_t read_limit(const char* path) {
  std::ifstream in(path);
  std::string word;
  if (!(in >> word) || word.empty() || word[0] < '0' || word[0] > '9')
    return 0;
  try {
    return std::stoull(word);
  } catch (...) {
    return 0;
  }
}

} // namespace

void memory_budget::relieve() {
  const int64_t now = now_ms();
  int64_t last = last_purge_ms_.load(std::memory_order_relaxed);
  if (now - last < purge_interval_ms ||
      !last_purge_ms_.compare_exchange_strong(last, now, std::memory_order_relaxed))
    return;
  purge_heap();
  count(memory_reason::heap_purges);
  last_sample_ms_.store(0, std::memory_order_relaxed); // see what the purge gave back
  sample_heap();
}

bool memory_budget::heap_stats(uint64_t& allocated, uint64_t& resident) {
  mallctl_fn mallctl = find_mallctl();
  if (!mallctl)
    return false;
  uint64_t epoch = 1;
  size_t len = sizeof(epoch);
  mallctl("epoch", &epoch, &len, &epoch, len); // refresh the statistics
  size_t a = 0, r = 0;
  len = sizeof(size_t);
  if (mallctl("stats.allocated", &a, &len, nullptr, 0) != 0)
    return false;
  len = sizeof(size_t);
  if (mallctl("stats.resident", &r, &len, nullptr, 0) != 0)
    return false;
  allocated = a;
  resident = r;
  return true;
}

uint64_t memory_budget::default_limit(std::string& why) {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGESIZE);
  uint64_t machine = pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page)
                                           : uint64_t{4} << 30;
  uint64_t base = machine;
  why = "50% of the machine's memory";
  // cgroup v2, then v1; v1 reports "no limit" as a huge number.
  for (const char* path : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    uint64_t l = read_limit(path);
    if (l > 0 && l < base) {
      base = l;
      why = std::string("50% of the cgroup limit (") + path + ")";
      break;
    }
  }
  return base / 2;
}

} // namespace metaprobe
