// SPDX-License-Identifier: Apache-2.0
// Encode -> decode of one record of every kind and family: every template
// field comes back with the value of the proto field it is bound to. The
// binding is restated here independently of the generator.
#include <doctest/doctest.h>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <string>
#include <vector>

#include "exporters/ipfix/ipfix_decoder.hpp"
#include "exporters/ipfix/ipfix_encoder.hpp"
#include "exporters/ipfix/record_format.hpp"
#include "metaprobe/v1/records.pb.h"
#include "sample_records.hpp"

using namespace metaprobe;
using namespace metaprobe::ipfix;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

namespace {

const std::map<std::string, std::string> meta_alias = {
  {"TIME_STAMP", "time_stamp"},
  {"LOGIN", "login"},
  {"IP_SOURCE", "ip_source"},
  {"SOURCE_IPV4_ADDRESS", "ip_source"},
  {"SOURCE_IPV6_ADDRESS", "ip_source"},
  {"IP_DESTINATION", "ip_destination"},
  {"DESTINATION_IPV4_ADDRESS", "ip_destination"},
  {"DESTINATION_IPV6_ADDRESS", "ip_destination"},
  {"PORT_SOURCE", "port_source"},
  {"SOURCE_TRANSPORT_PORT", "port_source"},
  {"SOURCE_PORT", "port_source"},
  {"PORT_DESTINATION", "port_destination"},
  {"DESTINATION_TRANSPORT_PORT", "port_destination"},
  {"DESTINATION_PORT", "port_destination"},
  {"SESSION_ID", "session_id"},
  {"BRIDGE_CHANNEL_NUM", "bridge_channel_num"},
  {"VLAN_ID", "vlan_id"},
  {"SRC_VLAN", "vlan_id"},
  {"POST_VLAN_ID", "post_vlan_id"},
  {"DST_VLAN", "post_vlan_id"},
  {"SOURCE_MAC", "source_mac"},
  {"SRC_MAC", "source_mac"},
  {"DESTINATION_MAC", "destination_mac"},
  {"DST_MAC", "destination_mac"},
  {"MPLS_LABELS", "mpls_labels"},
  {"PROTOCOL_IDENTIFIER", "protocol"},
  {"PROTOCOL", "protocol"},
};

struct expected_value {
  bool is_number = false;
  uint64_t number = 0;
  std::string bytes;
};

expected_value expected_for(const v1::Record& rec, const field_def& f) {
  const Message* m = nullptr;
  const auto* rd = rec.GetDescriptor();
  const auto* kind_field = rd->FindFieldByNumber(static_cast<int>(rec.kind_case()));
  m = &rec.GetReflection()->GetMessage(rec, kind_field);
  std::string proto_name;
  auto alias = meta_alias.find(f.name);
  if (alias != meta_alias.end()) {
    m = &m->GetReflection()->GetMessage(*m, m->GetDescriptor()->FindFieldByName("meta"));
    proto_name = alias->second;
  } else {
    proto_name = f.name;
    std::transform(proto_name.begin(), proto_name.end(), proto_name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
  const FieldDescriptor* pf = m->GetDescriptor()->FindFieldByName(proto_name);
  REQUIRE_MESSAGE(pf != nullptr, "no proto field for " << f.name);
  const auto* r = m->GetReflection();
  expected_value v;
  switch (pf->cpp_type()) {
  case FieldDescriptor::CPPTYPE_STRING: v.bytes = r->GetString(*m, pf); break;
  case FieldDescriptor::CPPTYPE_UINT32: v.is_number = true; v.number = r->GetUInt32(*m, pf); break;
  case FieldDescriptor::CPPTYPE_UINT64: v.is_number = true; v.number = r->GetUInt64(*m, pf); break;
  default: FAIL("unexpected proto type for " << f.name);
  }
  if (v.is_number && f.length < 8) v.number &= (1ULL << (8 * f.length)) - 1;
  return v;
}

} // namespace

TEST_CASE("every kind and family round-trips through encoder and decoder") {
  std::vector<std::vector<uint8_t>> msgs;
  encoder_config ec;
  ec.max_message_size = 1400;
  ipfix_encoder enc(ec, [&](const uint8_t* d, size_t n, uint32_t) { msgs.emplace_back(d, d + n); });
  enc.add_templates((1u << template_kind_count) - 1);
  const auto recs = test::all_sample_records(3);
  for (const auto& r : recs) REQUIRE(enc.add(r) == ipfix_encoder::add_result::added);
  enc.flush();
  CHECK(enc.counters().bad_address == 0);
  CHECK(enc.counters().invalid_utf8 == 0);
  CHECK(enc.counters().strings_truncated == 0);

  ipfix_decoder dec;
  size_t n = 0;
  for (const auto& m : msgs) {
    CHECK(dec.decode(42, m.data(), m.size(), [&](const decoded_record& d) {
      REQUIRE(n < recs.size());
      const v1::Record& rec = recs[n];
      const template_def& t = template_at(n);
      ++n;
      CAPTURE(t.kind_name);
      CAPTURE(t.family_name);
      CHECK(d.kind == t.kind_name);
      CHECK(d.family == t.family_name);
      CHECK(d.template_id == t.template_id);
      REQUIRE(d.fields.size() == t.field_count);
      for (size_t i = 0; i < d.fields.size(); ++i) {
        const decoded_field& f = d.fields[i];
        CAPTURE(t.fields[i].name);
        CHECK(f.name == t.fields[i].name);
        const expected_value want = expected_for(rec, t.fields[i]);
        if (want.is_number) {
          CHECK((f.kind == value_kind::unsigned_int || f.kind == value_kind::date_time_ms));
          CHECK(f.number == want.number);
        } else {
          CHECK(std::string(reinterpret_cast<const char*>(f.data), f.size) == want.bytes);
        }
      }
    }));
  }
  CHECK(n == recs.size());
  CHECK(dec.stats().decode_errors == 0);
  CHECK(dec.stats().data_records == recs.size());
}

TEST_CASE("JSON lines use the template field names and typed values") {
  std::vector<std::vector<uint8_t>> msgs;
  ipfix_encoder enc(encoder_config{}, [&](const uint8_t* d, size_t n, uint32_t) { msgs.emplace_back(d, d + n); });
  enc.add_templates(kind_bit(template_kind::ssl_reply) | kind_bit(template_kind::clickstream));
  v1::Record r;
  auto* s = r.mutable_ssl_reply();
  auto* m = s->mutable_meta();
  m->set_family(v1::FAMILY_IPV6);
  m->set_time_stamp(1700000001);
  m->set_login("al\"ice\n");
  std::string v6(16, '\0');
  v6[0] = 0x20;
  v6[1] = 0x01;
  v6[2] = 0x0d;
  v6[3] = static_cast<char>(0xb8);
  v6[15] = 1;
  m->set_ip_source(v6);
  m->set_ip_destination(std::string("\0\0\0\0\0\0\0\0\0\0\xff\xff\x0a\x00\x00\x01", 16));
  m->set_source_mac(std::string("\x00\x1b\x21\xaa\xbb\xcc", 6));
  m->set_mpls_labels(std::string("\x00\x01\x41", 3));
  s->set_cname("cdn.example.\xd1\x80\xd1\x84");
  s->set_ssl_version(0x0303);
  REQUIRE(enc.add(r) == ipfix_encoder::add_result::added);
  enc.flush();
  ipfix_decoder dec;
  std::string json, text;
  for (const auto& msg : msgs)
    dec.decode(1, msg.data(), msg.size(), [&](const decoded_record& d) {
      format_record(d, output_format::json, json);
      format_record(d, output_format::text, text);
    });
  CHECK(json.rfind("{\"template\":\"ssl_reply\",\"family\":\"ipv6\",\"TIME_STAMP\":1700000001,", 0) == 0);
  CHECK(json.find("\"LOGIN\":\"al\\\"ice\\n\"") != std::string::npos);
  CHECK(json.find("\"IP_SOURCE\":\"2001:db8::1\"") != std::string::npos);
  CHECK(json.find("\"IP_DESTINATION\":\"::ffff:10.0.0.1\"") != std::string::npos);
  CHECK(json.find("\"SOURCE_MAC\":\"00:1b:21:aa:bb:cc\"") != std::string::npos);
  CHECK(json.find("\"DESTINATION_MAC\":\"00:00:00:00:00:00\"") != std::string::npos);
  CHECK(json.find("\"MPLS_LABELS\":\"000141\"") != std::string::npos);
  CHECK(json.find("\"SSL_VERSION\":771") != std::string::npos);
  CHECK(json.find("\"CNAME\":\"cdn.example.\xd1\x80\xd1\x84\"}") != std::string::npos);
  CHECK(json.find("HOSTNAME") == std::string::npos);
  CHECK(text.rfind("ssl_reply ipv6 TIME_STAMP=1700000001 LOGIN=\"al\\\"ice\\n\" IP_SOURCE=2001:db8::1", 0) == 0);
}
