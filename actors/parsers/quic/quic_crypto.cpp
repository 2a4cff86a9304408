// SPDX-License-Identifier: Apache-2.0
#include "parsers/quic/quic_crypto.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>
#include <memory>

namespace metaprobe::quic {

namespace {

// RFC 9001 §5.2 (also drafts 33 and 34).
constexpr uint8_t salt_v1[20] = {0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
                                 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a};
// RFC 9369 §3.3.1.
constexpr uint8_t salt_v2[20] = {0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93,
                                 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9};
// draft-ietf-quic-tls-29 §5.2 (drafts 29..32).
constexpr uint8_t salt_d29[20] = {0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97,
                                  0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0, 0x43, 0x90, 0xa8, 0x99};
// draft-ietf-quic-tls-23 §5.2 (drafts 23..28).
constexpr uint8_t salt_d23[20] = {0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7,
                                  0xd2, 0x43, 0x2b, 0xb4, 0x63, 0x65, 0xbe, 0xf9, 0xf5, 0x02};

version_info make(uint32_t version, const uint8_t* salt, bool v2) {
  version_info v;
  v.version = version;
  v.salt = salt;
  if (v2) {
    v.key_label = "quicv2 key";
    v.iv_label = "quicv2 iv";
    v.hp_label = "quicv2 hp";
    // RFC 9369 §3.2: Initial 0b01, 0-RTT 0b10, Handshake 0b11, Retry 0b00.
    v.type_code[0] = 1;
    v.type_code[1] = 2;
    v.type_code[2] = 3;
    v.type_code[3] = 0;
  } else {
    v.key_label = "quic key";
    v.iv_label = "quic iv";
    v.hp_label = "quic hp";
  }
  return v;
}

const version_info versions[] = {
  make(0x00000001, salt_v1, false),
  make(0x6b3343cf, salt_v2, true),
  make(0xff00001b, salt_d23, false), // draft-27
  make(0xff00001c, salt_d23, false), // draft-28
  make(0xff00001d, salt_d29, false), // draft-29
  make(0xff00001e, salt_d29, false), // draft-30
  make(0xff00001f, salt_d29, false), // draft-31
  make(0xff000020, salt_d29, false), // draft-32
  make(0xff000021, salt_v1, false),  // draft-33
  make(0xff000022, salt_v1, false),  // draft-34
};

struct cipher_ctx_free {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using cipher_ctx = std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_free>;
struct md_ctx_free {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using md_ctx = std::unique_ptr<EVP_MD_CTX, md_ctx_free>;

// OpenSSL 3 looks an algorithm up by name (a lock and string compares) on
// every use of EVP_sha256() / EVP_aes_128_*() and one-shot HMAC(): fetch
// each once for the process, and keep one context per thread.
const EVP_MD* sha256() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}
const EVP_CIPHER* aes_128_ecb() {
  static EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-128-ECB", nullptr);
  return c;
}
const EVP_CIPHER* aes_128_gcm() {
  static EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  return c;
}
EVP_CIPHER_CTX* thread_cipher_ctx() {
  thread_local cipher_ctx ctx(EVP_CIPHER_CTX_new());
  return ctx.get();
}

// HMAC-SHA256 (RFC 2104) over the pre-fetched digest; keys here are at most
// 32 bytes, shorter than SHA-256's 64-byte block.
bool hmac_sha256(const uint8_t* key, size_t key_len, const uint8_t* data, size_t len,
                 uint8_t out[32]) {
  thread_local md_ctx ctx(EVP_MD_CTX_new());
  constexpr size_t block = 64;
  if (!ctx || !sha256() || key_len > block)
    return false;
  uint8_t ipad[block], opad[block], inner[32];
  for (size_t i = 0; i < block; ++i) {
    const uint8_t k = i < key_len ? key[i] : 0;
    ipad[i] = k ^ 0x36;
    opad[i] = k ^ 0x5c;
  }
  unsigned int n = 0;
  return EVP_DigestInit_ex2(ctx.get(), sha256(), nullptr) == 1 &&
         EVP_DigestUpdate(ctx.get(), ipad, block) == 1 &&
         (len == 0 || EVP_DigestUpdate(ctx.get(), data, len) == 1) &&
         EVP_DigestFinal_ex(ctx.get(), inner, &n) == 1 && n == sizeof inner &&
         EVP_DigestInit_ex2(ctx.get(), sha256(), nullptr) == 1 &&
         EVP_DigestUpdate(ctx.get(), opad, block) == 1 &&
         EVP_DigestUpdate(ctx.get(), inner, sizeof inner) == 1 &&
         EVP_DigestFinal_ex(ctx.get(), out, &n) == 1 && n == 32;
}

} // namespace

const version_info* find_version(uint32_t version) {
  for (const auto& v : versions)
    if (v.version == version)
      return &v;
  return nullptr;
}

packet_type type_of(const version_info& v, uint8_t bits) {
  for (uint8_t t = 0; t < 4; ++t)
    if (v.type_code[t] == (bits & 3))
      return static_cast<packet_type>(t);
  return packet_type::initial; // unreachable: type_code is a permutation of 0..3
}

bool hkdf_extract(const uint8_t* salt, size_t salt_len, const uint8_t* ikm, size_t ikm_len,
                  std::array<uint8_t, 32>& prk) {
  const uint8_t empty = 0;
  if (ikm == nullptr)
    ikm = &empty;
  return hmac_sha256(salt, salt_len, ikm, ikm_len, prk.data());
}

bool hkdf_expand_label(const std::array<uint8_t, 32>& secret, const char* label, uint8_t* out,
                       size_t out_len) {
  // HkdfLabel = uint16 length, opaque label<7..255> = "tls13 " + label,
  // opaque context<0..255> = empty; one HMAC block (T(1)) covers out_len <= 32.
  static constexpr char prefix[] = "tls13 ";
  const size_t label_len = std::strlen(label);
  if (out_len == 0 || out_len > 32 || label_len + 6 > 255)
    return false;
  uint8_t info[2 + 1 + 255 + 1 + 1];
  size_t n = 0;
  info[n++] = static_cast<uint8_t>(out_len >> 8);
  info[n++] = static_cast<uint8_t>(out_len);
  info[n++] = static_cast<uint8_t>(6 + label_len);
  std::memcpy(info + n, prefix, 6);
  n += 6;
  std::memcpy(info + n, label, label_len);
  n += label_len;
  info[n++] = 0; // context length
  info[n++] = 1; // HKDF-Expand block counter
  uint8_t block[32];
  if (!hmac_sha256(secret.data(), secret.size(), info, n, block))
    return false;
  std::memcpy(out, block, out_len);
  return true;
}

bool derive_initial_keys(const version_info& v, const uint8_t* dcid, size_t dcid_len,
                         bool client_side, initial_keys& out) {
  if (dcid_len > max_cid_len)
    return false;
  std::array<uint8_t, 32> initial{};
  std::array<uint8_t, 32> secret{};
  if (!hkdf_extract(v.salt, 20, dcid, dcid_len, initial))
    return false;
  if (!hkdf_expand_label(initial, client_side ? "client in" : "server in", secret.data(), 32))
    return false;
  return hkdf_expand_label(secret, v.key_label, out.key.data(), out.key.size()) &&
         hkdf_expand_label(secret, v.iv_label, out.iv.data(), out.iv.size()) &&
         hkdf_expand_label(secret, v.hp_label, out.hp.data(), out.hp.size());
}

bool cached_initial_keys(const version_info& v, const uint8_t* dcid, size_t dcid_len,
                         bool client_side, initial_keys& out, bool& derived) {
  derived = false;
  if (dcid_len > max_cid_len)
    return false;
  struct entry {
    bool used = false;
    bool client_side = false;
    uint32_t version = 0;
    uint8_t dcid_len = 0;
    uint8_t dcid[max_cid_len] = {};
    initial_keys keys;
  };
  thread_local std::array<entry, key_cache_slots> cache{};
  uint64_t h = 0xcbf29ce484222325ull ^ v.version ^ (client_side ? 0x9e37u : 0u);
  for (size_t i = 0; i < dcid_len; ++i)
    h = (h ^ dcid[i]) * 0x100000001b3ull;
  entry& e = cache[(h ^ (h >> 29)) % key_cache_slots];
  if (e.used && e.version == v.version && e.client_side == client_side &&
      e.dcid_len == dcid_len && std::memcmp(e.dcid, dcid, dcid_len) == 0) {
    out = e.keys;
    return true;
  }
  derived = true;
  if (!derive_initial_keys(v, dcid, dcid_len, client_side, out))
    return false;
  e.used = true;
  e.version = v.version;
  e.client_side = client_side;
  e.dcid_len = static_cast<uint8_t>(dcid_len);
  std::memcpy(e.dcid, dcid, dcid_len);
  e.keys = out;
  return true;
}

bool header_mask(const std::array<uint8_t, hp_len>& hp, const uint8_t* sample,
                 std::array<uint8_t, 5>& mask) {
  EVP_CIPHER_CTX* ctx = thread_cipher_ctx();
  if (!ctx || !aes_128_ecb() ||
      EVP_EncryptInit_ex2(ctx, aes_128_ecb(), hp.data(), nullptr, nullptr) != 1)
    return false;
  EVP_CIPHER_CTX_set_padding(ctx, 0);
  uint8_t block[32];
  int n = 0;
  if (EVP_EncryptUpdate(ctx, block, &n, sample, static_cast<int>(sample_len)) != 1 ||
      n != static_cast<int>(sample_len))
    return false;
  std::memcpy(mask.data(), block, mask.size());
  return true;
}

bool aead_open(const initial_keys& k, uint64_t packet_number, const uint8_t* aad, size_t aad_len,
               const uint8_t* in, size_t in_len, uint8_t* out) {
  if (in_len < tag_len || in_len - tag_len > static_cast<size_t>(INT32_MAX) ||
      aad_len > static_cast<size_t>(INT32_MAX))
    return false;
  uint8_t nonce[iv_len];
  std::memcpy(nonce, k.iv.data(), iv_len);
  for (size_t i = 0; i < 8; ++i)
    nonce[iv_len - 1 - i] ^= static_cast<uint8_t>(packet_number >> (8 * i));
  const size_t ct_len = in_len - tag_len;
  uint8_t tag[tag_len];
  std::memcpy(tag, in + ct_len, tag_len); // `out` may overwrite `in`
  EVP_CIPHER_CTX* ctx = thread_cipher_ctx();
  if (!ctx || !aes_128_gcm() ||
      EVP_DecryptInit_ex2(ctx, aes_128_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, iv_len, nullptr) != 1 ||
      EVP_DecryptInit_ex2(ctx, nullptr, k.key.data(), nonce, nullptr) != 1)
    return false;
  int n = 0;
  if (aad_len > 0 && EVP_DecryptUpdate(ctx, nullptr, &n, aad, static_cast<int>(aad_len)) != 1)
    return false;
  if (ct_len > 0 &&
      (EVP_DecryptUpdate(ctx, out, &n, in, static_cast<int>(ct_len)) != 1 ||
       n != static_cast<int>(ct_len)))
    return false;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, tag_len, tag) != 1)
    return false;
  uint8_t final_block[16];
  return EVP_DecryptFinal_ex(ctx, final_block, &n) == 1;
}

} // namespace metaprobe::quic
