// SPDX-License-Identifier: Apache-2.0
#include "exporters/ipfix/ipfix_sink_base.hpp"

#include "metaprobe/v1/records.pb.h"

namespace metaprobe::ipfix {

ipfix_sink_base::ipfix_sink_base(std::string name, std::string label, uint32_t kind_mask,
                                 encoder_config ec)
  : name_(std::move(name)), label_(std::move(label)), kind_mask_(kind_mask),
    encoder_(std::move(ec), [this](const uint8_t* d, size_t n, uint32_t r) { deliver(d, n, r); }) {}

uint32_t ipfix_sink_base::unix_now() {
  return static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count());
}

void ipfix_sink_base::add(const v1::Record& rec) {
  const int idx = template_index(rec);
  if (idx < 0 || !(kind_mask_ & (1u << (static_cast<unsigned>(idx) >> 1)))) return;
  ++c_.records_in;
  if (!admit()) {
    ++c_.records_dropped;
    encoder_.note_dropped(1);
    return;
  }
  if (encoder_.add(idx, rec) == ipfix_encoder::add_result::too_large) {
    ++c_.records_dropped;
    ++c_.records_too_large;
  }
}

void ipfix_sink_base::send_templates() {
  encoder_.add_templates(kind_mask_);
  ++c_.template_sends;
}

void ipfix_sink_base::send_stats() {
  encoder_.flush(); // the figures cover every record before the statistics record
  exporter_stats s;
  s.messages = c_.messages_sent;
  s.octets = c_.octets_sent;
  s.records = c_.records_sent;
  s.not_sent = c_.records_dropped;
  encoder_.add_exporter_stats(s);
}

void ipfix_sink_base::periodic_stats(std::chrono::system_clock::time_point now) {
  if (stats_interval_.count() <= 0) return;
  if (last_stats_ == std::chrono::system_clock::time_point{}) {
    last_stats_ = now;
  } else if (now - last_stats_ >= stats_interval_) {
    send_stats();
    last_stats_ = now;
  }
}

std::vector<sink_counter> ipfix_sink_base::counters() const {
  const encoder_counters& e = encoder_.counters();
  std::vector<sink_counter> out = {
    {"records_in", c_.records_in, label_},
    {"records_sent", c_.records_sent, label_},
    {"records_dropped", c_.records_dropped, label_},
    {"records_too_large", c_.records_too_large, label_},
    {"messages_sent", c_.messages_sent, label_},
    {"octets_sent", c_.octets_sent, label_},
    {"send_errors", c_.send_errors, label_},
    {"template_sends", c_.template_sends, label_},
    {"strings_truncated", e.strings_truncated, label_},
    {"invalid_utf8", e.invalid_utf8, label_},
    {"bad_address", e.bad_address, label_},
  };
  extra_counters(out);
  return out;
}

encoder_config make_encoder_config(const ipfix_sink_config& cfg, size_t max_message_size, bool stats) {
  encoder_config ec;
  ec.max_message_size = max_message_size;
  ec.observation_domain_id = cfg.observation_domain_id;
  ec.max_var_length = cfg.max_string_length;
  ec.exporter_stats = stats;
  return ec;
}

} // namespace metaprobe::ipfix
