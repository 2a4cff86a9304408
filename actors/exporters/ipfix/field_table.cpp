// SPDX-License-Identifier: Apache-2.0
#include "exporters/ipfix/field_table.hpp"

#include <algorithm>

namespace metaprobe::ipfix {

size_t template_def::template_record_size() const {
  size_t n = 4;
  for (uint16_t i = 0; i < field_count; ++i) n += fields[i].pen != 0 ? 8 : 4;
  return n;
}

const template_def* find_template_by_id(uint16_t template_id) {
  const template_def* t = template_table();
  for (size_t i = 0; i < template_count; ++i)
    if (t[i].template_id == template_id) return &t[i];
  return nullptr;
}

const element_def* find_element(uint32_t pen, uint16_t id) {
  const element_def* b = element_table();
  const element_def* e = b + generated_element_count;
  auto it = std::lower_bound(b, e, std::make_pair(pen, id),
                             [](const element_def& d, const std::pair<uint32_t, uint16_t>& k) {
                               return d.pen != k.first ? d.pen < k.first : d.id < k.second;
                             });
  if (it != e && it->pen == pen && it->id == id) return it;
  return nullptr;
}

bool parse_template_kind(std::string_view name, template_kind& out) {
  for (size_t k = 0; k < template_kind_count; ++k) {
    if (name == template_at(2 * k).kind_name) {
      out = static_cast<template_kind>(k);
      return true;
    }
  }
  return false;
}

const char* template_kind_name(template_kind k) {
  return template_at(template_index_of(k, ip_family::ipv4)).kind_name;
}

const char* abstract_type_name(abstract_type t) {
  switch (t) {
  case abstract_type::unsigned8: return "unsigned8";
  case abstract_type::unsigned16: return "unsigned16";
  case abstract_type::unsigned32: return "unsigned32";
  case abstract_type::unsigned64: return "unsigned64";
  case abstract_type::ipv4_address: return "ipv4Address";
  case abstract_type::ipv6_address: return "ipv6Address";
  case abstract_type::mac_address: return "macAddress";
  case abstract_type::date_time_milliseconds: return "dateTimeMilliseconds";
  case abstract_type::string: return "string";
  case abstract_type::octet_array: return "octetArray";
  }
  return "octetArray";
}

} // namespace metaprobe::ipfix
