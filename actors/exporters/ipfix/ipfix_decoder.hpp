// SPDX-License-Identifier: Apache-2.0
#pragma once
// RFC 7011 message decoder (metaprobe-receiver, tests). Plain C++, no I/O.
//
// - Every read is bounds-checked; malformed input is counted in
//   decode_errors and never crashes. Records decoded before the error in a
//   message are still delivered.
// - Templates and options templates are learnt per (transport session,
//   observation domain); the caller names the session (e.g. one per UDP
//   peer or TCP connection) and ends it with end_session(), which forgets
//   its templates and keeps its report.
// - Fields are named from the field table: by the template field names when
//   the template is one of spec/templates.tsv (matched by template id and
//   field list, else by field list alone), else by element name; unknown
//   elements are "e<pen>id<id>" (enterprise) or "<id>" (IANA).
// - Sequence numbers are checked per (session, domain), RFC 7011 §3.1: the
//   sequence number counts data records (options records included) sent
//   before the message, so a message whose number is not the previous one
//   plus the previous message's data records is a gap, and the difference
//   is the number of records missed (records_lost). After a message with a
//   data set the decoder could not read (no template yet) the next message
//   tells how many records that set held (records_without_template); no gap
//   is checked across it. A later sequence number that is smaller (a
//   restarted exporter, reordering) counts as a gap of 0 records.
//
// Threading: one decoder per thread. Ownership: decoded_record / fields
// point into the decoder and the message buffer and are only valid during
// the callback.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "exporters/ipfix/field_table.hpp"

namespace metaprobe::ipfix {

enum class value_kind : uint8_t {
  unsigned_int, // `number` (network order, 1..8 octets)
  date_time_ms, // `number`: milliseconds since the epoch
  ipv4,         // `data`, 4 octets
  ipv6,         // `data`, 16 octets
  mac,          // `data`, 6 octets
  string,       // `data`: octets as received (may be invalid UTF-8)
  octets,       // `data`
};

struct decoded_field {
  std::string_view name;
  uint16_t id = 0;
  uint32_t pen = 0;
  value_kind kind = value_kind::octets;
  uint64_t number = 0;
  const uint8_t* data = nullptr;
  size_t size = 0;
};

struct decoded_record {
  std::string_view kind;   // "clickstream", ..., "exporter_stats", "unknown"
  std::string_view family; // "ipv4", "ipv6" or "" (not a table template)
  uint16_t template_id = 0;
  bool options = false;    // record of an options template
  uint32_t observation_domain = 0;
  uint32_t export_time = 0;
  uint64_t session = 0;
  std::vector<decoded_field> fields;
};

struct decoder_limits {
  size_t max_sessions = 4096;               // new sessions beyond: messages dropped
  size_t max_templates_per_session = 4096;  // new templates beyond: ignored
  size_t max_fields_per_template = 1024;
};

struct decoder_stats {
  uint64_t messages = 0;
  uint64_t data_records = 0;     // non-options records delivered
  uint64_t options_records = 0;  // options records delivered
  uint64_t template_records = 0; // (options) template records learnt
  uint64_t template_withdrawals = 0;
  uint64_t decode_errors = 0;    // malformed messages, sets, records
  uint64_t sets_without_template = 0;
  uint64_t sequence_gaps = 0;
  uint64_t records_lost = 0;     // sum of the gaps' sizes
  uint64_t records_without_template = 0; // in sets without template (see above)
  uint64_t limit_drops = 0;      // sessions / templates over the limits
  std::map<std::string, uint64_t> records_per_kind; // "clickstream/ipv4" -> n
};

// What one exporter (transport session) sent in one observation domain.
struct domain_report {
  uint64_t session = 0;
  uint32_t domain = 0;
  uint64_t messages = 0;
  uint64_t records = 0;              // data + options records decoded
  uint64_t gaps = 0;                 // sequence gaps
  uint64_t lost = 0;                 // records missed in those gaps
  uint64_t decode_errors = 0;        // malformed messages, sets, records
  uint64_t template_records = 0;     // (options) template records learnt
  uint64_t sets_without_template = 0;
  uint64_t records_without_template = 0; // known from the next message's sequence number
  uint32_t first_sequence = 0;       // sequence number of the first message
  uint32_t first_message_templates = 0; // template records in the first message
  bool templates_seen = false;       // a template record arrived
  uint32_t first_template_sequence = 0; // sequence number of the first message with one
  uint32_t next_sequence = 0;        // last message's sequence number + its data records
  std::map<uint16_t, uint64_t> records_per_template; // template id -> records
};

class ipfix_decoder {
public:
  using record_callback = std::function<void(const decoded_record&)>;

  explicit ipfix_decoder(decoder_limits limits = {});
  ~ipfix_decoder();
  ipfix_decoder(const ipfix_decoder&) = delete;
  ipfix_decoder& operator=(const ipfix_decoder&) = delete;

  // Decodes one message (data..data+len; the header's length field must not
  // exceed len). Returns false when anything in it was malformed.
  bool decode(uint64_t session, const uint8_t* data, size_t len, const record_callback& cb);
  // Forgets the templates of a session (its report stays; a later message
  // of the same session id starts without templates).
  void end_session(uint64_t session);

  const decoder_stats& stats() const { return stats_; }
  // One report per (session, domain) ever seen, ordered by session, domain.
  std::vector<domain_report> domains() const;
  // The reports of one session.
  std::vector<domain_report> domains(uint64_t session) const;

private:
  struct template_info;
  struct session_state;
  bool decode_template_set(session_state& s, uint32_t domain, const uint8_t* p, size_t n,
                           bool options);
  bool decode_data_set(session_state& s, uint32_t domain, uint16_t set_id, const uint8_t* p,
                       size_t n, const record_callback& cb, uint32_t& records, bool& unknown);
  std::unique_ptr<template_info> make_template(uint16_t tid, std::vector<field_def> fields,
                                               uint16_t scope_count) const;

  decoder_limits limits_;
  decoder_stats stats_;
  std::map<uint64_t, std::unique_ptr<session_state>> sessions_;
  size_t active_sessions_ = 0;
  decoded_record rec_;
};

// Splits a byte stream (TCP connection, RFC 5655 file) into messages using
// the header's length. A header with version != 10 or length < 16 is a
// framing error the stream cannot recover from: feed() returns false.
class ipfix_stream_reader {
public:
  using message_callback = std::function<void(const uint8_t*, size_t)>;
  bool feed(const uint8_t* data, size_t len, const message_callback& on_message);
  size_t buffered() const { return buf_.size(); }

private:
  std::vector<uint8_t> buf_;
  bool failed_ = false;
};

} // namespace metaprobe::ipfix
