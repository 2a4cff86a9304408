// SPDX-License-Identifier: Apache-2.0
// Fuzzes the TLS stream parser and the handshake decoders: both directions
// cut into segments at pseudo-random points, with occasional gaps, then
// finish(); and the client bytes handed to each decoder as one message.
// Invariants (abort on violation): every exported string is valid UTF-8
// within max_field, records are the kinds the parser documents, no more
// records than max_records_per_flow, at most 16 cipher suites exported.
//
// Input: [0] flags (bit0 ssl_parse_reply, bit1 tiny limits, bit2 gaps,
//        bit3 decoders skip a record header)
//        [1..4] PRNG seed   [5..6] client byte count (big endian)
//        then the client bytes, then the server bytes.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "parsers/common/field_text.hpp"
#include "parsers/tls/tls_handshake.hpp"
#include "parsers/tls/tls_parser.hpp"

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
    if (r.record.has_clickstream()) {
      const auto& c = r.record.clickstream();
      check_text(c.hostname(), o.max_field);
      check(c.host_type() == 2 || c.host_type() == 3);
      check(c.cipher_suites().size() <= 32 && c.cipher_suites().size() % 2 == 0);
      check(c.cipher_suites().size() <= c.cipher_suites_len() + 1u);
    } else {
      check(r.record.has_ssl_reply());
      check(o.ssl_parse_reply);
      const auto& s = r.record.ssl_reply();
      check_text(s.cname(), o.max_field);
      check(s.host_type() <= 3);
      check(s.ssl_version() <= 0xffff && s.cipher_suite() <= 0xffff);
    }
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
  o.ssl_parse_reply = (flags & 1) != 0;
  if (flags & 2) {
    o.max_buffered = 200;
    o.max_field = 9;
    o.max_records_per_flow = 5;
  }
  const bool gaps = (flags & 4) != 0;

  parser_counters counters;
  {
    auto p = make_tls_parser(o, counters);
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
      if (gaps && (r & 0x70) == 0x70) {
        p->gap(static_cast<direction>(d), n);
      } else {
        p->deliver(static_cast<direction>(d), side_data[d] + pos[d], n, 1, seq[d], out);
      }
      pos[d] += n;
      seq[d] += static_cast<uint32_t>(n);
    }
    p->finish(2, out);
    check_records(out, o);
    (void)p->flow_host();
  }
  {
    // The decoders on their own, on a message at byte 0 (flag bit3: after
    // a 5-byte record header).
    if ((flags & 8) && size > 5) {
      data += 5;
      size -= 5;
    }
    tls::client_hello ch;
    if (tls::parse_client_hello(data, size, ch) == tls::hs_status::ok) {
      check(ch.cipher_suites.size() <= tls::max_cipher_suites);
      check(ch.alpn.size() <= tls::max_alpn);
      check(ch.sni.size() <= tls::max_name_bytes);
    }
    tls::server_hello sh;
    (void)tls::parse_server_hello(data, size, sh);
    std::string cn;
    if (tls::parse_certificate_cn(data, size, cn) == tls::hs_status::ok)
      check(cn.size() <= tls::max_name_bytes);
  }
  (void)tls_probe(data, size, direction::client_to_server);
  return 0;
}
