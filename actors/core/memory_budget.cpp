// SPDX-License-Identifier: Apache-2.0
#include "core/memory_budget.hpp"

#include <unistd.h>

#include <algorithm>
#include <fstream>

namespace metaprobe {

memory_budget::memory_budget(uint64_t limit_bytes)
  : limit_(std::max<uint64_t>(limit_bytes, 1)),
    tight_(static_cast<int64_t>(limit_ / 100 * tight_percent)),
    critical_(static_cast<int64_t>(limit_ / 100 * critical_percent)) {}

void memory_budget::charge(int64_t delta) {
  int64_t now = used_.fetch_add(delta, std::memory_order_relaxed) + delta;
  if (now > 0) {
    auto u = static_cast<uint64_t>(now);
    uint64_t p = peak_.load(std::memory_order_relaxed);
    while (u > p && !peak_.compare_exchange_weak(p, u, std::memory_order_relaxed)) {
    }
  }
}

namespace {

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
