// SPDX-License-Identifier: Apache-2.0
#pragma once
// The subscriber map the correlator uses, replaceable while capture runs
// (SIGHUP reloads `subscribers_file`). The correlator checks version() once
// per batch and takes the new map with current(); a map stays alive while
// the correlator still holds it, so a replacement never frees one in use.
//
// Threading: replace() from any thread (the capture's reload thread);
// current() and version() from any thread.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "core/subscribers.hpp"

namespace metaprobe {

class subscriber_source {
public:
  explicit subscriber_source(std::shared_ptr<const subscriber_map> initial = nullptr)
    : map_(std::move(initial)) {}

  // The map now in force; null when none is configured.
  std::shared_ptr<const subscriber_map> current() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return map_;
  }
  // Puts `next` in force (null: no subscriber map).
  void replace(std::shared_ptr<const subscriber_map> next) {
    std::lock_guard<std::mutex> lock(mutex_);
    map_ = std::move(next);
    version_.fetch_add(1, std::memory_order_release);
  }
  // Changes on every replace().
  uint64_t version() const { return version_.load(std::memory_order_acquire); }

private:
  mutable std::mutex mutex_;
  std::shared_ptr<const subscriber_map> map_;
  std::atomic<uint64_t> version_{0};
};

} // namespace metaprobe
