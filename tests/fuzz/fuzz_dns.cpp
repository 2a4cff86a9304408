// SPDX-License-Identifier: Apache-2.0
// Fuzzes the DNS parsers: the input as one UDP datagram, and as a TCP byte
// stream (length-prefixed messages) cut into segments at pseudo-random
// points with occasional gaps; plus the probe. Invariants (abort on
// violation): exported strings are valid UTF-8 within max_field, records
// stay within max_records_per_flow, every record is a Dns one with a
// transport matching its parser, and a record's RDATA lies in the input.
//
// Input: [0] flags (bit0 tiny limits, bit1 gaps)  [1..4] PRNG seed, then the
// payload.

#include <cstddef>
#include <cstdint>

#include "fuzz_driver.hpp"
#include "parsers/dns/dns_parser.hpp"

using namespace metaprobe;
using fuzz::check;
using fuzz::check_text;

namespace {

void check_records(const record_sink& out, const parser_options& o, uint32_t transport,
                   size_t input_len) {
  check(out.size() <= o.max_records_per_flow);
  for (const auto& r : out) {
    check(r.record.has_dns());
    const auto& d = r.record.dns();
    check(d.transport() == transport);
    check_text(d.domain(), o.max_field);
    check_text(d.rdata_text(), o.max_field);
    check(d.rcode() <= 15 && d.rrtype() <= 0xffff && d.rrclass() <= 0xffff);
    // Expanded names can make RDATA longer than on the wire, never beyond
    // 255 bytes per name: a loose bound that still catches garbage.
    check(d.rdata().size() <= input_len + 4 * 256);
    if (d.section() == v1::Dns::QUESTION)
      check(d.rdata().empty() && d.ttl() == 0);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5)
    return 0;
  const uint8_t flags = data[0];
  fuzz::prng rng = fuzz::seed_prng(data + 1);
  data += 5;
  size -= 5;
  parser_options o;
  if (flags & 1) {
    o.max_buffered = 64;
    o.max_field = 7;
    o.max_records_per_flow = 4;
  }
  parser_counters counters;
  {
    auto p = make_dns_datagram_parser(o, counters);
    record_sink out;
    p->deliver(direction::client_to_server, data, size, 1, out);
    p->deliver(direction::server_to_client, data, size, 1, out);
    check_records(out, o, 0, size);
  }
  {
    auto p = make_dns_stream_parser(o, counters);
    record_sink out;
    uint32_t seq = rng.next();
    for (size_t pos = 0; pos < size;) {
      const uint32_t r = rng.next();
      size_t n = 1 + (r >> 8) % ((r & 3) == 0 ? 2048 : 24);
      if (n > size - pos)
        n = size - pos;
      const auto d = static_cast<direction>((r >> 4) & 1);
      if ((flags & 2) && (r & 0xe0) == 0xe0)
        p->gap(d, n);
      else
        p->deliver(d, data + pos, n, 1, seq, out);
      pos += n;
      seq += static_cast<uint32_t>(n);
    }
    p->finish(2, out);
    check_records(out, o, 1, size);
  }
  (void)dns_probe(data, size, direction::client_to_server);
  return 0;
}
