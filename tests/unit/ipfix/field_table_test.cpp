// SPDX-License-Identifier: Apache-2.0
// The generated field table and the template sets the encoder sends,
// checked byte by byte against spec/templates.tsv (parsed here, not by the
// generator).
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "exporters/ipfix/field_table.hpp"
#include "exporters/ipfix/ipfix_encoder.hpp"

using namespace metaprobe::ipfix;

namespace {

struct tsv_field {
  int order;
  uint16_t id;
  uint32_t pen;
  uint16_t length;
  std::string name;
};
using tsv_templates = std::map<std::pair<std::string, std::string>, std::vector<tsv_field>>;

tsv_templates read_tsv() {
  std::ifstream in(METAPROBE_SPEC);
  REQUIRE_MESSAGE(in.good(), "cannot open " METAPROBE_SPEC);
  tsv_templates out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols;
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, '\t')) cols.push_back(c);
    REQUIRE(cols.size() >= 7);
    out[{cols[0], cols[1]}].push_back({std::stoi(cols[2]), static_cast<uint16_t>(std::stoi(cols[3])),
                                       static_cast<uint32_t>(std::stoul(cols[4])),
                                       static_cast<uint16_t>(std::stoi(cols[5])), cols[6]});
  }
  return out;
}

// Documented in docs/ipfix.md.
const std::map<std::string, uint16_t> documented_ids = {
  {"clickstream", 1000}, {"http_reply", 1002}, {"ssl_reply", 1004}, {"sip", 1006},
  {"ftp", 1008},         {"im", 1010},         {"mail", 1012},      {"raw", 1014},
  {"dns", 1016},         {"fullflow", 1018}};

std::vector<uint8_t> expected_template_record(uint16_t tid, const std::vector<tsv_field>& fields) {
  std::vector<uint8_t> b;
  auto p16 = [&](uint32_t v) {
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
  };
  p16(tid);
  p16(static_cast<uint32_t>(fields.size()));
  for (const auto& f : fields) {
    p16(f.id | (f.pen ? 0x8000u : 0u));
    p16(f.length);
    if (f.pen) {
      p16(f.pen >> 16);
      p16(f.pen & 0xffff);
    }
  }
  return b;
}

std::vector<std::vector<uint8_t>> encode_templates(uint32_t mask, size_t mtu = 1400) {
  std::vector<std::vector<uint8_t>> msgs;
  encoder_config ec;
  ec.max_message_size = mtu;
  ec.observation_domain_id = 7;
  ec.clock = [] { return 1700000000u; };
  ipfix_encoder enc(ec, [&](const uint8_t* d, size_t n, uint32_t) { msgs.emplace_back(d, d + n); });
  enc.add_templates(mask);
  enc.flush();
  return msgs;
}

} // namespace

TEST_CASE("field table matches spec/templates.tsv") {
  const tsv_templates tsv = read_tsv();
  CHECK(tsv.size() == template_count);
  for (size_t i = 0; i < template_count; ++i) {
    const template_def& t = template_at(i);
    CAPTURE(t.kind_name);
    CAPTURE(t.family_name);
    auto it = tsv.find({t.kind_name, t.family_name});
    REQUIRE(it != tsv.end());
    const auto& fields = it->second;
    REQUIRE(fields.size() == t.field_count);
    CHECK(t.template_id == documented_ids.at(t.kind_name) + (t.family == ip_family::ipv6 ? 1 : 0));
    CHECK(i == template_index_of(t.kind, t.family));
    for (size_t f = 0; f < fields.size(); ++f) {
      CAPTURE(fields[f].name);
      CHECK(fields[f].order == static_cast<int>(f + 1));
      CHECK(t.fields[f].id == fields[f].id);
      CHECK(t.fields[f].pen == fields[f].pen);
      CHECK(t.fields[f].length == fields[f].length);
      CHECK(std::string(t.fields[f].name) == fields[f].name);
    }
    CHECK(find_template_by_id(t.template_id) == &t);
  }
}

