// SPDX-License-Identifier: Apache-2.0
#pragma once
// What metaprobe-exporter drives: a sink takes records of its group and
// writes them out (IPFIX to collectors/files, text files).
//
// Threading: one sink is used by one thread (the exporter's main loop).
// Ownership: records are borrowed for the duration of the call.
// Errors: a sink never throws from add()/tick(); I/O failures are counted
// and logged, and records that cannot be delivered are counted as dropped.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "metaprobe/v1/records.pb.h"

namespace metaprobe {

struct sink_counter {
  std::string name;   // e.g. "records_sent", "records_dropped"
  uint64_t value = 0;
  std::string label;  // e.g. collector address or file path, may be empty
};

class sink {
public:
  virtual ~sink() = default;
  // Human-readable identity, e.g. "ipfix:udp:127.0.0.1:4739".
  virtual std::string name() const = 0;
  // Accepts one record. A record of a kind the sink does not export is
  // ignored (not an error, not counted as a drop).
  virtual void add(const v1::Record& rec) = 0;
  // Periodic work (template refresh, file rotation, statistics); `now` is
  // wall-clock time.
  virtual void tick(std::chrono::system_clock::time_point now) = 0;
  // Pushes out everything buffered (end of input, shutdown). Finished text
  // files are renamed to their final name.
  virtual void flush() = 0;
  virtual std::vector<sink_counter> counters() const = 0;
  // Records accepted by add() that have not left this process yet (in an
  // unsent message, a connection queue, a write buffer): what a crash now
  // would lose. 0 after flush(). Loss accounting across an exporter crash
  // relies on it (exporters/delivery_state.hpp).
  virtual uint64_t held_records() const = 0;
};

} // namespace metaprobe
