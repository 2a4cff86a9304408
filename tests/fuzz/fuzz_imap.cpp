// SPDX-License-Identifier: Apache-2.0
// Fuzzes the IMAP stream parser (tests/fuzz/fuzz_mail.hpp: input layout and
// invariants); records are Mail with MAIL_PROTOCOL 2 and EVENT 2. The login
// attempt the parser keeps (LOGIN, AUTHENTICATE with any SASL mechanism)
// holds valid UTF-8 within max_field, and the account is a user it saw.

#include "fuzz_mail.hpp"
#include "parsers/imap/imap_parser.hpp"

namespace {

void check_login(const metaprobe::stream_parser& sp, const metaprobe::parser_options& o) {
  using metaprobe::fuzz::check;
  using metaprobe::fuzz::check_text;
  const auto& p = static_cast<const metaprobe::imap_parser&>(sp);
  const auto& l = p.last_login();
  check_text(l.user, o.max_field);
  check_text(l.password, o.max_field);
  check(l.mechanism.size() <= 40);
  check_text(p.account(), o.max_field);
  check(p.account().empty() || p.logins() > 0);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return metaprobe::fuzz::fuzz_mail_parser(data, size, &metaprobe::make_imap_parser,
                                           &metaprobe::imap_probe, 2, 2, &check_login);
}
