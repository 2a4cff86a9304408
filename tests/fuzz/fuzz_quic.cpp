// SPDX-License-Identifier: Apache-2.0
// Fuzzes the QUIC parser. Random bytes almost never authenticate, so the
// input is split into chunks that are used two ways:
//  * raw: each chunk is delivered as a datagram (header parsing, coalesced
//    packets, undecryptable Initials);
//  * sealed: each chunk is the plaintext payload of a v1/v2/draft-29 client
//    Initial that this harness protects with the real Initial keys of a DCID
//    taken from the input, so frame walking, CRYPTO reassembly and the
//    ClientHello decoder see arbitrary plaintext.
// The frame walker and the reassembly buffer are also called directly.
// Invariants (abort on violation): at most one record per parser, each a
// QUIC clickstream with valid UTF-8 hostname within max_field and at most
// 16 cipher suites; the parser's host is the record's hostname.
//
// Input: [0] flags (bit0 tiny limits, bit1 sealed, bit2 server direction
//        for odd chunks, bits 3-4 version: v1 / v2 / draft-29 / draft-28)
//        [1] DCID length (mod 21)  then the DCID bytes,
//        then chunks: [2-byte big-endian length][bytes] ...

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_driver.hpp"
#include "parsers/quic/quic_crypto.hpp"
#include "parsers/quic/quic_packet.hpp"
#include "parsers/quic/quic_parser.hpp"

using namespace metaprobe;
using fuzz::check;
using fuzz::check_text;

namespace {

// A client Initial with `plain` as payload (4-byte packet number `pn`).
bool seal_initial(uint32_t version, const uint8_t* dcid, size_t dcid_len, uint32_t pn,
                  const uint8_t* plain, size_t plain_len, std::vector<uint8_t>& out) {
  const quic::version_info* v = quic::find_version(version);
  quic::initial_keys k;
  if (v == nullptr || plain_len < 4 || plain_len > 8000 ||
      !quic::derive_initial_keys(*v, dcid, dcid_len, true, k))
    return false;
  out.clear();
  out.push_back(static_cast<uint8_t>(0xc0 | v->type_code[0] << 4 | 3));
  for (int i = 3; i >= 0; --i)
    out.push_back(static_cast<uint8_t>(version >> (8 * i)));
  out.push_back(static_cast<uint8_t>(dcid_len));
  out.insert(out.end(), dcid, dcid + dcid_len);
  out.push_back(0); // SCID length
  out.push_back(0); // token length
  const size_t length = 4 + plain_len + 16;
  out.push_back(static_cast<uint8_t>(0x40 | length >> 8));
  out.push_back(static_cast<uint8_t>(length));
  const size_t pn_off = out.size();
  for (int i = 3; i >= 0; --i)
    out.push_back(static_cast<uint8_t>(pn >> (8 * i)));
  uint8_t nonce[12];
  std::memcpy(nonce, k.iv.data(), 12);
  for (int i = 0; i < 4; ++i)
    nonce[11 - i] ^= static_cast<uint8_t>(pn >> (8 * i));
  const size_t hdr_len = out.size();
  out.resize(hdr_len + plain_len + 16);
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  int n = 0;
  bool ok = c != nullptr &&
            EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), nullptr, k.key.data(), nonce) == 1 &&
            EVP_EncryptUpdate(c, nullptr, &n, out.data(), static_cast<int>(hdr_len)) == 1 &&
            EVP_EncryptUpdate(c, out.data() + hdr_len, &n, plain, static_cast<int>(plain_len)) ==
              1 &&
            EVP_EncryptFinal_ex(c, out.data() + hdr_len + plain_len, &n) == 1 &&
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out.data() + hdr_len + plain_len) ==
              1;
  EVP_CIPHER_CTX_free(c);
  if (!ok)
    return false;
  std::array<uint8_t, 5> mask{};
  if (!quic::header_mask(k.hp, out.data() + pn_off + 4, mask))
    return false;
  out[0] ^= mask[0] & 0x0f;
  for (size_t i = 0; i < 4; ++i)
    out[pn_off + i] ^= mask[1 + i];
  return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2)
    return 0;
  const uint8_t flags = data[0];
  const size_t dcid_len = std::min<size_t>(data[1] % 21, size - 2);
  const uint8_t* dcid = data + 2;
  size_t off = 2 + dcid_len;
  static const uint32_t versions[4] = {0x00000001, 0x6b3343cf, 0xff00001d, 0xff00001c};
  const uint32_t version = versions[(flags >> 3) & 3];

  parser_options o;
  if (flags & 1) {
    o.max_buffered = 300;
    o.max_field = 7;
    o.max_records_per_flow = 1;
  }
  parser_counters counters;
  auto p = make_quic_parser(o, counters);
  record_sink out;
  std::vector<uint8_t> pkt, twice;
  std::vector<quic::crypto_frame> frames;
  quic::crypto_stream stream(o.max_buffered, 8);
  uint32_t pn = 0;
  size_t chunk_no = 0;
  while (off + 2 <= size) {
    size_t n = (size_t{data[off]} << 8) | data[off + 1];
    off += 2;
    if (n > size - off)
      n = size - off;
    const uint8_t* chunk = data + off;
    off += n;
    const direction dir = ((flags & 4) && (chunk_no & 1)) ? direction::server_to_client
                                                          : direction::client_to_server;
    ++chunk_no;
    (void)quic_probe(chunk, n, dir);
    frames.clear();
    if (quic::collect_crypto_frames(chunk, n, frames, 16) == quic::frames_status::ok)
      for (const auto& f : frames)
        (void)stream.add(f.offset, f.data, f.len);
    check(stream.contiguous() <= o.max_buffered && stream.buffered() <= o.max_buffered);
    if ((flags & 2) && seal_initial(version, dcid, dcid_len, pn++, chunk, n, pkt)) {
      p->deliver(dir, pkt.data(), pkt.size(), 1, out);
      // the same packet twice, coalesced, with trailing junk
      twice.assign(pkt.begin(), pkt.end());
      twice.insert(twice.end(), pkt.begin(), pkt.end());
      twice.push_back(0x40);
      p->deliver(dir, twice.data(), twice.size(), 2, out);
    } else {
      p->deliver(dir, chunk, n, 1, out);
    }
  }
  check(out.size() <= 1);
  for (const auto& r : out) {
    check(r.record.has_clickstream());
    const auto& c = r.record.clickstream();
    check(c.host_type() == 4);
    check_text(c.hostname(), o.max_field);
    check(c.cipher_suites().size() <= 32 && c.cipher_suites().size() % 2 == 0);
    check(p->flow_host() == c.hostname());
  }
  check(counters.records == out.size());
  return 0;
}
