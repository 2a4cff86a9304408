// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the UDP, TCP and file IPFIX sinks share: kind filtering, one
// encoder (= one transport session's state) and the counters.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "exporters/ipfix/ipfix_encoder.hpp"
#include "exporters/ipfix/ipfix_sinks.hpp"
#include "exporters/sink.hpp"

namespace metaprobe::ipfix {

struct sink_counters {
  uint64_t records_in = 0;        // records of the exported kinds received
  uint64_t records_sent = 0;      // in messages written / sent successfully
  uint64_t records_dropped = 0;   // every record lost, whatever the reason
  uint64_t records_too_large = 0; // ... of which larger than a message
  uint64_t messages_sent = 0;
  uint64_t octets_sent = 0;
  uint64_t send_errors = 0;       // failed send()/write() calls
  uint64_t template_sends = 0;    // times the templates were (re)sent
};

class ipfix_sink_base : public sink {
public:
  std::string name() const override { return name_; }
  void add(const v1::Record& rec) final;
  std::vector<sink_counter> counters() const override;
  // The open message's records plus those the transport still queues.
  uint64_t held_records() const final { return encoder_.pending_records() + queued_records(); }

  const sink_counters& stats() const { return c_; }
  const ipfix_encoder& encoder() const { return encoder_; }

protected:
  ipfix_sink_base(std::string name, std::string label, uint32_t kind_mask, encoder_config ec);

  // A finished message of `records` data records: send or write it.
  virtual void deliver(const uint8_t* data, size_t len, uint32_t records) = 0;
  // Called before a record is encoded; false: drop it (counted).
  virtual bool admit() { return true; }
  // Extra counters of the transport.
  virtual void extra_counters(std::vector<sink_counter>&) const {}
  // Records in finished messages the transport has not sent yet.
  virtual uint64_t queued_records() const { return 0; }

  void send_templates();
  void send_stats();
  // The statistics rule of every sink: with stats_interval_ > 0 the first
  // call starts the interval, later calls send a statistics record when
  // stats_interval_ has passed since the last one.
  void periodic_stats(std::chrono::system_clock::time_point now);
  static uint32_t unix_now();

  std::string name_;
  std::string label_;
  uint32_t kind_mask_;
  ipfix_encoder encoder_;
  sink_counters c_;
  std::chrono::seconds stats_interval_{0}; // set by the transport; 0: no statistics records
  std::chrono::system_clock::time_point last_stats_{};
};

// encoder_config for a sink from its group config.
encoder_config make_encoder_config(const ipfix_sink_config& cfg, size_t max_message_size,
                                   bool stats);

} // namespace metaprobe::ipfix
