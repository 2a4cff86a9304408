// SPDX-License-Identifier: Apache-2.0
#include "exporters/ipfix/ipfix_encoder.hpp"

#include <algorithm>
#include <chrono>

#include "exporters/ipfix/field_writer.hpp"
#include "metaprobe/v1/records.pb.h"

namespace metaprobe::ipfix {

namespace {
constexpr uint16_t template_set_id = 2;
constexpr uint16_t options_template_set_id = 3;

struct stats_field {
  uint16_t id;
  uint16_t length;
};
// scope first (observationDomainId), then the counters
constexpr stats_field stats_fields[] = {{149, 4}, {41, 8}, {40, 8}, {42, 8}, {166, 8}};
constexpr size_t stats_record_size = 4 + 4 * 8;
} // namespace

ipfix_encoder::ipfix_encoder(encoder_config cfg, message_handler on_message)
  : cfg_(std::move(cfg)), on_message_(std::move(on_message)),
    cap_(std::clamp(cfg_.max_message_size, min_message_size, max_message_size_limit)),
    buf_(cap_) {}

uint32_t ipfix_encoder::now() const {
  if (cfg_.clock) return cfg_.clock();
  return static_cast<uint32_t>(
    std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count());
}

void ipfix_encoder::put16(size_t at, uint16_t v) {
  buf_[at] = static_cast<uint8_t>(v >> 8);
  buf_[at + 1] = static_cast<uint8_t>(v);
}

void ipfix_encoder::put32(size_t at, uint32_t v) {
  buf_[at] = static_cast<uint8_t>(v >> 24);
  buf_[at + 1] = static_cast<uint8_t>(v >> 16);
  buf_[at + 2] = static_cast<uint8_t>(v >> 8);
  buf_[at + 3] = static_cast<uint8_t>(v);
}

void ipfix_encoder::open_message() {
  len_ = header_size;
  set_id_ = 0;
  msg_records_ = 0;
  msg_stats_ = 0;
  msg_seq_ = records_total_;
}

void ipfix_encoder::close_set() {
  if (set_id_ == 0) return;
  put16(set_start_ + 2, static_cast<uint16_t>(len_ - set_start_));
  set_id_ = 0;
}

bool ipfix_encoder::ensure_set(uint16_t id, size_t need) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (len_ == 0) open_message();
    if (set_id_ == id && cap_ - len_ >= need) return true;
    if (set_id_ != id && cap_ - len_ >= 4 + need) {
      close_set();
      set_start_ = len_;
      set_id_ = id;
      put16(len_, id);
      put16(len_ + 2, 0);
      len_ += 4;
      return true;
    }
    if (message_empty()) return false;
    flush();
  }
  return false;
}

ipfix_encoder::add_result ipfix_encoder::add(const v1::Record& rec) {
  const int idx = template_index(rec);
  if (idx < 0) return add_result::no_kind;
  return add(idx, rec);
}

ipfix_encoder::add_result ipfix_encoder::add(int idx, const v1::Record& rec) {
  if (idx < 0 || static_cast<size_t>(idx) >= template_count) return add_result::no_kind;
  const template_def& t = template_at(static_cast<size_t>(idx));
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (len_ == 0) open_message();
    const bool fresh = message_empty();
    const size_t save_len = len_, save_start = set_start_;
    const uint16_t save_set = set_id_;
    if (set_id_ != t.template_id) {
      if (cap_ - len_ < 4 + t.min_record_size()) {
        if (fresh) break;
        flush();
        continue;
      }
      close_set();
      set_start_ = len_;
      set_id_ = t.template_id;
      put16(len_, t.template_id);
      put16(len_ + 2, 0);
      len_ += 4;
    }
    field_writer w(buf_.data() + len_, buf_.data() + cap_, cfg_.max_var_length);
    encode_fields(idx, rec, w);
    if (!w.overflow()) {
      len_ = static_cast<size_t>(w.pos() - buf_.data());
      if (msg_records_ == 0) msg_seq_ = records_total_;
      ++msg_records_;
      ++records_total_;
      ++counters_.records_encoded;
      counters_.strings_truncated += w.stats().truncated;
      counters_.invalid_utf8 += w.stats().invalid_utf8;
      counters_.bad_address += w.stats().bad_address;
      return add_result::added;
    }
    // roll back: the set header we may have opened and the partial record
    len_ = save_len;
    set_start_ = save_start;
    set_id_ = save_set;
    if (fresh) break;
    flush();
  }
  ++records_total_; // lost records count in the sequence number
  ++counters_.records_too_large;
  return add_result::too_large;
}

