// SPDX-License-Identifier: Apache-2.0
// Fuzzes the XMPP stream parser: both directions, cut into segments at
// pseudo-random points, with occasional gaps, then finish(). Invariants
// (abort on violation): every exported string is valid UTF-8 within
// max_field, no more records than max_records_per_flow, records are Im with IM_PROTOCOL 7.
//
// Input: [0] flags (bit0 tiny limits, bit1 gaps)  [1..4] PRNG seed
//        [5..6] client byte count (big endian), then the client bytes,
//        then the server bytes.

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_driver.hpp"
#include "parsers/xmpp/xmpp_parser.hpp"

using namespace metaprobe;
using fuzz::check;
using fuzz::check_text;

namespace {

void check_records(const record_sink& out, const parser_options& o) {
  check(out.size() <= o.max_records_per_flow);
  for (const auto& r : out) {
    check(r.record.has_im());
    const auto& m = r.record.im();
    for (const std::string* s : {&m.im_login(), &m.im_passw(), &m.im_screen_name(),
                                 &m.im_uin(), &m.im_receivers()})
      check_text(*s, o.max_field);
    check(m.im_protocol() == 7 && m.result_code() <= 1);
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
  auto p = make_xmpp_parser(o, counters);
  record_sink out;
  fuzz::feed_both_sides(*p, in, gaps, out);
  check_records(out, o);
  (void)xmpp_probe(in.payload, in.payload_len, direction::client_to_server);
  (void)xmpp_probe(in.payload, in.payload_len, direction::server_to_client);
  return 0;
}
