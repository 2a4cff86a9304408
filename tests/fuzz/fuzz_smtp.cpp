// SPDX-License-Identifier: Apache-2.0
// Fuzzes the SMTP stream parser (tests/fuzz/fuzz_mail.hpp: input layout and
// invariants); records are Mail with MAIL_PROTOCOL 0 and EVENT 1.

#include "fuzz_mail.hpp"
#include "parsers/smtp/smtp_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return metaprobe::fuzz::fuzz_mail_parser(data, size, &metaprobe::make_smtp_parser,
                                           &metaprobe::smtp_probe, 0, 1);
}