TEST_CASE("abstract types follow the documented rules") {
  for (size_t i = 0; i < template_count; ++i) {
    const template_def& t = template_at(i);
    for (uint16_t f = 0; f < t.field_count; ++f) {
      const field_def& d = t.fields[f];
      const std::string name = d.name;
      CAPTURE(name);
      abstract_type want;
      if (d.length == variable_length) {
        want = (name == "CIPHER_SUITES" || name == "MPLS_LABELS" || name == "RDATA" || name == "RAW_DATA")
                 ? abstract_type::octet_array
                 : abstract_type::string;
      } else if (d.length == 4 && ((d.pen == 43823 && (d.id == 1003 || d.id == 1004)) ||
                                   (d.pen == 0 && (d.id == 8 || d.id == 12 || d.id == 225)))) {
        want = abstract_type::ipv4_address;
      } else if (d.length == 16) {
        want = abstract_type::ipv6_address;
      } else if (d.length == 6) {
        want = abstract_type::mac_address;
      } else if (d.pen == 0 && (d.id == 152 || d.id == 153)) {
        want = abstract_type::date_time_milliseconds;
      } else {
        want = d.length == 1   ? abstract_type::unsigned8
               : d.length == 2 ? abstract_type::unsigned16
               : d.length == 4 ? abstract_type::unsigned32
                               : abstract_type::unsigned64;
      }
      CHECK(d.type == want);
    }
  }
  // element lookup: unique names, the IPv6 / fullflow variants suffixed
  REQUIRE(find_element(43823, 1005) != nullptr);
  CHECK(std::string(find_element(43823, 1005)->name) == "HOSTNAME");
  CHECK(std::string(find_element(43823, 1103)->name) == "IP_SOURCE_IPV6");
  CHECK(std::string(find_element(43823, 2003)->name) == "LOGIN_FULLFLOW");
  CHECK(find_element(43823, 9999) == nullptr);
  CHECK(find_element(0, 1005) == nullptr);
  std::map<std::string, int> names;
  for (size_t i = 0; i < generated_element_count; ++i) ++names[element_table()[i].name];
  for (const auto& [n, c] : names) {
    CAPTURE(n);
    CHECK(c == 1);
  }
}

TEST_CASE("template sets are encoded byte by byte as in the spec") {
  const tsv_templates tsv = read_tsv();
  for (size_t k = 0; k < template_kind_count; ++k) {
    const auto kind = static_cast<template_kind>(k);
    CAPTURE(template_kind_name(kind));
    const auto msgs = encode_templates(kind_bit(kind));
    REQUIRE(msgs.size() == 1);
    const auto& m = msgs[0];
    // message header
    REQUIRE(m.size() >= 20);
    CHECK(m[0] == 0);
    CHECK(m[1] == 10);
    CHECK((m[2] << 8 | m[3]) == static_cast<int>(m.size()));
    CHECK(m[4] == 0x65); // 1700000000 = 0x6553F100
    CHECK(m[5] == 0x53);
    CHECK(m[6] == 0xf1);
    CHECK(m[7] == 0x00);
    CHECK((m[8] | m[9] | m[10] | m[11]) == 0); // sequence 0
    CHECK(m[15] == 7);                          // observation domain
    // one template set holding the IPv4 then the IPv6 template
    CHECK((m[16] << 8 | m[17]) == 2);
    CHECK((m[18] << 8 | m[19]) == static_cast<int>(m.size() - 16));
    std::vector<uint8_t> want;
    for (const char* fam : {"ipv4", "ipv6"}) {
      const auto& fields = tsv.at({template_kind_name(kind), fam});
      const uint16_t tid = documented_ids.at(template_kind_name(kind)) + (std::string(fam) == "ipv6");
      auto rec = expected_template_record(tid, fields);
      want.insert(want.end(), rec.begin(), rec.end());
    }
    CHECK(std::vector<uint8_t>(m.begin() + 20, m.end()) == want);
  }
}

TEST_CASE("all templates at once are split over messages within the MTU") {
  const tsv_templates tsv = read_tsv();
  const uint32_t all = (1u << template_kind_count) - 1;
  const auto msgs = encode_templates(all, 512);
  CHECK(msgs.size() > 1);
  size_t records = 0;
  for (const auto& m : msgs) {
    CHECK(m.size() <= 512);
    size_t off = 16;
    while (off < m.size()) {
      const size_t set_len = static_cast<size_t>(m[off + 2] << 8 | m[off + 3]);
      CHECK((m[off] << 8 | m[off + 1]) == 2);
      size_t p = off + 4;
      while (p < off + set_len) {
        const uint16_t count = static_cast<uint16_t>(m[p + 2] << 8 | m[p + 3]);
        const template_def* t = find_template_by_id(static_cast<uint16_t>(m[p] << 8 | m[p + 1]));
        REQUIRE(t != nullptr);
        CHECK(count == t->field_count);
        CHECK(t->template_record_size() ==
              expected_template_record(t->template_id, tsv.at({t->kind_name, t->family_name})).size());
        p += t->template_record_size();
        ++records;
      }
      CHECK(p == off + set_len);
      off += set_len;
    }
  }
  CHECK(records == template_count);
}
