// SPDX-License-Identifier: Apache-2.0
#pragma once
// One decoded record as one line of JSON or text (metaprobe-receiver).
//
// JSON: {"template":"clickstream","family":"ipv4","TIME_STAMP":1700000000,
// "LOGIN":"alice","IP_SOURCE":"10.0.0.1",...}. Keys are the template field
// names of spec/templates.tsv. Values: integers as numbers
// (dateTimeMilliseconds too), IPv4 dotted, IPv6 RFC 5952, MACs aa:bb:cc:..,
// strings as JSON strings (invalid UTF-8 replaced by U+FFFD), octetArrays
// as lowercase hex strings. Records of unknown templates carry
// "template":"unknown" and "template_id".
//
// Text: `clickstream ipv4 TIME_STAMP=1700000000 LOGIN="alice" ...` with
// strings in double quotes (\" \\ \n \r \t, other control octets \xHH).

#include <string>

#include "exporters/ipfix/ipfix_decoder.hpp"

namespace metaprobe::ipfix {

enum class output_format { json, text };

// Appends the record (no trailing newline) to `out`.
void format_record(const decoded_record& rec, output_format fmt, std::string& out);

// Single-value helpers (also used by tests).
void append_json_string(std::string& out, const uint8_t* data, size_t size);
void append_hex(std::string& out, const uint8_t* data, size_t size);
void append_address(std::string& out, const decoded_field& f); // ipv4 / ipv6 / mac

} // namespace metaprobe::ipfix
