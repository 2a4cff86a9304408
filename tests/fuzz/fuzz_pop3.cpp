// SPDX-License-Identifier: Apache-2.0
// Fuzzes the POP3 stream parser: both directions, cut into segments at
// pseudo-random points, with occasional gaps, then finish(). Invariants
// (abort on violation): every exported string is valid UTF-8 within
// max_field, no more records than max_records_per_flow, records are Mail with MAIL_PROTOCOL 1 and EVENT 2.
//
// Input: [0] flags (bit0 tiny limits, bit1 gaps)  [1..4] PRNG seed
//        [5..6] client byte count (big endian), then the client bytes,
//        then the server bytes.

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_driver.hpp"
#include "parsers/pop3/pop3_parser.hpp"

using namespace metaprobe;
using fuzz::check;
using fuzz::check_text;

namespace {

void check_records(const record_sink& out, const parser_options& o) {
  check(out.size() <= o.max_records_per_flow);
  for (const auto& r : out) {
    check(r.record.has_mail());
    const auto& m = r.record.mail();
    for (const std::string* s : {&m.mail_sender(), &m.mail_receiver(), &m.mail_cc(),
                                 &m.mail_subject(), &m.mail_servers(), &m.mail_reply()})
      check_text(*s, o.max_field);
    check(m.mail_protocol() == 1 && m.event() == 2 && m.attachment() <= 1);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::two_sided_input in;
  if (!fuzz::split_two_sided(data, size, in))
    return 0;
  parser_options o;
  if (in.flags & 1)
    fuzz::set_tiny_limits(o);
  const bool gaps = (in.flags & 2) != 0;

  parser_counters counters;
  auto p = make_pop3_parser(o, counters);
  record_sink out;
  fuzz::feed_both_sides(*p, in, gaps, out);
  check_records(out, o);
  (void)pop3_probe(in.payload, in.payload_len, direction::client_to_server);
  (void)pop3_probe(in.payload, in.payload_len, direction::server_to_client);
  return 0;
}
