// SPDX-License-Identifier: Apache-2.0
// Encoder rules: variable-length encoding, UTF-8, fixed-width values, MTU
// packing, sequence numbers.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "exporters/ipfix/field_writer.hpp"
#include "exporters/ipfix/ipfix_decoder.hpp"
#include "exporters/ipfix/ipfix_encoder.hpp"
#include "exporters/ipfix/utf8.hpp"
#include "metaprobe/v1/records.pb.h"
#include "sample_records.hpp"

using namespace metaprobe;
using namespace metaprobe::ipfix;

namespace {

struct capture {
  std::vector<std::vector<uint8_t>> msgs;
  std::vector<uint32_t> records;
  message_handler handler() {
    return [this](const uint8_t* d, size_t n, uint32_t r) {
      msgs.emplace_back(d, d + n);
      records.push_back(r);
    };
  }
};

uint32_t seq_of(const std::vector<uint8_t>& m) {
  return static_cast<uint32_t>(m[8]) << 24 | static_cast<uint32_t>(m[9]) << 16 |
         static_cast<uint32_t>(m[10]) << 8 | m[11];
}

encoder_config test_config(size_t mtu = 1400) {
  encoder_config ec;
  ec.max_message_size = mtu;
  ec.observation_domain_id = 3;
  ec.clock = [] { return 1700000000u; };
  return ec;
}

v1::Record small_dns(uint32_t i, const std::string& domain = "example.com") {
  v1::Record r;
  auto* d = r.mutable_dns();
  d->mutable_meta()->set_family(v1::FAMILY_IPV4);
  d->mutable_meta()->set_ip_source(std::string("\x0a\x00\x00\x01", 4));
  d->mutable_meta()->set_ip_destination(std::string("\x08\x08\x08\x08", 4));
  d->mutable_meta()->set_session_id(i);
  d->set_domain(domain);
  return r;
}

// Decodes every message with a fresh-session decoder fed the templates first.
std::vector<std::string> decode_all(const std::vector<std::vector<uint8_t>>& msgs, const std::string& field) {
  ipfix_decoder dec;
  std::vector<std::string> out;
  for (const auto& m : msgs) {
    CHECK(dec.decode(1, m.data(), m.size(), [&](const decoded_record& r) {
      for (const auto& f : r.fields)
        if (f.name == field) out.emplace_back(reinterpret_cast<const char*>(f.data), f.size);
    }));
  }
  CHECK(dec.stats().decode_errors == 0);
  CHECK(dec.stats().sequence_gaps == 0);
  return out;
}

} // namespace

TEST_CASE("variable-length fields: 1-octet length below 255, else 255 + 2 octets") {
  for (size_t len : {0u, 1u, 254u, 255u, 256u, 300u, 65534u, 65535u}) {
    CAPTURE(len);
    std::vector<uint8_t> buf(len + 16, 0xee);
    field_writer w(buf.data(), buf.data() + buf.size(), 65535);
    const std::string s(len, 'x');
    w.put_string(s);
    REQUIRE_FALSE(w.overflow());
    if (len < 255) {
      CHECK(w.pos() - buf.data() == static_cast<long>(1 + len));
      CHECK(buf[0] == len);
    } else {
      CHECK(w.pos() - buf.data() == static_cast<long>(3 + len));
      CHECK(buf[0] == 255);
      CHECK((buf[1] << 8 | buf[2]) == static_cast<int>(len));
    }
    CHECK(w.stats().truncated == 0);
  }
  // octet arrays the same
  std::vector<uint8_t> buf(400);
  field_writer w(buf.data(), buf.data() + buf.size(), 65535);
  w.put_octets(std::string(300, '\x01'));
  CHECK(buf[0] == 255);
  CHECK((buf[1] << 8 | buf[2]) == 300);
  CHECK(w.pos() - buf.data() == 303);
}

