// SPDX-License-Identifier: Apache-2.0
// QUIC Initial decoding: RFC 9001 Appendix A (v1) and RFC 9369 Appendix A
// (v2) vectors, RFC 9000 Appendix A varint / packet number examples, frame
// walking, CRYPTO reassembly, and the parser on packets built here (split,
// reordered, coalesced, retransmitted, restarted with a new DCID, damaged).
#include <doctest/doctest.h>

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "parsers/quic/quic_crypto.hpp"
#include "parsers/quic/quic_packet.hpp"
#include "parsers/quic/quic_parser.hpp"

using namespace metaprobe;
using bytes = std::vector<uint8_t>;

namespace {

bytes unhex(const std::string& s) {
  bytes out;
  int hi = -1;
  for (char c : s) {
    int v;
    if (c >= '0' && c <= '9')
      v = c - '0';
    else if (c >= 'a' && c <= 'f')
      v = c - 'a' + 10;
    else
      continue;
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<uint8_t>(hi << 4 | v));
      hi = -1;
    }
  }
  return out;
}

std::string hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s.push_back(d[p[i] >> 4]);
    s.push_back(d[p[i] & 15]);
  }
  return s;
}
template <size_t N>
std::string hex(const std::array<uint8_t, N>& a) {
  return hex(a.data(), N);
}

const bytes rfc_dcid = unhex("8394c8f03e515708");

void append(bytes& b, std::initializer_list<uint8_t> v) {
  for (uint8_t x : v)
    b.push_back(x);
}

// RFC 9001 A.2 (also RFC 9369 A.2): the client's CRYPTO frame carrying a
// ClientHello for example.com; PADDING extends the payload to 1162 bytes.
const bytes rfc_crypto_frame = unhex(
  "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868"
  "04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578"
  "616d706c652e636f6dff01000100000a00080006001d00170018001000070005"
  "04616c706e000500050100000000003300260024001d00209370b2c9caa47fba"
  "baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400"
  "0d0010000e0403050306030203080408050806002d00020101001c0002400100"
  "3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000"
  "75300901100f088394c8f03e51570806048000ffff");

// AES-128-GCM seal (test side of aead_open).
bytes seal(const quic::initial_keys& k, uint64_t pn, const bytes& aad, const bytes& plain) {
  uint8_t nonce[12];
  std::memcpy(nonce, k.iv.data(), 12);
  for (int i = 0; i < 8; ++i)
    nonce[11 - i] ^= static_cast<uint8_t>(pn >> (8 * i));
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  bytes out(plain.size() + 16);
  int n = 0;
  REQUIRE(EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), nullptr, k.key.data(), nonce) == 1);
  REQUIRE(EVP_EncryptUpdate(c, nullptr, &n, aad.data(), static_cast<int>(aad.size())) == 1);
  REQUIRE(EVP_EncryptUpdate(c, out.data(), &n, plain.data(), static_cast<int>(plain.size())) == 1);
  REQUIRE(EVP_EncryptFinal_ex(c, out.data() + n, &n) == 1);
  REQUIRE(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out.data() + plain.size()) == 1);
  EVP_CIPHER_CTX_free(c);
  return out;
}

void put_varint(bytes& b, uint64_t v) {
  if (v < 64) {
    b.push_back(static_cast<uint8_t>(v));
  } else if (v < 16384) {
    b.push_back(static_cast<uint8_t>(0x40 | v >> 8));
    b.push_back(static_cast<uint8_t>(v));
  } else {
    b.push_back(static_cast<uint8_t>(0x80 | v >> 24));
    b.push_back(static_cast<uint8_t>(v >> 16));
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
  }
}

