// SPDX-License-Identifier: Apache-2.0
#pragma once
// UTF-8 checks for IPFIX `string` elements (RFC 7011 §6.1.6: strings are
// UTF-8). Strict RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF.

#include <cstddef>
#include <cstdint>

namespace metaprobe::ipfix {

// Length of the longest prefix of [p, p+n) that is valid UTF-8 and ends on a
// character boundary. Equals n when the whole input is valid.
size_t utf8_valid_prefix(const uint8_t* p, size_t n);

// For valid UTF-8 input: the largest length <= max that ends on a character
// boundary (never cuts a multi-byte character in two).
size_t utf8_truncate(const uint8_t* p, size_t n, size_t max);

// Writes a valid UTF-8 rendering of [in, in+n) to `out` (may be nullptr to
// only measure): every byte that does not start a valid sequence is replaced
// by U+FFFD (EF BF BD); output stops at the last whole character that fits
// in `max` octets. Returns the octets written (or that would be written).
size_t utf8_sanitize(const uint8_t* in, size_t n, uint8_t* out, size_t max);

} // namespace metaprobe::ipfix
