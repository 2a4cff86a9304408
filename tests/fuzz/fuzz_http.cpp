// SPDX-License-Identifier: Apache-2.0
// Fuzzes the HTTP/1.x parser: both directions, cut into segments at
// pseudo-random points, with occasional gaps, then finish(); and the same
// bytes as datagrams. Invariants (abort on violation): every exported string
// is valid UTF-8 within max_field, no more records than max_records_per_flow
// (SIP records, from SIP over WebSocket after a 101, included).
//
// Input: [0] flags (bit0 http_parse_reply, bit1 tiny limits, bit2 gaps)
//        [1..4] PRNG seed   [5..6] client byte count (big endian)
//        then the client bytes, then the server bytes.

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_driver.hpp"
#include "parsers/http/http_parser.hpp"

using namespace metaprobe;
using fuzz::check;
using fuzz::check_text;

namespace {

void check_records(const record_sink& out, const parser_options& o) {
  check(out.size() <= o.max_records_per_flow);
  for (const auto& r : out) {
    if (r.record.has_clickstream()) {
      const auto& c = r.record.clickstream();
      for (const std::string* s : {&c.hostname(), &c.path(), &c.referer(), &c.user_agent(),
                                   &c.cookie(), &c.method_name(), &c.http_version()})
        check_text(*s, o.max_field);
      check(c.host_type() == 1 && c.method() <= 4);
    } else if (r.record.has_sip()) {
      // SIP over WebSocket after a 101 (RFC 7118).
      const auto& sp = r.record.sip();
      for (const std::string* t : {&sp.msg_code(), &sp.uri(), &sp.from(), &sp.to(),
                                   &sp.callid(), &sp.uagent(), &sp.ctype(), &sp.gateways()})
        check_text(*t, o.max_field);
    } else {
      check(r.record.has_http_reply());
      check(o.http_parse_reply);
      check_text(r.record.http_reply().content_type(), o.max_field);
      check_text(r.record.http_reply().location(), o.max_field);
    }
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::two_sided_input in;
  if (!fuzz::split_two_sided(data, size, in))
    return 0;
  parser_options o;
  o.http_parse_reply = (in.flags & 1) != 0;
  if (in.flags & 2)
    fuzz::set_tiny_limits(o);
  const bool gaps = (in.flags & 4) != 0;

  parser_counters counters;
  {
    auto p = make_http_parser(o, counters);
    record_sink out;
    fuzz::feed_both_sides(*p, in, gaps, out);
    check_records(out, o);
    (void)p->flow_host();
  }
  {
    // Datagram mode: each side's bytes as one datagram each.
    auto p = make_http_datagram_parser(o, counters);
    record_sink out;
    p->deliver(direction::client_to_server, in.side_data[0], in.side_len[0], 1, out);
    p->deliver(direction::server_to_client, in.side_data[1], in.side_len[1], 1, out);
    check_records(out, o);
  }
  (void)http_probe(in.payload, in.payload_len, direction::client_to_server);
  return 0;
}
