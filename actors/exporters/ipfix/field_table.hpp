// SPDX-License-Identifier: Apache-2.0
#pragma once
// The IPFIX field table: one definition (spec/templates.tsv, bound to the
// record types of proto/metaprobe/v1/records.proto by
// tools/codegen/gen_ipfix.py) that drives the encoder, the decoder of
// metaprobe-receiver and the element files in config/ipfix/.
//
// The tables are static, immutable and safe to read from any thread.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "exporters/ipfix/field_table_gen.hpp"

namespace metaprobe::v1 {
class Record;
}

namespace metaprobe::ipfix {

// Abstract data types (RFC 7012 §3.1) the table uses.
enum class abstract_type : uint8_t {
  unsigned8,
  unsigned16,
  unsigned32,
  unsigned64,
  ipv4_address,
  ipv6_address,
  mac_address,
  date_time_milliseconds,
  string,      // variable length, UTF-8
  octet_array, // variable length, binary
};

enum class ip_family : uint8_t { ipv4 = 0, ipv6 = 1 };

// RFC 7011 §7: length 65535 in a template means variable length.
inline constexpr uint16_t variable_length = 65535;

// One field of a template, in template order.
struct field_def {
  uint16_t id;        // information element id (without the enterprise bit)
  uint32_t pen;       // 0 for IANA elements
  uint16_t length;    // octets, or variable_length
  abstract_type type;
  const char* name;   // template field name, e.g. "HOSTNAME"
};

// One information element, unique by (pen, id). `name` is unique too: the
// first template field name, with a suffix where two elements share a field
// name (_IPV6 for 1103/1104, _FULLFLOW for 2003).
struct element_def {
  uint16_t id;
  uint32_t pen;
  uint16_t length;
  abstract_type type;
  const char* name;
};

struct template_def {
  template_kind kind;
  ip_family family;
  uint16_t template_id;
  const char* kind_name;   // "clickstream", "http_reply", ...
  const char* family_name; // "ipv4" / "ipv6"
  const field_def* fields;
  uint16_t field_count;
  uint16_t fixed_length;   // sum of the fixed-length fields
  uint16_t variable_count; // number of variable-length fields

  // Octets of this template's Template Record (RFC 7011 §3.4.1).
  size_t template_record_size() const;
  // Smallest possible data record (every variable field empty).
  size_t min_record_size() const { return fixed_length + variable_count; }
};

// All templates: index = 2 * kind + family.
const template_def* template_table();
// All elements, sorted by (pen, id).
const element_def* element_table();

inline const template_def& template_at(size_t index) { return template_table()[index]; }
inline size_t template_index_of(template_kind k, ip_family f) {
  return 2 * static_cast<size_t>(k) + static_cast<size_t>(f);
}
inline const template_def& find_template(template_kind k, ip_family f) {
  return template_at(template_index_of(k, f));
}
// nullptr when the id is not one of the table's template ids.
const template_def* find_template_by_id(uint16_t template_id);
// nullptr when (pen, id) is not in the table.
const element_def* find_element(uint32_t pen, uint16_t id);

// Kind names as in spec/templates.tsv; false when unknown.
bool parse_template_kind(std::string_view name, template_kind& out);
const char* template_kind_name(template_kind k);

// Index into template_table() for a record (its kind and meta().family()),
// -1 when the record has no kind set.
int template_index(const v1::Record& rec);

const char* abstract_type_name(abstract_type t); // IANA spelling, "ipv4Address"

} // namespace metaprobe::ipfix
