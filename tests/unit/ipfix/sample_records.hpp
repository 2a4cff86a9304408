// SPDX-License-Identifier: Apache-2.0
#pragma once
// Test records: one record of every template kind and family with every
// field set to a distinct, recognisable value (filled by protobuf
// reflection, so a field added to records.proto is covered too).

#include <string>
#include <vector>

#include "exporters/ipfix/field_table.hpp"
#include "metaprobe/v1/records.pb.h"

namespace metaprobe::ipfix::test {

// `seed` varies the values (records of the same kind differ by seed).
v1::Record sample_record(template_kind kind, ip_family family, uint32_t seed = 1);

// Every kind x family, in template table order.
std::vector<v1::Record> all_sample_records(uint32_t seed = 1);

} // namespace metaprobe::ipfix::test