// A protected Initial: `version`, DCID/SCID, 4-byte packet number `pn`,
// plaintext `frames` padded with PADDING to `pad_to` bytes, keys from
// `key_dcid` (the client's first DCID).
bytes make_initial(uint32_t version, const bytes& dcid, const bytes& scid, uint64_t pn,
                   const bytes& frames, size_t pad_to = 1162, const bytes* key_dcid = nullptr) {
  const quic::version_info* v = quic::find_version(version);
  REQUIRE(v != nullptr);
  quic::initial_keys k;
  const bytes& kd = key_dcid ? *key_dcid : dcid;
  REQUIRE(quic::derive_initial_keys(*v, kd.data(), kd.size(), true, k));
  bytes plain = frames;
  if (plain.size() < pad_to)
    plain.resize(pad_to, 0);
  bytes h;
  h.push_back(static_cast<uint8_t>(0xc0 | v->type_code[0] << 4 | 3)); // 4-byte packet number
  for (int i = 3; i >= 0; --i)
    h.push_back(static_cast<uint8_t>(version >> (8 * i)));
  h.push_back(static_cast<uint8_t>(dcid.size()));
  h.insert(h.end(), dcid.begin(), dcid.end());
  h.push_back(static_cast<uint8_t>(scid.size()));
  h.insert(h.end(), scid.begin(), scid.end());
  h.push_back(0); // no token
  bytes len;
  const uint64_t length = 4 + plain.size() + 16;
  len.push_back(static_cast<uint8_t>(0x40 | length >> 8)); // always 2 bytes, like the RFC
  len.push_back(static_cast<uint8_t>(length));
  h.insert(h.end(), len.begin(), len.end());
  const size_t pn_off = h.size();
  for (int i = 3; i >= 0; --i)
    h.push_back(static_cast<uint8_t>(pn >> (8 * i)));
  const bytes ct = seal(k, pn, h, plain);
  bytes pkt = h;
  pkt.insert(pkt.end(), ct.begin(), ct.end());
  std::array<uint8_t, 5> mask{};
  REQUIRE(quic::header_mask(k.hp, pkt.data() + pn_off + 4, mask));
  pkt[0] ^= mask[0] & 0x0f;
  for (size_t i = 0; i < 4; ++i)
    pkt[pn_off + i] ^= mask[1 + i];
  return pkt;
}

bytes crypto(uint64_t offset, const uint8_t* data, size_t len) {
  bytes f{0x06};
  put_varint(f, offset);
  put_varint(f, len);
  f.insert(f.end(), data, data + len);
  return f;
}

// A ClientHello handshake message (type 1) for `sni` with two suites.
bytes client_hello(const std::string& sni) {
  bytes body = {0x03, 0x03};
  for (int i = 0; i < 32; ++i)
    body.push_back(static_cast<uint8_t>(i));
  body.push_back(0); // session id
  append(body, {0x00, 0x06, 0x13, 0x01, 0x13, 0x02, 0x13, 0x03});
  append(body, {0x01, 0x00});
  bytes ext;
  const size_t n = sni.size();
  append(ext, {0x00, 0x00, static_cast<uint8_t>((n + 5) >> 8), static_cast<uint8_t>(n + 5),
                         static_cast<uint8_t>((n + 3) >> 8), static_cast<uint8_t>(n + 3), 0x00,
                         static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)});
  ext.insert(ext.end(), sni.begin(), sni.end());
  // supported_versions: TLS 1.3; a long padding-like extension so the
  // message spans several packets when cut.
  append(ext, {0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04});
  append(ext, {0x00, 0x15, 0x01, 0x00});
  ext.resize(ext.size() + 256, 0);
  body.push_back(static_cast<uint8_t>(ext.size() >> 8));
  body.push_back(static_cast<uint8_t>(ext.size()));
  body.insert(body.end(), ext.begin(), ext.end());
  bytes msg(4 + body.size());
  msg[0] = 0x01;
  msg[1] = static_cast<uint8_t>(body.size() >> 16);
  msg[2] = static_cast<uint8_t>(body.size() >> 8);
  msg[3] = static_cast<uint8_t>(body.size());
  std::copy(body.begin(), body.end(), msg.begin() + 4);
  return msg;
}

