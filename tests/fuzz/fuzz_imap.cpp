// SPDX-License-Identifier: Apache-2.0
// Fuzzes the IMAP stream parser (tests/fuzz/fuzz_mail.hpp: input layout and
// invariants); records are Mail with MAIL_PROTOCOL 2 and EVENT 2.

#include "fuzz_mail.hpp"
#include "parsers/imap/imap_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return metaprobe::fuzz::fuzz_mail_parser(data, size, &metaprobe::make_imap_parser,
                                           &metaprobe::imap_probe, 2, 2);
}