TEST_CASE("field writer: bounds, widths, addresses") {
  std::vector<uint8_t> buf(64, 0xee);
  SUBCASE("integers are network order, truncated to the width") {
    field_writer w(buf.data(), buf.data() + buf.size(), 100);
    w.put_u8(0x1ff);
    w.put_u16(70000); // 0x11170 -> 0x1170
    w.put_u32(0x1122334455ULL);
    w.put_u64(0x0102030405060708ULL);
    const std::vector<uint8_t> want = {0xff, 0x11, 0x70, 0x22, 0x33, 0x44, 0x55,
                                       1,    2,    3,    4,    5,    6,    7, 8};
    CHECK(std::vector<uint8_t>(buf.begin(), buf.begin() + 15) == want);
  }
  SUBCASE("addresses of the wrong size are zeros and counted") {
    field_writer w(buf.data(), buf.data() + buf.size(), 100);
    w.put_ipv4(std::string("\x01\x02\x03\x04", 4));
    w.put_ipv4(std::string(16, '\x05')); // an IPv6 address in an IPv4 field
    w.put_mac("");
    w.put_ipv6(std::string(16, '\x07'));
    CHECK(w.stats().bad_address == 2);
    CHECK(std::vector<uint8_t>(buf.begin(), buf.begin() + 14) ==
          std::vector<uint8_t>{1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
    CHECK(buf[14] == 7);
    CHECK(w.pos() - buf.data() == 30);
  }
  SUBCASE("overflow stops writing") {
    field_writer w(buf.data(), buf.data() + 10, 100);
    w.put_u64(1);
    CHECK_FALSE(w.overflow());
    w.put_u32(2);
    CHECK(w.overflow());
    w.put_u8(3); // no effect after overflow
    CHECK(w.pos() - buf.data() == 8);
    CHECK(buf[8] == 0xee);
  }
}

TEST_CASE("UTF-8: truncation on a character boundary, invalid octets replaced") {
  std::vector<uint8_t> buf(64);
  SUBCASE("cut never splits a character") {
    // "aé€😀" = 61 | c3 a9 | e2 82 ac | f0 9f 98 80
    const std::string s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    for (uint32_t max = 0; max <= s.size(); ++max) {
      CAPTURE(max);
      field_writer w(buf.data(), buf.data() + buf.size(), max);
      w.put_string(s);
      const size_t got = buf[0];
      const size_t want = max >= 10 ? 10 : max >= 6 ? 6 : max >= 3 ? 3 : max >= 1 ? 1 : 0;
      CHECK(got == want);
      CHECK(utf8_valid_prefix(buf.data() + 1, got) == got);
      CHECK(w.stats().truncated == (max < s.size() ? 1u : 0u));
      CHECK(w.stats().invalid_utf8 == 0);
    }
  }
  SUBCASE("invalid input becomes valid, each bad octet U+FFFD") {
    field_writer w(buf.data(), buf.data() + buf.size(), 100);
    w.put_string(std::string("ok\xff\xc3(", 5)); // 0xff invalid, c3 without continuation
    CHECK(w.stats().invalid_utf8 == 1);
    const std::string want = "ok\xef\xbf\xbd\xef\xbf\xbd(";
    REQUIRE(buf[0] == want.size());
    CHECK(std::string(reinterpret_cast<char*>(buf.data() + 1), buf[0]) == want);
  }
  SUBCASE("overlong, surrogate and out-of-range sequences are invalid") {
    const std::vector<std::string> bad = {"\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                          "\xf8\x88\x80\x80\x80", "\x80"};
    for (const auto& b : bad) {
      CAPTURE(b);
      CHECK(utf8_valid_prefix(reinterpret_cast<const uint8_t*>(b.data()), b.size()) == 0);
    }
    const std::string good = "\xf4\x8f\xbf\xbf\xed\x9f\xbf";
    CHECK(utf8_valid_prefix(reinterpret_cast<const uint8_t*>(good.data()), good.size()) == good.size());
  }
  SUBCASE("invalid input truncated after repair") {
    field_writer w(buf.data(), buf.data() + buf.size(), 4);
    w.put_string(std::string("ab\xff\xff", 4)); // repaired: ab + 2 x 3 octets
    CHECK(buf[0] == 2);                           // U+FFFD does not fit after "ab" in 4
    CHECK(w.stats().truncated == 1);
  }
}

TEST_CASE("messages respect the MTU and never split a record") {
  capture cap;
  const size_t mtu = 512;
  ipfix_encoder enc(test_config(mtu), cap.handler());
  enc.add_templates(kind_bit(template_kind::dns));
  const int n = 500;
  for (int i = 0; i < n; ++i) {
    // lengths vary so record boundaries fall everywhere
    CHECK(enc.add(small_dns(static_cast<uint32_t>(i), std::string(static_cast<size_t>(i % 97), 'd'))) ==
          ipfix_encoder::add_result::added);
  }
  enc.flush();
  REQUIRE(cap.msgs.size() > 10);
  uint32_t total = 0;
  for (size_t i = 0; i < cap.msgs.size(); ++i) {
    CHECK(cap.msgs[i].size() <= mtu);
    CHECK((cap.msgs[i][2] << 8 | cap.msgs[i][3]) == static_cast<int>(cap.msgs[i].size()));
    total += cap.records[i];
  }
  CHECK(total == static_cast<uint32_t>(n));
  // all messages decode standalone after the templates: no split record
  const auto domains = decode_all(cap.msgs, "DOMAIN");
  REQUIRE(domains.size() == static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) CHECK(domains[static_cast<size_t>(i)] == std::string(static_cast<size_t>(i % 97), 'd'));
  // packed: every message but the last is at least 2/3 full
  for (size_t i = 1; i + 1 < cap.msgs.size(); ++i) CHECK(cap.msgs[i].size() > mtu * 2 / 3);
  CHECK(enc.counters().records_encoded == static_cast<uint64_t>(n));
}

TEST_CASE("sequence numbers count data records before the message, drops included") {
  capture cap;
  encoder_config ec = test_config(300);
  ec.max_var_length = 65535;
  ipfix_encoder enc(ec, cap.handler());
  enc.add_templates(kind_bit(template_kind::dns));
  enc.flush();
  REQUIRE(cap.msgs.size() == 1);
  CHECK(seq_of(cap.msgs[0]) == 0);
  CHECK(cap.records[0] == 0);

  for (uint32_t i = 0; i < 10; ++i) enc.add(small_dns(i));
  // larger than any 300-octet message: dropped, counted, still in the sequence
  CHECK(enc.add(small_dns(99, std::string(400, 'x'))) == ipfix_encoder::add_result::too_large);
  CHECK(enc.counters().records_too_large == 1);
  for (uint32_t i = 10; i < 20; ++i) enc.add(small_dns(i));
  enc.flush();
  uint32_t expected = 0;
  bool gap_seen = false;
  for (size_t m = 1; m < cap.msgs.size(); ++m) {
    const uint32_t seq = seq_of(cap.msgs[m]);
    if (seq == expected + 1) gap_seen = true; // the dropped record
    CHECK((seq == expected || seq == expected + 1));
    expected = seq + cap.records[m];
  }
  CHECK(gap_seen);
  CHECK(expected == 21);
  CHECK(enc.sequence() == 21);

  // a 65535-octet string can never fit into a message (record > 65535)
  encoder_config big = test_config(65535);
  big.max_var_length = 65535;
  capture cap2;
  ipfix_encoder enc2(big, cap2.handler());
  CHECK(enc2.add(small_dns(1, std::string(65535, 'y'))) == ipfix_encoder::add_result::too_large);
  CHECK(enc2.add(small_dns(2, std::string(65000, 'y'))) == ipfix_encoder::add_result::added);
  enc2.flush();
  REQUIRE(cap2.msgs.size() == 1);
  CHECK(seq_of(cap2.msgs[0]) == 1);
  CHECK(cap2.msgs[0].size() > 65000);

  // reset starts a new session at 0
  enc.add(small_dns(1));
  CHECK(enc.reset() == 1);
  CHECK(enc.sequence() == 0);
  enc.note_dropped(5);
  CHECK(enc.sequence() == 5);
}

TEST_CASE("the max string length applies to every string field") {
  capture cap;
  encoder_config ec = test_config(1400);
  ec.max_var_length = 16;
  ipfix_encoder enc(ec, cap.handler());
  enc.add_templates(kind_bit(template_kind::dns));
  enc.add(small_dns(1, std::string(100, 'z')));
  enc.flush();
  const auto d = decode_all(cap.msgs, "DOMAIN");
  REQUIRE(d.size() == 1);
  CHECK(d[0] == std::string(16, 'z'));
  CHECK(enc.counters().strings_truncated == 1);
}

TEST_CASE("records of different templates share a message in separate sets") {
  capture cap;
  ipfix_encoder enc(test_config(1400), cap.handler());
  const uint32_t all = (1u << template_kind_count) - 1;
  enc.add_templates(all);
  enc.flush();
  const size_t template_msgs = cap.msgs.size();
  const auto recs = test::all_sample_records();
  for (const auto& r : recs) CHECK(enc.add(r) == ipfix_encoder::add_result::added);
  enc.add(recs[0]);
  enc.add(recs[0]); // same template twice in a row: one set
  enc.flush();
  uint32_t total = 0;
  for (size_t i = template_msgs; i < cap.msgs.size(); ++i) total += cap.records[i];
  CHECK(total == recs.size() + 2);
  // the last set of the last message holds the two clickstream records
  const auto& last = cap.msgs.back();
  size_t off = 16, last_set = 0;
  while (off < last.size()) {
    last_set = off;
    off += static_cast<size_t>(last[off + 2] << 8 | last[off + 3]);
  }
  CHECK(off == last.size());
  CHECK((last[last_set] << 8 | last[last_set + 1]) == 1000);
  // no record kind: nothing encoded
  CHECK(enc.add(v1::Record()) == ipfix_encoder::add_result::no_kind);
}

TEST_CASE("exporter statistics options template and record") {
  capture cap;
  encoder_config ec = test_config(1400);
  ec.exporter_stats = true;
  ipfix_encoder enc(ec, cap.handler());
  enc.add_templates(kind_bit(template_kind::dns));
  enc.add(small_dns(1));
  enc.add_exporter_stats({5, 6000, 70, 8});
  enc.flush();
  ipfix_decoder dec;
  std::vector<std::pair<std::string, uint64_t>> stats;
  for (const auto& m : cap.msgs)
    dec.decode(1, m.data(), m.size(), [&](const decoded_record& r) {
      if (!r.options) return;
      CHECK(r.kind == "exporter_stats");
      for (const auto& f : r.fields) stats.emplace_back(std::string(f.name), f.number);
    });
  const std::vector<std::pair<std::string, uint64_t>> want = {{"observationDomainId", 3},
                                                              {"exportedMessageTotalCount", 5},
                                                              {"exportedOctetTotalCount", 6000},
                                                              {"exportedFlowRecordTotalCount", 70},
                                                              {"notSentFlowTotalCount", 8}};
  CHECK(stats == want);
  CHECK(dec.stats().options_records == 1);
  CHECK(dec.stats().data_records == 1);
  CHECK(enc.sequence() == 2); // options records are data records too
  // ... but the handler is told the flow records only (sink counters)
  REQUIRE(cap.records.size() == 1);
  CHECK(cap.records[0] == 1);
  // a message of statistics alone carries no flow record; the next
  // message's sequence number still counts the statistics record
  enc.add_exporter_stats({6, 7000, 71, 8});
  CHECK(enc.pending_records() == 0);
  enc.flush();
  enc.add(small_dns(2));
  enc.flush();
  REQUIRE(cap.records.size() == 3);
  CHECK(cap.records[1] == 0);
  CHECK(cap.records[2] == 1);
  CHECK(seq_of(cap.msgs[2]) == 3);
  // reset() reports discarded flow records only
  enc.add_exporter_stats({7, 8000, 72, 8});
  enc.add(small_dns(3));
  CHECK(enc.reset() == 1);
}