struct harness {
  parser_options opts;
  parser_counters counters;
  std::unique_ptr<datagram_parser> p;
  record_sink out;
  harness() { p = make_quic_parser(opts, counters); }
  void send(const bytes& d, direction dir = direction::client_to_server) {
    p->deliver(dir, d.data(), d.size(), 7, out);
  }
};

bytes concat(std::initializer_list<bytes> parts) {
  bytes out;
  for (const auto& p : parts)
    out.insert(out.end(), p.begin(), p.end());
  return out;
}

} // namespace

TEST_CASE("quic: RFC 9000 A.1 varints and A.3 packet number decoding") {
  const std::pair<const char*, uint64_t> cases[] = {
    {"c2197c5eff14e88c", 151288809941952652ull},
    {"9d7f3e7d", 494878333},
    {"7bbd", 15293},
    {"25", 37},
    {"4025", 37},
  };
  for (const auto& [h, want] : cases) {
    const bytes b = unhex(h);
    size_t off = 0;
    uint64_t v = 0;
    CHECK(quic::read_varint(b.data(), b.size(), off, v));
    CHECK(v == want);
    CHECK(off == b.size());
    off = 0;
    CHECK_FALSE(quic::read_varint(b.data(), b.size() - 1, off, v)); // cut: no read
  }
  CHECK(quic::decode_packet_number(0xa82f30ea, 0x9b32, 16) == 0xa82f9b32);
  CHECK(quic::decode_packet_number(-1, 2, 32) == 2);
  CHECK(quic::decode_packet_number(255, 0x01, 8) == 257);  // wraps forward
  CHECK(quic::decode_packet_number(256, 0xff, 8) == 255);  // a late packet
}

TEST_CASE("quic: RFC 9001 A.1 and RFC 9369 A.1 key schedules") {
  std::array<uint8_t, 32> initial{};
  const quic::version_info* v1 = quic::find_version(1);
  REQUIRE(v1 != nullptr);
  REQUIRE(quic::hkdf_extract(v1->salt, 20, rfc_dcid.data(), rfc_dcid.size(), initial));
  CHECK(hex(initial) == "7db5df06e7a69e432496adedb00851923595221596ae2ae9fb8115c1e9ed0a44");
  std::array<uint8_t, 32> client{};
  REQUIRE(quic::hkdf_expand_label(initial, "client in", client.data(), 32));
  CHECK(hex(client) == "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea");

  quic::initial_keys k;
  REQUIRE(quic::derive_initial_keys(*v1, rfc_dcid.data(), rfc_dcid.size(), true, k));
  CHECK(hex(k.key) == "1f369613dd76d5467730efcbe3b1a22d");
  CHECK(hex(k.iv) == "fa044b2f42a3fd3b46fb255c");
  CHECK(hex(k.hp) == "9f50449e04a0e810283a1e9933adedd2");
  REQUIRE(quic::derive_initial_keys(*v1, rfc_dcid.data(), rfc_dcid.size(), false, k));
  CHECK(hex(k.key) == "cf3a5331653c364c88f0f379b6067e37");
  CHECK(hex(k.iv) == "0ac1493ca1905853b0bba03e");
  CHECK(hex(k.hp) == "c206b8d9b9f0f37644430b490eeaa314");

  const quic::version_info* v2 = quic::find_version(0x6b3343cf);
  REQUIRE(v2 != nullptr);
  REQUIRE(quic::hkdf_extract(v2->salt, 20, rfc_dcid.data(), rfc_dcid.size(), initial));
  CHECK(hex(initial) == "2062e8b3cd8d52092614b8071d0aa1fb7c2e3ac193f78b280e72d8f5751f6aba");
  REQUIRE(quic::hkdf_expand_label(initial, "client in", client.data(), 32));
  CHECK(hex(client) == "14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b");
  REQUIRE(quic::derive_initial_keys(*v2, rfc_dcid.data(), rfc_dcid.size(), true, k));
  CHECK(hex(k.key) == "8b1a0bc121284290a29e0971b5cd045d");
  CHECK(hex(k.iv) == "91f73e2351d8fa91660e909f");
  CHECK(hex(k.hp) == "45b95e15235d6f45a6b19cbcb0294ba9");
  REQUIRE(quic::derive_initial_keys(*v2, rfc_dcid.data(), rfc_dcid.size(), false, k));
  CHECK(hex(k.key) == "82db637861d55e1d011f19ea71d5d2a7");
  CHECK(hex(k.iv) == "dd13c276499c0249d3310652");
  CHECK(hex(k.hp) == "edf6d05c83121201b436e16877593c3a");

  // RFC 9001 A.2: header protection mask of the client Initial's sample.
  REQUIRE(quic::derive_initial_keys(*v1, rfc_dcid.data(), rfc_dcid.size(), true, k));
  std::array<uint8_t, 5> mask{};
  const bytes sample = unhex("d1b1c98dd7689fb8ec11d242b123dc9b");
  REQUIRE(quic::header_mask(k.hp, sample.data(), mask));
  CHECK(hex(mask) == "437b9aec36");

  CHECK(quic::find_version(0) == nullptr);
  CHECK(quic::find_version(0xbabababa) == nullptr);
  CHECK(quic::find_version(0xff00001d) != nullptr);
  CHECK(quic::find_version(0xff00001c) != nullptr);
  CHECK(quic::type_of(*v2, 1) == quic::packet_type::initial);
  CHECK(quic::type_of(*v2, 0) == quic::packet_type::retry);
  CHECK(quic::type_of(*v1, 0) == quic::packet_type::initial);
}

