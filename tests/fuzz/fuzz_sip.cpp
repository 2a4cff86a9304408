// SPDX-License-Identifier: Apache-2.0
// Fuzzes the SIP parser: both directions as TCP streams cut at pseudo-random
// points with occasional gaps, and the same bytes as datagrams (each side
// cut into several datagrams). Invariants (abort on violation): every
// exported string is valid UTF-8 within max_field, status codes are 0 or
// 100..699, no more records than max_records_per_flow per parser.
//
// Input: [0] flags (bit1 tiny limits, bit2 gaps)  [1..4] PRNG seed
//        [5..6] client byte count (big endian), then client, then server bytes.

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_driver.hpp"
#include "parsers/sip/sip_parser.hpp"

using namespace metaprobe;
using fuzz::check;
using fuzz::check_text;

namespace {

void check_records(const record_sink& out, const parser_options& o) {
  check(out.size() <= o.max_records_per_flow);
  for (const auto& r : out) {
    check(r.record.has_sip());
    const auto& s = r.record.sip();
    for (const std::string* t : {&s.msg_code(), &s.uri(), &s.from(), &s.to(), &s.callid(),
                                 &s.uagent(), &s.ctype(), &s.gateways()})
      check_text(*t, o.max_field);
    check(s.status_code() == 0 || (s.status_code() >= 100 && s.status_code() <= 699));
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::two_sided_input in;
  if (!fuzz::split_two_sided(data, size, in))
    return 0;
  parser_options o;
  if (in.flags & 2)
    fuzz::set_tiny_limits(o);
  const bool gaps = (in.flags & 4) != 0;
  parser_counters counters;
  {
    auto p = make_sip_stream_parser(o, counters);
    record_sink out;
    fuzz::feed_both_sides(*p, in, gaps, out);
    check_records(out, o);
  }
  {
    auto p = make_sip_datagram_parser(o, counters);
    record_sink out;
    for (int d = 0; d < 2; ++d) {
      size_t pos = 0;
      while (pos < in.side_len[d]) {
        size_t n = 1 + in.rng.next() % 1500;
        if (n > in.side_len[d] - pos)
          n = in.side_len[d] - pos;
        p->deliver(static_cast<direction>(d), in.side_data[d] + pos, n, 1, out);
        pos += n;
      }
    }
    check_records(out, o);
  }
  (void)sip_probe(in.payload, in.payload_len, direction::client_to_server);
  return 0;
}
