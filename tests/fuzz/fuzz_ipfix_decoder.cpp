// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the IPFIX decoder (metaprobe-receiver's input path).
// The input is read both as one datagram (UDP) and as a byte stream split
// into messages (TCP / file); every decoded record is formatted as JSON and
// text, so the formatting of arbitrary values is covered too.
#include <cstddef>
#include <cstdint>
#include <string>

#include "exporters/ipfix/ipfix_decoder.hpp"
#include "exporters/ipfix/record_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace metaprobe::ipfix;
  decoder_limits limits;
  limits.max_sessions = 4;
  limits.max_templates_per_session = 64;
  ipfix_decoder dec(limits);
  std::string line;
  auto cb = [&](const decoded_record& r) {
    line.clear();
    format_record(r, output_format::json, line);
    format_record(r, output_format::text, line);
  };
  dec.decode(1, data, size, cb);
  ipfix_stream_reader reader;
  reader.feed(data, size, [&](const uint8_t* d, size_t n) { dec.decode(2, d, n, cb); });
  (void)dec.domains();
  return 0;
}