TEST_CASE("quic: RFC 9001 A.2 / RFC 9369 A.2 client Initial, built and opened") {
  struct vec {
    uint32_t version;
    const char* protected_prefix; // first 32 bytes of the RFC's protected packet
  };
  const vec vecs[] = {
    {0x00000001, "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11"},
    {0x6b3343cf, "d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485"},
  };
  for (const auto& t : vecs) {
    CAPTURE(t.version);
    const bytes pkt = make_initial(t.version, rfc_dcid, {}, 2, rfc_crypto_frame);
    REQUIRE(pkt.size() == 1200);
    CHECK(hex(pkt.data(), 32) == t.protected_prefix);

    quic::long_header h;
    REQUIRE(quic::parse_long_header(pkt.data(), pkt.size(), h) == quic::header_status::ok);
    CHECK(h.type == quic::packet_type::initial);
    CHECK(h.pn_offset == 18);
    CHECK(h.packet_len == 1200);
    quic::initial_keys k;
    REQUIRE(quic::derive_initial_keys(*h.info, h.dcid, h.dcid_len, true, k));
    quic::opened_packet op;
    REQUIRE(quic::open_initial(pkt.data(), h, k, -1, op) == quic::open_status::ok);
    CHECK(op.packet_number == 2);
    CHECK(op.pn_len == 4);
    REQUIRE(op.payload.size() == 1162);
    CHECK(std::equal(rfc_crypto_frame.begin(), rfc_crypto_frame.end(), op.payload.begin()));

    std::vector<quic::crypto_frame> frames;
    CHECK(quic::collect_crypto_frames(op.payload.data(), op.payload.size(), frames) ==
          quic::frames_status::ok);
    REQUIRE(frames.size() == 1);
    CHECK(frames[0].offset == 0);
    CHECK(frames[0].len == 241);

    // A flipped ciphertext bit fails authentication; the server's keys too.
    bytes bad = pkt;
    bad[600] ^= 1;
    CHECK(quic::open_initial(bad.data(), h, k, -1, op) == quic::open_status::crypto_fail);
    REQUIRE(quic::derive_initial_keys(*h.info, h.dcid, h.dcid_len, false, k));
    CHECK(quic::open_initial(pkt.data(), h, k, -1, op) == quic::open_status::crypto_fail);

    harness hs;
    CHECK(quic_probe(pkt.data(), pkt.size(), direction::client_to_server));
    hs.send(pkt);
    REQUIRE(hs.out.size() == 1);
    const auto& c = hs.out[0].record.clickstream();
    CHECK(c.hostname() == "example.com");
    CHECK(c.host_type() == 4);
    CHECK(c.cipher_suites_len() == 4);
    CHECK(c.cipher_suites() == std::string("\x13\x01\x13\x02", 4));
    CHECK(hs.out[0].dir == direction::client_to_server);
    CHECK(hs.p->flow_host() == "example.com");
    CHECK(hs.p->state() == parser_state::done);
    CHECK(hs.counters.messages == 1);
    CHECK(hs.counters.records == 1);
    CHECK(hs.counters.violations == 0);
    hs.send(pkt); // retransmission: no second record
    CHECK(hs.out.size() == 1);
  }
}

