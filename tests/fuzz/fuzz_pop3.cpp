// SPDX-License-Identifier: Apache-2.0
// Fuzzes the POP3 stream parser (tests/fuzz/fuzz_mail.hpp: input layout and
// invariants); records are Mail with MAIL_PROTOCOL 1 and EVENT 2.

#include "fuzz_mail.hpp"
#include "parsers/pop3/pop3_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return metaprobe::fuzz::fuzz_mail_parser(data, size, &metaprobe::make_pop3_parser,
                                           &metaprobe::pop3_probe, 1, 2);
}
