// SPDX-License-Identifier: Apache-2.0
// Fuzzes the IMAP stream parser: both directions, cut into segments at
// pseudo-random points, with occasional gaps, then finish(). Invariants
// (abort on violation): every exported string is valid UTF-8 within
// max_field, no more records than max_records_per_flow, records are Mail with MAIL_PROTOCOL 2 and EVENT 2.
//
// Input: [0] flags (bit0 tiny limits, bit1 gaps)  [1..4] PRNG seed
//        [5..6] client byte count (big endian), then the client bytes,
//        then the server bytes.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "parsers/common/field_text.hpp"
#include "parsers/imap/imap_parser.hpp"

using namespace metaprobe;

namespace {

void check(bool ok) {
  if (!ok)
    std::abort();
}

void check_text(const std::string& s, size_t max_len) {
  check(s.size() <= max_len);
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  for (size_t i = 0; i < s.size();) {
    const size_t n = text::utf8_sequence_length(p + i, s.size() - i);
    check(n > 0);
    i += n;
  }
}

void check_records(const record_sink& out, const parser_options& o) {
  check(out.size() <= o.max_records_per_flow);
  for (const auto& r : out) {
    check(r.record.has_mail());
    const auto& m = r.record.mail();
    for (const std::string* s : {&m.mail_sender(), &m.mail_receiver(), &m.mail_cc(),
                                 &m.mail_subject(), &m.mail_servers(), &m.mail_reply()})
      check_text(*s, o.max_field);
    check(m.mail_protocol() == 2 && m.event() == 2 && m.attachment() <= 1);
  }
}

struct prng {
  uint32_t x;
  uint32_t next() {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
  }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 7)
    return 0;
  const uint8_t flags = data[0];
  prng rng{(uint32_t{data[1]} << 24 | uint32_t{data[2]} << 16 | uint32_t{data[3]} << 8 | data[4]) |
           1u};
  size_t client_len = (size_t{data[5]} << 8) | data[6];
  data += 7;
  size -= 7;
  if (client_len > size)
    client_len = size;
  const uint8_t* side_data[2] = {data, data + client_len};
  const size_t side_len[2] = {client_len, size - client_len};

  parser_options o;
  if (flags & 1) {
    o.max_line = 40;
    o.max_headers = 3;
    o.max_buffered = 200;
    o.max_field = 9;
    o.max_records_per_flow = 5;
  }
  const bool gaps = (flags & 2) != 0;

  parser_counters counters;
  auto p = make_imap_parser(o, counters);
  record_sink out;
  size_t pos[2] = {0, 0};
  uint32_t seq[2] = {rng.next(), rng.next()};
  while (pos[0] < side_len[0] || pos[1] < side_len[1]) {
    int d = static_cast<int>(rng.next() & 1);
    if (pos[d] >= side_len[d])
      d ^= 1;
    const size_t left = side_len[d] - pos[d];
    const uint32_t r = rng.next();
    size_t n = (r & 7) == 0 ? 1 + (r >> 8) % 4096 : 1 + (r >> 8) % 64;
    if (n > left)
      n = left;
    if (gaps && (r & 0x70) == 0x70)
      p->gap(static_cast<direction>(d), n);
    else
      p->deliver(static_cast<direction>(d), side_data[d] + pos[d], n, 1, seq[d], out);
    pos[d] += n;
    seq[d] += static_cast<uint32_t>(n);
  }
  p->finish(2, out);
  check_records(out, o);
  (void)imap_probe(data, size, direction::client_to_server);
  (void)imap_probe(data, size, direction::server_to_client);
  return 0;
}