void ipfix_encoder::add_templates(uint32_t kind_mask) {
  for (size_t i = 0; i < template_count; ++i) {
    const template_def& t = template_at(i);
    if (!(kind_mask & kind_bit(t.kind))) continue;
    const size_t need = t.template_record_size();
    if (!ensure_set(template_set_id, need)) continue; // cannot happen: cap_ >= 256
    put16(len_, t.template_id);
    put16(len_ + 2, t.field_count);
    len_ += 4;
    for (uint16_t f = 0; f < t.field_count; ++f) {
      const field_def& fd = t.fields[f];
      put16(len_, static_cast<uint16_t>(fd.id | (fd.pen ? 0x8000 : 0)));
      put16(len_ + 2, fd.length);
      len_ += 4;
      if (fd.pen) {
        put32(len_, fd.pen);
        len_ += 4;
      }
    }
    ++counters_.template_records;
  }
  if (cfg_.exporter_stats) {
    const size_t n = sizeof(stats_fields) / sizeof(stats_fields[0]);
    if (ensure_set(options_template_set_id, 6 + 4 * n)) {
      put16(len_, exporter_stats_template_id);
      put16(len_ + 2, static_cast<uint16_t>(n));
      put16(len_ + 4, 1); // scope field count
      len_ += 6;
      for (const stats_field& f : stats_fields) {
        put16(len_, f.id);
        put16(len_ + 2, f.length);
        len_ += 4;
      }
      ++counters_.template_records;
    }
  }
}

void ipfix_encoder::add_exporter_stats(const exporter_stats& s) {
  if (!cfg_.exporter_stats) return;
  if (!ensure_set(exporter_stats_template_id, stats_record_size)) return;
  put32(len_, cfg_.observation_domain_id);
  len_ += 4;
  for (uint64_t v : {s.messages, s.octets, s.records, s.not_sent}) {
    put32(len_, static_cast<uint32_t>(v >> 32));
    put32(len_ + 4, static_cast<uint32_t>(v));
    len_ += 8;
  }
  if (msg_records_ == 0) msg_seq_ = records_total_;
  ++msg_records_;
  ++msg_stats_;
  ++records_total_;
  ++counters_.stats_records;
}

void ipfix_encoder::flush() {
  if (len_ == 0) return;
  if (message_empty()) {
    len_ = 0;
    return;
  }
  close_set();
  put16(0, 10);
  put16(2, static_cast<uint16_t>(len_));
  put32(4, now());
  put32(8, static_cast<uint32_t>(msg_records_ ? msg_seq_ : records_total_));
  put32(12, cfg_.observation_domain_id);
  const size_t len = len_;
  const uint32_t records = msg_records_ - msg_stats_;
  len_ = 0;
  msg_records_ = 0;
  msg_stats_ = 0;
  ++counters_.messages;
  counters_.octets += len;
  if (on_message_) on_message_(buf_.data(), len, records);
}

uint32_t ipfix_encoder::reset() {
  const uint32_t discarded = msg_records_ - msg_stats_;
  len_ = 0;
  set_id_ = 0;
  msg_records_ = 0;
  msg_stats_ = 0;
  records_total_ = 0;
  msg_seq_ = 0;
  return discarded;
}

} // namespace metaprobe::ipfix