TEST_CASE("quic: frames an Initial may carry") {
  // PING, ACK (2 ranges), ACK_ECN, PADDING, CRYPTO, CONNECTION_CLOSE 0x1c.
  const bytes p = unhex("01"
                        "02 05 00 01 00 02 01"     // ACK largest 5, delay 0, 1 range, first 0, gap 2 len 1
                        "03 01 00 00 00 01 02 03"  // ACK_ECN with three counts
                        "0000"
                        "06 00 03 616263"
                        "1c 00 00 02 6869"
                        "06 03 02 6465");
  std::vector<quic::crypto_frame> frames;
  REQUIRE(quic::collect_crypto_frames(p.data(), p.size(), frames) == quic::frames_status::ok);
  REQUIRE(frames.size() == 2);
  CHECK(frames[0].offset == 0);
  CHECK(std::string(reinterpret_cast<const char*>(frames[0].data), frames[0].len) == "abc");
  CHECK(frames[1].offset == 3);
  CHECK(frames[1].len == 2);

  // STREAM (0x08) is not allowed in an Initial; frames before it are kept.
  frames.clear();
  const bytes s = unhex("06 00 01 41 08 00 00");
  CHECK(quic::collect_crypto_frames(s.data(), s.size(), frames) == quic::frames_status::malformed);
  CHECK(frames.size() == 1);
  // CRYPTO length past the payload; ACK range count past the payload.
  frames.clear();
  const bytes c = unhex("06 00 05 41");
  CHECK(quic::collect_crypto_frames(c.data(), c.size(), frames) == quic::frames_status::malformed);
  CHECK(frames.empty());
  const bytes a = unhex("02 00 00 bfffffffffffffff");
  CHECK(quic::collect_crypto_frames(a.data(), a.size(), frames) == quic::frames_status::malformed);
  // The frame cap.
  bytes many;
  for (int i = 0; i < 10; ++i)
    append(many, {0x06, static_cast<uint8_t>(i), 0x01, 0x41});
  frames.clear();
  CHECK(quic::collect_crypto_frames(many.data(), many.size(), frames, 4) ==
        quic::frames_status::malformed);
  CHECK(frames.size() == 4);
}

