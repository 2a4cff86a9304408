// SPDX-License-Identifier: Apache-2.0
// Decoder: template learning, naming, sequence gaps, framing, and one
// broken input per validation rule (nothing may crash; errors are counted).
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "exporters/ipfix/ipfix_decoder.hpp"
#include "exporters/ipfix/ipfix_encoder.hpp"
#include "exporters/ipfix/record_format.hpp"
#include "metaprobe/v1/records.pb.h"
#include "sample_records.hpp"

using namespace metaprobe;
using namespace metaprobe::ipfix;

namespace {

// Builds IPFIX messages by hand, including broken ones.
struct msg_builder {
  std::vector<uint8_t> b;
  size_t set_start = 0;
  explicit msg_builder(uint32_t seq = 0, uint32_t domain = 1) {
    u16(10);
    u16(0);
    u32(1700000000);
    u32(seq);
    u32(domain);
  }
  msg_builder& u8(uint32_t v) {
    b.push_back(static_cast<uint8_t>(v));
    return *this;
  }
  msg_builder& u16(uint32_t v) { return u8(v >> 8).u8(v); }
  msg_builder& u32(uint32_t v) { return u16(v >> 16).u16(v & 0xffff); }
  msg_builder& bytes(const std::string& s) {
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  msg_builder& set(uint16_t id) {
    set_start = b.size();
    return u16(id).u16(0);
  }
  msg_builder& end_set() {
    const size_t len = b.size() - set_start;
    b[set_start + 2] = static_cast<uint8_t>(len >> 8);
    b[set_start + 3] = static_cast<uint8_t>(len);
    return *this;
  }
  std::vector<uint8_t> done() {
    b[2] = static_cast<uint8_t>(b.size() >> 8);
    b[3] = static_cast<uint8_t>(b.size());
    return b;
  }
};

std::vector<std::vector<uint8_t>> encode(const std::vector<v1::Record>& recs, uint32_t mask, size_t mtu = 1400) {
  std::vector<std::vector<uint8_t>> msgs;
  encoder_config ec;
  ec.max_message_size = mtu;
  ec.observation_domain_id = 9;
  ipfix_encoder enc(ec, [&](const uint8_t* d, size_t n, uint32_t) { msgs.emplace_back(d, d + n); });
  enc.add_templates(mask);
  enc.flush();
  for (const auto& r : recs) enc.add(r);
  enc.flush();
  return msgs;
}

const uint32_t all_kinds = (1u << template_kind_count) - 1;

} // namespace

TEST_CASE("sequence gaps are reported per session and domain") {
  std::vector<v1::Record> recs;
  for (uint32_t i = 0; i < 200; ++i) recs.push_back(test::sample_record(template_kind::dns, ip_family::ipv4, i));
  auto msgs = encode(recs, kind_bit(template_kind::dns), 512);
  REQUIRE(msgs.size() > 5);
  ipfix_decoder dec;
  // drop message 3 (a data message): its records are lost
  const uint32_t lost = [&] {
    ipfix_decoder probe;
    uint32_t n = 0;
    probe.decode(1, msgs[0].data(), msgs[0].size(), nullptr);
    probe.decode(1, msgs[3].data(), msgs[3].size(), [&](const decoded_record&) { ++n; });
    return n;
  }();
  REQUIRE(lost > 0);
  for (size_t i = 0; i < msgs.size(); ++i)
    if (i != 3) CHECK(dec.decode(1, msgs[i].data(), msgs[i].size(), nullptr));
  CHECK(dec.stats().sequence_gaps == 1);
  CHECK(dec.stats().records_lost == lost);
  CHECK(dec.stats().data_records == 200 - lost);
  // another session sees every message: no gap there
  for (const auto& m : msgs) dec.decode(2, m.data(), m.size(), nullptr);
  auto reports = dec.domains();
  REQUIRE(reports.size() == 2);
  for (const auto& r : reports) {
    CHECK(r.domain == 9);
    CHECK(r.gaps == (r.session == 1 ? 1u : 0u));
  }
  CHECK(dec.stats().records_per_kind.at("dns/ipv4") == 400 - lost);
}

TEST_CASE("templates are per session and domain; data without template is counted") {
  auto msgs = encode({test::sample_record(template_kind::sip, ip_family::ipv6)}, kind_bit(template_kind::sip));
  REQUIRE(msgs.size() == 2);
  ipfix_decoder dec;
  int seen = 0;
  dec.decode(1, msgs[0].data(), msgs[0].size(), nullptr);
  dec.decode(2, msgs[1].data(), msgs[1].size(), [&](const decoded_record&) { ++seen; });
  CHECK(seen == 0);
  CHECK(dec.stats().sets_without_template == 1);
  dec.decode(1, msgs[1].data(), msgs[1].size(), [&](const decoded_record& r) {
    ++seen;
    CHECK(r.kind == "sip");
    CHECK(r.family == "ipv6");
    CHECK(r.session == 1);
  });
  CHECK(seen == 1);
  dec.end_session(1);
  dec.decode(1, msgs[1].data(), msgs[1].size(), [&](const decoded_record&) { ++seen; });
  CHECK(seen == 1);
  CHECK(dec.stats().decode_errors == 0);
}

TEST_CASE("a table template under another id is recognised by its field list") {
  auto msgs = encode({test::sample_record(template_kind::ftp, ip_family::ipv4)}, kind_bit(template_kind::ftp));
  REQUIRE(msgs.size() == 2);
  // rewrite template id 1008 -> 300 in the template set and the data set
  auto& t = msgs[0];
  bool changed = false;
  for (size_t i = 20; i + 1 < t.size(); ++i)
    if (t[i] == 0x03 && t[i + 1] == 0xf0 && !changed) { // 1008 = 0x03f0
      t[i] = 0x01;
      t[i + 1] = 0x2c; // 300
      changed = true;
    }
  REQUIRE(changed);
  msgs[1][16] = 0x01;
  msgs[1][17] = 0x2c;
  ipfix_decoder dec;
  std::string json;
  for (const auto& m : msgs)
    dec.decode(1, m.data(), m.size(), [&](const decoded_record& r) { format_record(r, output_format::json, json); });
  CHECK(json.rfind("{\"template\":\"ftp\",\"family\":\"ipv4\",", 0) == 0);
  CHECK(json.find("\"SERVER_NAME\":") != std::string::npos);
}

TEST_CASE("unknown templates and elements are named by id") {
  msg_builder m;
  m.set(2).u16(400).u16(4);
  m.u16(0x8000 | 9999).u16(2).u32(43823); // unknown metaprobe element
  m.u16(1005 | 0x8000).u16(65535).u32(43823); // HOSTNAME
  m.u16(7).u16(2);                            // sourceTransportPort (table: SOURCE_PORT)
  m.u16(333).u16(3);                          // unknown IANA, odd length
  m.end_set();
  m.set(400).u16(0x1234).u8(3).bytes("abc").u16(80).u8(1).u8(2).u8(3).end_set();
  auto msg = m.done();
  ipfix_decoder dec;
  std::string json;
  CHECK(dec.decode(1, msg.data(), msg.size(), [&](const decoded_record& r) {
    CHECK(r.kind == "unknown");
    format_record(r, output_format::json, json);
  }));
  CHECK(json == "{\"template\":\"unknown\",\"template_id\":400,\"e43823id9999\":4660,\"HOSTNAME\":\"abc\","
                "\"SOURCE_PORT\":80,\"333\":66051}");
}

TEST_CASE("template withdrawal removes the template") {
  msg_builder a;
  a.set(2).u16(300).u16(1).u16(4).u16(1).end_set();
  a.set(300).u8(6).u8(17).end_set();
  auto m1 = a.done();
  msg_builder b(2);
  b.set(2).u16(300).u16(0).end_set(); // withdraw
  b.set(300).u8(6).end_set();
  auto m2 = b.done();
  ipfix_decoder dec;
  int n = 0;
  CHECK(dec.decode(1, m1.data(), m1.size(), [&](const decoded_record&) { ++n; }));
  CHECK(n == 2);
  CHECK(dec.decode(1, m2.data(), m2.size(), [&](const decoded_record&) { ++n; }));
  CHECK(n == 2);
  CHECK(dec.stats().template_withdrawals == 1);
  CHECK(dec.stats().sets_without_template == 1);
}

TEST_CASE("one broken input per validation rule") {
  ipfix_decoder dec;
  auto bad = [&](std::vector<uint8_t> msg, const char* why) {
    CAPTURE(why);
    const uint64_t before = dec.stats().decode_errors;
    CHECK_FALSE(dec.decode(1, msg.data(), msg.size(), nullptr));
    CHECK(dec.stats().decode_errors > before);
  };
  bad({0, 10, 0, 16}, "shorter than a header");
  {
    auto m = msg_builder().done();
    m[1] = 9;
    bad(m, "version 9");
  }
  {
    auto m = msg_builder().done();
    m[3] = 200;
    bad(m, "length beyond the buffer");
  }
  {
    auto m = msg_builder().done();
    m[3] = 8;
    bad(m, "length below 16");
  }
  {
    msg_builder m;
    m.set(2).u16(300).u16(1).u16(4).u16(1);
    m.end_set();
    auto v = m.done();
    v[19] = 200; // set length beyond the message
    bad(v, "set length beyond the message");
  }
  {
    msg_builder m;
    m.u16(2).u16(2); // set length < 4
    bad(m.done(), "set length below 4");
  }
  {
    msg_builder m;
    m.set(5).u32(0).end_set();
    bad(m.done(), "reserved set id");
  }
  {
    msg_builder m;
    m.set(2).u16(255).u16(1).u16(4).u16(1).end_set();
    bad(m.done(), "template id below 256");
  }
  {
    msg_builder m;
    m.set(2).u16(300).u16(3).u16(4).u16(1).end_set();
    bad(m.done(), "field count beyond the set");
  }
  {
    msg_builder m;
    m.set(2).u16(300).u16(1).u16(0x8000 | 4).u16(1).end_set();
    bad(m.done(), "enterprise number missing");
  }
  {
    msg_builder m;
    m.set(3).u16(300).u16(1).u16(0).u16(4).u16(1).end_set();
    bad(m.done(), "options template with scope count 0");
  }
  {
    msg_builder m;
    m.set(3).u16(300).u16(1).u16(2).u16(4).u16(1).end_set();
    bad(m.done(), "scope count above the field count");
  }
  {
    msg_builder m;
    m.set(2).u16(301).u16(1).u16(1002 | 0x8000).u16(65535).u32(43823).end_set();
    m.set(301).u8(10).bytes("abc").end_set(); // says 10 octets, has 3
    bad(m.done(), "variable-length field beyond the set");
  }
  {
    msg_builder m;
    m.set(2).u16(302).u16(1).u16(1002 | 0x8000).u16(65535).u32(43823).end_set();
    m.set(302).u8(255).u8(1).end_set(); // 3-octet length cut
    bad(m.done(), "long length prefix cut");
  }
  {
    msg_builder m;
    m.set(2).u16(303).u16(2).u16(4).u16(0).u16(5).u16(0).end_set();
    m.set(303).u32(0).end_set();
    bad(m.done(), "template whose records have no octets");
  }
  {
    auto m = msg_builder().done();
    m.push_back(0);
    bad(m, "trailing octets after the message");
  }
  CHECK(dec.stats().data_records == 0);
}

TEST_CASE("padding after the last record is not an error") {
  msg_builder m;
  m.set(2).u16(300).u16(1).u16(4).u16(2).end_set();
  m.set(300).u16(1).u16(2).u8(0).end_set(); // two records, one octet padding
  auto v = m.done();
  ipfix_decoder dec;
  int n = 0;
  CHECK(dec.decode(1, v.data(), v.size(), [&](const decoded_record& r) {
    ++n;
    CHECK(r.fields[0].number == static_cast<uint64_t>(n));
  }));
  CHECK(n == 2);
  CHECK(dec.stats().decode_errors == 0);
}

TEST_CASE("garbage and mutated messages never crash") {
  auto msgs = encode(test::all_sample_records(), all_kinds);
  std::mt19937 rng(12345);
  ipfix_decoder dec;
  uint64_t records = 0;
  auto count = [&](const decoded_record& r) {
    records += r.fields.size() > 0;
    std::string line;
    format_record(r, output_format::json, line);
  };
  for (int round = 0; round < 3000; ++round) {
    auto m = msgs[static_cast<size_t>(rng()) % msgs.size()];
    switch (round % 4) {
    case 0: // flip bytes
      for (int k = 0; k < 4; ++k) m[rng() % m.size()] = static_cast<uint8_t>(rng());
      break;
    case 1: // truncate, keeping the header length
      m.resize(16 + rng() % (m.size() - 16));
      break;
    case 2: // truncate and fix the header length
      m.resize(16 + rng() % (m.size() - 16));
      m[2] = static_cast<uint8_t>(m.size() >> 8);
      m[3] = static_cast<uint8_t>(m.size());
      break;
    case 3: // random body
      for (size_t i = 16; i < m.size(); ++i) m[i] = static_cast<uint8_t>(rng());
      break;
    }
    dec.decode(rng() % 4, m.data(), m.size(), count);
  }
  CHECK(dec.stats().decode_errors > 0);
  CHECK(dec.stats().messages > 0);
}

TEST_CASE("stream reader splits a byte stream into messages") {
  auto msgs = encode(test::all_sample_records(), all_kinds);
  std::vector<uint8_t> stream;
  for (const auto& m : msgs) stream.insert(stream.end(), m.begin(), m.end());
  std::mt19937 rng(7);
  ipfix_stream_reader reader;
  size_t got = 0, off = 0;
  while (off < stream.size()) {
    const size_t n = std::min<size_t>(1 + rng() % 200, stream.size() - off);
    CHECK(reader.feed(stream.data() + off, n, [&](const uint8_t* d, size_t len) {
      REQUIRE(got < msgs.size());
      CHECK(std::vector<uint8_t>(d, d + len) == msgs[got]);
      ++got;
    }));
    off += n;
  }
  CHECK(got == msgs.size());
  CHECK(reader.buffered() == 0);
  const uint8_t junk[] = {0, 9, 0, 20, 1, 2, 3, 4};
  CHECK_FALSE(reader.feed(junk, sizeof junk, [](const uint8_t*, size_t) {}));
  CHECK_FALSE(reader.feed(stream.data(), 16, [](const uint8_t*, size_t) {})); // stays failed
}

TEST_CASE("JSON escaping and hex") {
  std::string out;
  const std::string s = std::string("a\"b\\c\x01\x7f\xff", 8);
  append_json_string(out, reinterpret_cast<const uint8_t*>(s.data()), s.size());
  CHECK(out == "\"a\\\"b\\\\c\\u0001\\u007f\xef\xbf\xbd\"");
  out.clear();
  const uint8_t h[] = {0x00, 0xab, 0x10};
  append_hex(out, h, 3);
  CHECK(out == "00ab10");
}

TEST_CASE("a late collector: records before the first template are counted by sequence number") {
  std::vector<std::vector<uint8_t>> msgs;
  encoder_config ec;
  ec.observation_domain_id = 4;
  ipfix_encoder enc(ec, [&](const uint8_t* d, size_t n, uint32_t) { msgs.emplace_back(d, d + n); });
  const uint32_t mask = kind_bit(template_kind::dns);
  enc.add_templates(mask); // msgs[0]: missed by the collector
  enc.flush();
  auto add = [&](int n) {
    for (int i = 0; i < n; ++i)
      enc.add(test::sample_record(template_kind::dns, ip_family::ipv4, static_cast<uint32_t>(i)));
    enc.flush();
  };
  add(10); // msgs[1], sequence 0
  add(5);  // msgs[2], sequence 10
  enc.add_templates(mask); // refresh leads msgs[3], sequence 15
  add(7);
  add(3);  // msgs[4], sequence 22
  REQUIRE(msgs.size() == 5);
  ipfix_decoder dec;
  int decoded = 0;
  for (size_t i = 1; i < msgs.size(); ++i)
    dec.decode(1, msgs[i].data(), msgs[i].size(), [&](const decoded_record&) { ++decoded; });
  CHECK(decoded == 10);
  CHECK(dec.stats().sets_without_template == 2);
  CHECK(dec.stats().records_without_template == 15);
  CHECK(dec.stats().sequence_gaps == 0);
  const auto reports = dec.domains();
  REQUIRE(reports.size() == 1);
  const domain_report& r = reports[0];
  CHECK(r.domain == 4);
  CHECK(r.messages == 4);
  CHECK(r.records == 10);
  CHECK(r.sets_without_template == 2);
  CHECK(r.records_without_template == 15);
  CHECK(r.first_sequence == 0);
  CHECK(r.first_message_templates == 0);
  CHECK(r.templates_seen);
  CHECK(r.first_template_sequence == 15);
  CHECK(r.next_sequence == 25);
  // every record from the first template on was decoded
  CHECK(r.next_sequence - r.first_template_sequence == r.records);
  REQUIRE(r.records_per_template.size() == 1);
  CHECK(r.records_per_template.begin()->second == 10);
  CHECK(r.decode_errors == 0);
}

TEST_CASE("decode errors are reported per exporter; an ended session keeps its report") {
  auto msgs =
    encode({test::sample_record(template_kind::dns, ip_family::ipv4)}, kind_bit(template_kind::dns));
  REQUIRE(msgs.size() == 2);
  ipfix_decoder dec;
  dec.decode(1, msgs[0].data(), msgs[0].size(), nullptr);
  std::vector<uint8_t> bad = msgs[1];
  bad[19] = static_cast<uint8_t>(bad[19] + 1); // data set length one past its content
  CHECK_FALSE(dec.decode(1, bad.data(), bad.size(), nullptr));
  dec.decode(2, msgs[0].data(), msgs[0].size(), nullptr);
  dec.decode(2, msgs[1].data(), msgs[1].size(), nullptr);
  dec.end_session(1);
  dec.end_session(2);
  const auto reports = dec.domains();
  REQUIRE(reports.size() == 2);
  CHECK(reports[0].session == 1);
  CHECK(reports[0].decode_errors > 0);
  CHECK(reports[0].decode_errors == dec.stats().decode_errors); // all of them there
  CHECK(reports[1].session == 2);
  CHECK(reports[1].decode_errors == 0);
  CHECK(reports[1].records == 1);
  CHECK(dec.domains(2).size() == 1);
  CHECK(dec.domains(3).empty());
}
