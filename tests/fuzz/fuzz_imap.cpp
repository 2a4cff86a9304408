// SPDX-License-Identifier: Apache-2.0
// Fuzzes the IMAP stream parser (tests/fuzz/fuzz_mail.hpp: input layout and
// invariants); records are Mail with MAIL_PROTOCOL 2 and EVENT 2. The login
// attempt the parser keeps (LOGIN, AUTHENTICATE with any SASL mechanism)
// holds valid UTF-8 within max_field, and the account is a user it saw.

#include "fuzz_mail.hpp"
#include "parsers/imap/imap_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using metaprobe::fuzz::check_mail_login;
  return metaprobe::fuzz::fuzz_mail_parser(data, size, &metaprobe::make_imap_parser,
                                           &metaprobe::imap_probe, 2, 2,
                                           &check_mail_login<metaprobe::imap_parser>);
}
