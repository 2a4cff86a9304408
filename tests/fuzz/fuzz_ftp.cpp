// SPDX-License-Identifier: Apache-2.0
// Fuzzes the FTP control-channel parser: both directions cut at
// pseudo-random points, with occasional gaps, then finish(). Invariants
// (abort on violation): every exported string is valid UTF-8 within
// max_field, MODE is 0 or 1, RESULT_CODE is a reply code 200..699, no more
// records than max_records_per_flow, a parsed data endpoint has a family of
// 0, 4 or 6.
//
// Input: [0] flags (bit1 tiny limits, bit2 gaps)  [1..4] PRNG seed
//        [5..6] client byte count (big endian), then client, then server bytes.

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_driver.hpp"
#include "parsers/ftp/ftp_parser.hpp"

using namespace metaprobe;
using fuzz::check;
using fuzz::check_text;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::two_sided_input in;
  if (!fuzz::split_two_sided(data, size, in))
    return 0;
  parser_options o;
  if (in.flags & 2) {
    o.max_line = 24;
    o.max_field = 7;
    o.max_records_per_flow = 4;
  }
  const bool gaps = (in.flags & 4) != 0;
  parser_counters counters;
  ftp_parser p(o, counters);
  record_sink out;
  fuzz::feed_both_sides(p, in, gaps, out, {2048, 48, false});
  check(out.size() <= o.max_records_per_flow);
  for (const auto& r : out) {
    check(r.record.has_ftp());
    const auto& f = r.record.ftp();
    for (const std::string* t : {&f.server_name(), &f.user(), &f.password()})
      check_text(*t, o.max_field);
    check(f.mode() <= 1);
    check(f.result_code() >= 200 && f.result_code() <= 699);
  }
  const auto& ep = p.data_endpoint();
  check(ep.family == 0 || ep.family == 4 || ep.family == 6);
  (void)ftp_probe(in.payload, in.payload_len, direction::server_to_client);
  return 0;
}
