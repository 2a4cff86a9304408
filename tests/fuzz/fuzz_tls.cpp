// SPDX-License-Identifier: Apache-2.0
// Fuzzes the TLS stream parser and the handshake decoders: both directions
// cut into segments at pseudo-random points, with occasional gaps, then
// finish(); and the client bytes handed to each decoder as one message.
// Invariants (abort on violation): every exported string is valid UTF-8
// within max_field, records are the kinds the parser documents, no more
// records than max_records_per_flow, at most 16 cipher suites exported.
//
// Input: [0] flags (bit0 ssl_parse_reply, bit1 tiny limits, bit2 gaps,
//        bit3 decoders skip a record header)
//        [1..4] PRNG seed   [5..6] client byte count (big endian)
//        then the client bytes, then the server bytes.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_driver.hpp"
#include "parsers/tls/tls_handshake.hpp"
#include "parsers/tls/tls_parser.hpp"

using namespace metaprobe;
using fuzz::check;
using fuzz::check_text;

namespace {

void check_records(const record_sink& out, const parser_options& o) {
  check(out.size() <= o.max_records_per_flow);
  for (const auto& r : out) {
    if (r.record.has_clickstream()) {
      const auto& c = r.record.clickstream();
      check_text(c.hostname(), o.max_field);
      check(c.host_type() == 2 || c.host_type() == 3);
      check(c.cipher_suites().size() <= 32 && c.cipher_suites().size() % 2 == 0);
      check(c.cipher_suites().size() <= c.cipher_suites_len() + 1u);
    } else {
      check(r.record.has_ssl_reply());
      check(o.ssl_parse_reply);
      const auto& s = r.record.ssl_reply();
      check_text(s.cname(), o.max_field);
      check(s.host_type() <= 3);
      check(s.ssl_version() <= 0xffff && s.cipher_suite() <= 0xffff);
    }
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::two_sided_input in;
  if (!fuzz::split_two_sided(data, size, in))
    return 0;
  parser_options o;
  o.ssl_parse_reply = (in.flags & 1) != 0;
  if (in.flags & 2)
    fuzz::set_tiny_limits(o); // the TLS parser reads max_buffered, max_field, max_records_per_flow
  const bool gaps = (in.flags & 4) != 0;

  parser_counters counters;
  {
    auto p = make_tls_parser(o, counters);
    record_sink out;
    fuzz::feed_both_sides(*p, in, gaps, out);
    check_records(out, o);
    (void)p->flow_host();
  }
  const uint8_t* msg = in.payload;
  size_t msg_len = in.payload_len;
  {
    // The decoders on their own, on a message at byte 0 (flag bit3: after
    // a 5-byte record header).
    if ((in.flags & 8) && msg_len > 5) {
      msg += 5;
      msg_len -= 5;
    }
    tls::client_hello ch;
    if (tls::parse_client_hello(msg, msg_len, ch) == tls::hs_status::ok) {
      check(ch.cipher_suites.size() <= tls::max_cipher_suites);
      check(ch.alpn.size() <= tls::max_alpn);
      check(ch.sni.size() <= tls::max_name_bytes);
    }
    tls::server_hello sh;
    (void)tls::parse_server_hello(msg, msg_len, sh);
    if (tls::v2_hello_header(msg, msg_len) && msg_len > 2 &&
        tls::parse_v2_client_hello(msg + 2, msg_len - 2, ch) == tls::hs_status::ok)
      check(2 * std::min<size_t>(ch.cipher_suites.size(), 0x7fff) <= ch.cipher_suites_len);
    std::string cn;
    if (tls::parse_certificate_cn(msg, msg_len, cn) == tls::hs_status::ok)
      check(cn.size() <= tls::max_name_bytes);
  }
  (void)tls_probe(msg, msg_len, direction::client_to_server);
  return 0;
}
