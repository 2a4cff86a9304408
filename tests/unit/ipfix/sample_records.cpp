// SPDX-License-Identifier: Apache-2.0
#include "sample_records.hpp"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/reflection.h>

namespace metaprobe::ipfix::test {

namespace {
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

std::string bytes_for(const std::string& name, ip_family fam, uint32_t seed) {
  auto fill = [&](size_t n, uint8_t base) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(base + i + seed);
    return s;
  };
  const size_t addr = fam == ip_family::ipv6 ? 16 : 4;
  if (name == "ip_source") return fam == ip_family::ipv6 ? fill(16, 0x20) : fill(4, 10);
  if (name == "ip_destination") return fam == ip_family::ipv6 ? fill(16, 0x30) : fill(4, 100);
  if (name == "post_nat_source_ipv4_address") return fill(4, 50);
  if (name == "source_mac") return fill(6, 0xa0);
  if (name == "destination_mac") return fill(6, 0xb0);
  if (name == "mpls_labels") return fill(6, 0x01);
  if (name == "cipher_suites") return fill(8, 0xc0);
  if (name == "rdata") return fill(addr, 0x40);
  if (name == "raw_data") return fill(60, 0x45);
  return fill(5, 0x61);
}

void fill_message(Message& m, ip_family fam, uint32_t seed, uint32_t& counter) {
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_repeated()) continue;
    ++counter;
    const uint32_t v = counter + seed * 7;
    switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_MESSAGE:
      fill_message(*r->MutableMessage(&m, f), fam, seed, counter);
      break;
    case FieldDescriptor::CPPTYPE_STRING:
      if (f->type() == FieldDescriptor::TYPE_BYTES)
        r->SetString(&m, f, bytes_for(f->name(), fam, seed));
      else
        r->SetString(&m, f, f->name() + "-" + std::to_string(seed) + "-\xc3\xa9t\xc3\xa9");
      break;
    case FieldDescriptor::CPPTYPE_UINT32: r->SetUInt32(&m, f, v % 200 + 1); break;
    case FieldDescriptor::CPPTYPE_UINT64: r->SetUInt64(&m, f, 0x0100000000ULL * v + v); break;
    case FieldDescriptor::CPPTYPE_INT32: r->SetInt32(&m, f, static_cast<int32_t>(v % 100)); break;
    case FieldDescriptor::CPPTYPE_INT64: r->SetInt64(&m, f, v); break;
    case FieldDescriptor::CPPTYPE_BOOL: r->SetBool(&m, f, true); break;
    case FieldDescriptor::CPPTYPE_ENUM:
      if (f->name() == "family")
        r->SetEnumValue(&m, f, fam == ip_family::ipv6 ? v1::FAMILY_IPV6 : v1::FAMILY_IPV4);
      break;
    default: break;
    }
  }
}
} // namespace

v1::Record sample_record(template_kind kind, ip_family family, uint32_t seed) {
  v1::Record rec;
  const auto* d = rec.GetDescriptor();
  const FieldDescriptor* f = d->FindFieldByName(template_kind_name(kind));
  Message* m = rec.GetReflection()->MutableMessage(&rec, f);
  uint32_t counter = 0;
  fill_message(*m, family, seed, counter);
  // realistic values where the seeds define them
  auto* meta_f = m->GetDescriptor()->FindFieldByName("meta");
  auto* meta = static_cast<v1::FlowMeta*>(m->GetReflection()->MutableMessage(m, meta_f));
  meta->set_time_stamp(1700000000 + seed);
  meta->set_port_source(40000 + seed);
  meta->set_port_destination(443);
  meta->set_protocol(6);
  meta->set_vlan_id(100 + seed);
  meta->set_post_vlan_id(200 + seed);
  return rec;
}

std::vector<v1::Record> all_sample_records(uint32_t seed) {
  std::vector<v1::Record> out;
  for (size_t i = 0; i < template_count; ++i) {
    const template_def& t = template_at(i);
    out.push_back(sample_record(t.kind, t.family, seed));
  }
  return out;
}

} // namespace metaprobe::ipfix::test