TEST_CASE("quic: CRYPTO stream reassembly") {
  quic::crypto_stream s(64, 3);
  const std::string text = "0123456789abcdefghij";
  auto add = [&](size_t off, size_t n) {
    return s.add(off, reinterpret_cast<const uint8_t*>(text.data()) + off, n);
  };
  CHECK(add(10, 5));
  CHECK(s.contiguous() == 0);
  CHECK(add(2, 3));
  CHECK(add(17, 2));
  CHECK_FALSE(add(6, 1)); // a fourth hole-separated range: refused, nothing stored
  CHECK(add(0, 4));       // overlaps [2, 5)
  CHECK(s.contiguous() == 5);
  CHECK(add(4, 8));       // bridges into [10, 15)
  CHECK(s.contiguous() == 15);
  CHECK(add(15, 2));
  CHECK(s.contiguous() == 19);
  CHECK(std::string(reinterpret_cast<const char*>(s.data()), 19) == text.substr(0, 19));

  // First copy wins on overlap.
  quic::crypto_stream w(64);
  const std::string a = "AAAA", b = "BBBBBB";
  CHECK(w.add(0, reinterpret_cast<const uint8_t*>(a.data()), 4));
  CHECK(w.add(2, reinterpret_cast<const uint8_t*>(b.data()), 6));
  CHECK(std::string(reinterpret_cast<const char*>(w.data()), w.contiguous()) == "AAAABBBB");

  // The byte limit: a frame past it is refused, one across it is cut.
  quic::crypto_stream l(8);
  CHECK_FALSE(l.add(8, reinterpret_cast<const uint8_t*>(a.data()), 4));
  CHECK_FALSE(l.add(1ull << 61, reinterpret_cast<const uint8_t*>(a.data()), 4));
  CHECK_FALSE(l.add(6, reinterpret_cast<const uint8_t*>(b.data()), 6));
  CHECK(l.buffered() == 8);
  CHECK(l.add(0, reinterpret_cast<const uint8_t*>(b.data()), 6));
  CHECK(l.contiguous() == 8);

  // First handshake message length from its header.
  quic::crypto_stream m(100);
  const bytes hdr = {0x01, 0x00, 0x00, 0x05, 1, 2, 3};
  CHECK(m.add(0, hdr.data(), 3));
  CHECK(m.first_message_len() == 0);
  CHECK(m.add(3, hdr.data() + 3, 4));
  CHECK(m.first_message_len() == 9);
  CHECK_FALSE(m.first_message_complete());
  const bytes big = {0x01, 0x01, 0x00, 0x00};
  quic::crypto_stream g(100);
  CHECK(g.add(0, big.data(), 4));
  CHECK(g.first_message_too_long());
}

TEST_CASE("quic: ClientHello split across Initials, out of order, coalesced") {
  const bytes dcid = unhex("1122334455667788");
  const bytes scid = unhex("a1a2a3a4");
  const bytes ch = client_hello("split.example.org");
  const size_t cut1 = 100, cut2 = 250;
  // Packet 1 carries the middle and the start (in that order); packet 2 the end.
  bytes f1 = concat({crypto(cut1, ch.data() + cut1, cut2 - cut1), bytes{0x01},
                     crypto(0, ch.data(), cut1)});
  bytes f2 = crypto(cut2, ch.data() + cut2, ch.size() - cut2);

  SUBCASE("two datagrams, end first") {
    harness hs;
    hs.send(make_initial(1, dcid, scid, 1, f2));
    CHECK(hs.out.empty());
    CHECK(hs.p->state() == parser_state::confirmed);
    hs.send(make_initial(1, dcid, scid, 0, f1));
    REQUIRE(hs.out.size() == 1);
    CHECK(hs.out[0].record.clickstream().hostname() == "split.example.org");
    CHECK(hs.out[0].record.clickstream().cipher_suites_len() == 6);
    CHECK(hs.counters.messages == 2);
  }
  SUBCASE("coalesced in one datagram, then a short-header packet") {
    harness hs;
    const bytes p1 = make_initial(0xff00001d, dcid, scid, 0, f1, 300);
    const bytes p2 = make_initial(0xff00001d, dcid, scid, 1, f2, 300);
    hs.send(concat({p1, p2, unhex("4f0102030405060708090a0b0c0d0e0f1011")}));
    REQUIRE(hs.out.size() == 1);
    CHECK(hs.out[0].record.clickstream().hostname() == "split.example.org");
  }
  SUBCASE("draft-28 and v2") {
    for (uint32_t v : {0xff00001cu, 0x6b3343cfu, 0xff000020u}) {
      CAPTURE(v);
      harness hs;
      hs.send(make_initial(v, dcid, scid, 0, concat({f1, f2})));
      REQUIRE(hs.out.size() == 1);
      CHECK(hs.out[0].record.clickstream().hostname() == "split.example.org");
    }
  }
  SUBCASE("later Initials under the first keys, sent to the server's CID") {
    harness hs;
    hs.send(make_initial(1, dcid, scid, 0, f1));
    const bytes server_cid = unhex("5566778899");
    hs.send(make_initial(1, server_cid, scid, 1, f2, 1162, &dcid));
    REQUIRE(hs.out.size() == 1);
    CHECK(hs.counters.violations == 0);
  }
  SUBCASE("restart with a new DCID (after Retry) drops the partial stream") {
    harness hs;
    const bytes other = client_hello("old.example");
    hs.send(make_initial(1, dcid, scid, 0, crypto(0, other.data(), 50)));
    const bytes dcid2 = unhex("0102030405060708090a");
    hs.send(make_initial(1, dcid2, scid, 0, f2));
    hs.send(make_initial(1, dcid2, scid, 1, f1));
    REQUIRE(hs.out.size() == 1);
    CHECK(hs.out[0].record.clickstream().hostname() == "split.example.org");
    // The client's resent ClientHello under yet another DCID: no second record.
    hs.send(make_initial(1, unhex("0909090909090909"), scid, 0, concat({f1, f2})));
    CHECK(hs.out.size() == 1);
  }
}

