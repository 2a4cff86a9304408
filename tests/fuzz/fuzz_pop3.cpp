// SPDX-License-Identifier: Apache-2.0
// Fuzzes the POP3 stream parser (tests/fuzz/fuzz_mail.hpp: input layout and
// invariants); records are Mail with MAIL_PROTOCOL 1 and EVENT 2. The login
// attempt the parser keeps (USER/PASS, APOP, AUTH with any SASL mechanism)
// holds valid UTF-8 within max_field, and the account is a user it saw.

#include "fuzz_mail.hpp"
#include "parsers/pop3/pop3_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using metaprobe::fuzz::check_mail_login;
  return metaprobe::fuzz::fuzz_mail_parser(data, size, &metaprobe::make_pop3_parser,
                                           &metaprobe::pop3_probe, 1, 2,
                                           &check_mail_login<metaprobe::pop3_parser>);
}
