// SPDX-License-Identifier: Apache-2.0
#pragma once
// RFC 7011 message builder for one transport session and observation
// domain. Plain C++: no sockets, no clocks except the injectable `clock`.
//
// - Messages never exceed max_message_size octets (header included) and a
//   data record is never split across messages. A record that does not fit
//   into an empty message is dropped and counted (records_too_large).
// - The header sequence number is the number of data records of this
//   session and domain before the message, dropped records included (so a
//   collector sees drops as a sequence gap). Options (statistics) records
//   are data records and count too.
// - Finished messages go to the message_handler, synchronously, from add(),
//   add_templates(), add_exporter_stats() or flush(). The buffer passed is
//   only valid during the call.
//
// Threading: one encoder is used by one thread. Errors: never throws after
// construction.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "exporters/ipfix/field_table.hpp"

namespace metaprobe::v1 {
class Record;
}

namespace metaprobe::ipfix {

// Options template carrying the RFC 7011 §4.3 style exporter statistics:
// scope observationDomainId (149), then exportedMessageTotalCount (41),
// exportedOctetTotalCount (40), exportedFlowRecordTotalCount (42),
// notSentFlowTotalCount (166).
inline constexpr uint16_t exporter_stats_template_id = 1100;
inline constexpr const char* exporter_stats_kind_name = "exporter_stats";

struct encoder_config {
  size_t max_message_size = 1400; // clamped to [min_message_size, 65535]
  uint32_t observation_domain_id = 0;
  uint32_t max_var_length = 1024; // octets per string / octetArray value
  bool exporter_stats = false;    // send the statistics options template too
  // Export time of a message (unix seconds); default: the system clock.
  std::function<uint32_t()> clock;
};

struct exporter_stats {
  uint64_t messages = 0; // exportedMessageTotalCount
  uint64_t octets = 0;   // exportedOctetTotalCount
  uint64_t records = 0;  // exportedFlowRecordTotalCount
  uint64_t not_sent = 0; // notSentFlowTotalCount
};

struct encoder_counters {
  uint64_t records_encoded = 0;   // data records placed into messages
  uint64_t records_too_large = 0; // dropped: larger than an empty message
  uint64_t messages = 0;          // messages handed to the handler
  uint64_t octets = 0;            // octets handed to the handler
  uint64_t template_records = 0;  // template + options template records
  uint64_t stats_records = 0;     // exporter statistics records
  uint64_t strings_truncated = 0;
  uint64_t invalid_utf8 = 0;
  uint64_t bad_address = 0;
};

// (data, length, flow records in the message). Flow records are the data
// records of add(); statistics records are data records too (they count in
// the sequence number) but not here, so a sink's records_sent /
// records_dropped count exactly the records it was given.
using message_handler = std::function<void(const uint8_t*, size_t, uint32_t)>;

// Bit of a template kind in a kind mask.
inline uint32_t kind_bit(template_kind k) { return 1u << static_cast<unsigned>(k); }

class ipfix_encoder {
public:
  static constexpr size_t header_size = 16;
  static constexpr size_t min_message_size = 256;
  static constexpr size_t max_message_size_limit = 65535;

  enum class add_result : uint8_t { added, too_large, no_kind };

  ipfix_encoder(encoder_config cfg, message_handler on_message);

  // Encodes one record with the template of its kind and family.
  add_result add(const v1::Record& rec);
  // Same, with template_index(rec) already known (must match the record).
  add_result add(int template_index, const v1::Record& rec);
  // Template records of every kind in `kind_mask`, both families, and the
  // statistics options template when enabled. Placed in the open message
  // (a new one when it is full); not flushed.
  void add_templates(uint32_t kind_mask);
  // One statistics record (needs exporter_stats in the config and its
  // template sent first by add_templates()).
  void add_exporter_stats(const exporter_stats& s);
  // Hands the open message, if it holds anything, to the handler.
  void flush();
  // Records the caller dropped before encoding (e.g. a full TCP buffer):
  // they advance the sequence number so the collector sees the loss.
  void note_dropped(uint32_t n) { records_total_ += n; }
  // Starts a new transport session: the open message is discarded, the
  // sequence number restarts at 0. Returns the flow records discarded.
  uint32_t reset();

  uint32_t sequence() const { return static_cast<uint32_t>(records_total_); }
  // Flow records in the open message (statistics records not counted).
  uint32_t pending_records() const { return msg_records_ - msg_stats_; }
  size_t pending_octets() const { return len_; }
  size_t max_message_size() const { return cap_; }
  const encoder_counters& counters() const { return counters_; }

private:
  void open_message();
  void close_set();
  bool message_empty() const { return len_ <= header_size; }
  // Opens (or continues) set `id` with `need` free octets; may flush.
  bool ensure_set(uint16_t id, size_t need);
  void put16(size_t at, uint16_t v);
  void put32(size_t at, uint32_t v);
  uint32_t now() const;

  encoder_config cfg_;
  message_handler on_message_;
  size_t cap_;
  std::vector<uint8_t> buf_;
  size_t len_ = 0;       // 0: no message open
  size_t set_start_ = 0; // offset of the open set's header
  uint16_t set_id_ = 0;  // 0: no set open
  uint32_t msg_records_ = 0;   // data records in the open message
  uint32_t msg_stats_ = 0;     // ... of which statistics records
  uint64_t msg_seq_ = 0;
  uint64_t records_total_ = 0; // sequence counter (records sent or dropped)
  encoder_counters counters_;
};

} // namespace metaprobe::ipfix