TEST_CASE("quic: damaged, foreign and server packets") {
  const bytes dcid = unhex("1122334455667788");
  const bytes ch = client_hello("x.example");
  const bytes good = make_initial(1, dcid, {}, 0, crypto(0, ch.data(), ch.size()));

  SUBCASE("capture cut short: counted, no record") {
    harness hs;
    bytes cut(good.begin(), good.begin() + 256);
    hs.send(cut);
    CHECK(hs.out.empty());
    CHECK(hs.counters.violations == 1);
  }
  SUBCASE("flipped bit: undecryptable, counted") {
    harness hs;
    bytes bad = good;
    bad[700] ^= 0x80;
    hs.send(bad);
    CHECK(hs.out.empty());
    CHECK(hs.counters.violations == 1);
    CHECK(hs.p->state() == parser_state::probing);
    hs.send(good);
    CHECK(hs.out.size() == 1);
  }
  SUBCASE("Version Negotiation and greased versions are skipped") {
    harness hs;
    const bytes vn = unhex("80 00000000 04 01020304 04 05060708 00000001 ff00001d");
    hs.send(vn, direction::server_to_client);
    bytes grease = good;
    grease[1] = grease[2] = grease[3] = grease[4] = 0xba;
    hs.send(grease);
    CHECK(hs.out.empty());
    CHECK(hs.counters.violations == 0);
    CHECK_FALSE(quic_probe(grease.data(), grease.size(), direction::client_to_server));
    CHECK_FALSE(quic_probe(vn.data(), vn.size(), direction::server_to_client));
  }
  SUBCASE("not QUIC: detached after a few datagrams") {
    harness hs;
    const bytes junk = unhex("0011223344556677");
    for (int i = 0; i < 4; ++i)
      hs.send(junk);
    CHECK(hs.p->state() == parser_state::violated);
  }
  SUBCASE("short headers only: done after a while") {
    harness hs;
    const bytes s = unhex("4011223344556677");
    for (size_t i = 0; i < quic_parser::max_quiet_datagrams; ++i)
      hs.send(s);
    CHECK(hs.p->state() == parser_state::done);
    CHECK(hs.counters.violations == 0);
  }
  SUBCASE("the first CRYPTO message is no ClientHello") {
    harness hs;
    bytes sh = ch;
    sh[0] = 2;
    hs.send(make_initial(1, dcid, {}, 0, crypto(0, sh.data(), sh.size())));
    CHECK(hs.out.empty());
    CHECK(hs.p->state() == parser_state::done);
    CHECK(hs.counters.violations == 1);
  }
  SUBCASE("a ClientHello larger than max_buffered") {
    harness hs;
    hs.opts.max_buffered = 128;
    hs.p = make_quic_parser(hs.opts, hs.counters);
    hs.send(good);
    CHECK(hs.out.empty());
    CHECK(hs.counters.limit_hits >= 1);
    CHECK(hs.p->state() == parser_state::done);
  }
  SUBCASE("client Initial seen in the server_to_client direction") {
    harness hs;
    hs.send(good, direction::server_to_client);
    REQUIRE(hs.out.size() == 1);
    CHECK(hs.out[0].dir == direction::server_to_client);
  }
  SUBCASE("long SNI cut at max_field") {
    harness hs;
    hs.opts.max_field = 8;
    hs.p = make_quic_parser(hs.opts, hs.counters);
    const bytes big = client_hello("a-long-host-name.example");
    hs.send(make_initial(1, dcid, {}, 0, crypto(0, big.data(), big.size())));
    REQUIRE(hs.out.size() == 1);
    CHECK(hs.out[0].record.clickstream().hostname() == "a-long-h");
    CHECK(hs.counters.truncated_fields == 1);
  }
  SUBCASE("every prefix of a datagram") {
    harness hs;
    for (size_t n = 0; n < good.size(); n += 7)
      hs.p->deliver(direction::client_to_server, good.data(), n, 1, hs.out);
    CHECK(hs.out.empty());
  }
}

