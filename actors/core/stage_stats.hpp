// SPDX-License-Identifier: Apache-2.0
#pragma once
// Counters every stage of a process publishes for status output, the
// end-of-run summary and (later) the control endpoint and /metrics.
// Stages write their own counters under their own prefix; readers take a
// snapshot. Thread-safe; written once per batch, not per packet.

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace metaprobe {

class stage_stats {
public:
  void set(const std::string& name, uint64_t value) {
    std::lock_guard<std::mutex> lock(mu_);
    values_[name] = value;
  }
  void add(const std::string& name, uint64_t delta) {
    std::lock_guard<std::mutex> lock(mu_);
    values_[name] += delta;
  }
  std::map<std::string, uint64_t> snapshot() const {
    std::lock_guard<std::mutex> lock(mu_);
    return values_;
  }
  uint64_t get(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = values_.find(name);
    return it == values_.end() ? 0 : it->second;
  }

private:
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> values_;
};

} // namespace metaprobe
