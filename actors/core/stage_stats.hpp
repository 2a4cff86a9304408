// SPDX-License-Identifier: Apache-2.0
#pragma once
// Counters every stage of a process publishes for status output, the
// end-of-run summary, the control endpoint and /metrics.
// Stages write their own counters under their own prefix; readers take a
// snapshot. Thread-safe; written once per batch, not per packet.
// actors() holds the per-actor inspection entries (core/actor_registry.hpp).

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "core/actor_registry.hpp"

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

  actor_registry& actors() { return actors_; }
  const actor_registry& actors() const { return actors_; }

private:
  actor_registry actors_;
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> values_;
};

} // namespace metaprobe