TEST_CASE("quic: key derivations are cached and capped per datagram and per flow") {
  const bytes scid = unhex("a1a2a3a4");
  const bytes ch = client_hello("capped.example.org");
  // Coalesced Initials, each to a new DCID (and none of them opens: sealed
  // under other keys): one datagram buys at most 2 derivations.
  auto junk_initial = [&](uint8_t n) {
    bytes dcid = unhex("c0c1c2c3c4c5c6c7");
    dcid[7] = n;
    const bytes other = unhex("0000000000000000");
    return make_initial(1, dcid, scid, 0, crypto(0, ch.data(), 40), 60, &other);
  };
  harness hs;
  bytes dgram;
  for (uint8_t i = 0; i < 10; ++i)
    dgram = concat({dgram, junk_initial(i)});
  hs.send(dgram);
  CHECK(hs.counters.extra[0] <= quic_parser::max_derivations_per_datagram);
  CHECK(hs.counters.limit_hits >= 1);
  // More such datagrams: at most 8 derivations over the flow.
  for (uint8_t d = 1; d < 10; ++d) {
    bytes more;
    for (uint8_t i = 0; i < 10; ++i)
      more = concat({more, junk_initial(static_cast<uint8_t>(16 * d + i))});
    hs.send(more);
  }
  CHECK(hs.counters.extra[0] <= quic_parser::max_derivations_per_flow);
  // A fresh flow sending an Initial to a DCID derived before: from the cache.
  const bytes dcid = unhex("5566778899aabbcc");
  harness a, b;
  a.send(make_initial(1, dcid, scid, 0, crypto(0, ch.data(), ch.size())));
  REQUIRE(a.out.size() == 1);
  b.send(make_initial(1, dcid, scid, 0, crypto(0, ch.data(), ch.size())));
  REQUIRE(b.out.size() == 1);
  CHECK(b.out[0].record.clickstream().hostname() == "capped.example.org");
  CHECK(b.counters.extra[0] == 0); // no derivation: a cache hit
  // The cache answers what derivation does.
  quic::initial_keys direct, cached;
  bool derived = true;
  REQUIRE(quic::derive_initial_keys(*quic::find_version(1), dcid.data(), dcid.size(), true, direct));
  REQUIRE(quic::cached_initial_keys(*quic::find_version(1), dcid.data(), dcid.size(), true, cached,
                                    derived));
  CHECK(!derived);
  CHECK(hex(direct.key) == hex(cached.key));
  CHECK(hex(direct.iv) == hex(cached.iv));
  CHECK(hex(direct.hp) == hex(cached.hp));
}

TEST_CASE("quic: registry entry") {
  const protocol_entry e = quic_protocol_entry();
  CHECK(e.id == app_protocol::quic);
  CHECK(std::string(e.name) == "quic");
  CHECK(e.udp_ports == std::vector<uint16_t>{443, 80, 8443});
  CHECK(e.tcp_ports.empty());
  CHECK((e.make_datagram == &make_quic_parser));
  CHECK((e.make_stream == nullptr));
}
