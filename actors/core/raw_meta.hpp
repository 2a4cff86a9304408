// SPDX-License-Identifier: Apache-2.0
#pragma once
// Raw metadata (template `raw`, sink group meta): which protocols' packets
// are exported as truncated IP packets, and their META_PROTO codes.
//
// META_PROTO is the commercial DPI's "internal protocol identifier" (seeds:
// 3 SIP, 4 FTP, 5 SMTP, 6 POP3, 7 IMAP, 8 XMPP, 9 ICQ, 10 RSS, 11 NNTP,
// 12 H323, 13 ZELLO). metaprobe detects SIP, FTP, SMTP, POP3, IMAP and
// XMPP; those are the protocols `raw_meta_protocols` may select. The
// classifier emits the raw items (classifier_core.hpp), the correlator
// turns them into v1::Raw records (correlator.hpp).
//
// No I/O, no state: safe from any thread.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/parser.hpp"

namespace metaprobe {

// META_PROTO of a metaprobe protocol; 0 when the seeds give it no code
// (HTTP, TLS, QUIC, DNS, unknown).
uint16_t meta_proto_of(app_protocol p);

// Parses a `raw_meta_protocols` value: comma-separated protocol names
// (sip, ftp, smtp, pop3, imap, xmpp; case-insensitive) or META_PROTO codes
// (3..8), spaces allowed around items, empty = none. Duplicates are kept
// once. Returns "" on success (the protocols appended to `out` when it is
// not null), else what was wrong, e.g.
//   "'icq' (META_PROTO 9) is not detected by metaprobe; expected ...".
std::string parse_raw_meta_protocols(std::string_view text, std::vector<app_protocol>* out);

} // namespace metaprobe
