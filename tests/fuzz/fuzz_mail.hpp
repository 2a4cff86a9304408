// SPDX-License-Identifier: Apache-2.0
#pragma once
// The fuzz body shared by the SMTP, POP3 and IMAP targets: both directions,
// cut into segments at pseudo-random points, with occasional gaps, then
// finish(). Invariants (abort on violation): every exported string is valid
// UTF-8 within max_field, no more records than max_records_per_flow, every
// record is Mail with the target's MAIL_PROTOCOL and EVENT.
//
// Input: [0] flags (bit0 tiny limits, bit1 gaps)  [1..4] PRNG seed
//        [5..6] client byte count (big endian), then the client bytes,
//        then the server bytes.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "fuzz_driver.hpp"
#include "parsers/registry.hpp"

namespace metaprobe::fuzz {

using stream_factory = std::unique_ptr<stream_parser> (*)(const parser_options&,
                                                          parser_counters&);
using payload_probe = bool (*)(const uint8_t*, size_t, direction);
// Target-specific invariants on the parser after finish() (may be null).
using parser_check = void (*)(const stream_parser&, const parser_options&);

// The invariants of the login a POP3 or IMAP parser keeps (its last_login(),
// account() and logins()): valid UTF-8 within max_field, a mechanism name of
// at most 40 bytes, an account only after a login was seen.
template <class Parser>
void check_mail_login(const stream_parser& sp, const parser_options& o) {
  const auto& p = static_cast<const Parser&>(sp);
  const auto& l = p.last_login();
  check_text(l.user, o.max_field);
  check_text(l.password, o.max_field);
  check(l.mechanism.size() <= 40);
  check_text(p.account(), o.max_field);
  check(p.account().empty() || p.logins() > 0);
}

inline int fuzz_mail_parser(const uint8_t* data, size_t size, stream_factory make,
                            payload_probe probe, uint32_t mail_protocol, uint32_t event,
                            parser_check after = nullptr) {
  two_sided_input in;
  if (!split_two_sided(data, size, in))
    return 0;
  parser_options o;
  if (in.flags & 1)
    set_tiny_limits(o);
  const bool gaps = (in.flags & 2) != 0;

  parser_counters counters;
  auto p = make(o, counters);
  record_sink out;
  feed_both_sides(*p, in, gaps, out);
  check(out.size() <= o.max_records_per_flow);
  for (const auto& r : out) {
    check(r.record.has_mail());
    const auto& m = r.record.mail();
    for (const std::string* s : {&m.mail_sender(), &m.mail_receiver(), &m.mail_cc(),
                                 &m.mail_subject(), &m.mail_servers(), &m.mail_reply()})
      check_text(*s, o.max_field);
    check(m.mail_protocol() == mail_protocol && m.event() == event && m.attachment() <= 1);
  }
  if (after != nullptr)
    after(*p, o);
  (void)probe(in.payload, in.payload_len, direction::client_to_server);
  (void)probe(in.payload, in.payload_len, direction::server_to_client);
  return 0;
}

} // namespace metaprobe::fuzz
