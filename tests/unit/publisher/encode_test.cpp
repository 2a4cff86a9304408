// SPDX-License-Identifier: Apache-2.0
// encode_batch_records: the records appended to an envelope serialised
// without them must parse as the same RecordBatch as copying them in.
#include <doctest/doctest.h>

#include <google/protobuf/util/message_differencer.h>

#include "publisher/publisher.hpp"

using namespace metaprobe;

namespace {

std::vector<v1::Record> sample_records() {
  std::vector<v1::Record> recs(3);
  auto* c = recs[0].mutable_clickstream();
  c->set_hostname("example.org");
  c->set_path(std::string(300, 'p')); // length needs a two-byte varint
  c->mutable_meta()->set_session_id(42);
  c->mutable_meta()->set_ip_source(std::string("\x0a\x00\x00\x01", 4));
  auto* d = recs[1].mutable_dns();
  d->set_domain("a.example");
  d->set_rrtype(28);
  recs[2].mutable_fullflow()->set_octet_delta_count(1234567890123ull);
  return recs;
}

} // namespace

TEST_CASE("encode_batch_records: envelope + encoded records == envelope with the records") {
  const auto recs = sample_records();
  v1::RecordBatch expect;
  expect.set_group("clickstream");
  expect.set_producer_id(7);
  expect.set_sequence(9);
  expect.set_dropped_records(3);
  for (const auto& r : recs)
    *expect.add_records() = r;

  v1::RecordBatch head;
  head.CopyFrom(expect);
  head.clear_records();
  std::string wire;
  REQUIRE(head.SerializeToString(&wire));
  std::string records;
  encode_batch_records(recs, records);
  wire += records;

  v1::RecordBatch got;
  REQUIRE(got.ParseFromString(wire));
  CHECK(google::protobuf::util::MessageDifferencer::Equals(got, expect));
  CHECK(got.records_size() == 3);
  CHECK(got.records(0).clickstream().path().size() == 300);

  std::string empty;
  encode_batch_records({}, empty);
  CHECK(empty.empty());
}
