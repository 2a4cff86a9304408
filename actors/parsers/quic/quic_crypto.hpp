// SPDX-License-Identifier: Apache-2.0
#pragma once
// QUIC Initial packet protection (RFC 9001 §5, RFC 9369 §3.3): the version
// table (salts, HKDF labels, long-header packet type codes), the Initial
// secrets and keys derived from the client's Destination Connection ID,
// the header protection mask (AES-128-ECB) and AES-128-GCM payload
// decryption. Uses OpenSSL libcrypto (HMAC-SHA256, EVP ciphers); no state,
// no I/O, nothing thrown. Every function returns false on a crypto library
// failure or a failed authentication tag.

#include <array>
#include <cstddef>
#include <cstdint>

namespace metaprobe::quic {

// Long-header packet types in RFC 9000 numbering; versions map the 2 type
// bits of the first byte onto these (v2 uses other codes, RFC 9369 §3.2).
enum class packet_type : uint8_t { initial = 0, zero_rtt = 1, handshake = 2, retry = 3 };

// What metaprobe knows about one QUIC version.
struct version_info {
  uint32_t version = 0;
  const uint8_t* salt = nullptr;   // 20 bytes
  const char* key_label = "";      // "quic key" / "quicv2 key"
  const char* iv_label = "";
  const char* hp_label = "";
  uint8_t type_code[4] = {0, 1, 2, 3}; // wire bits for initial, 0-RTT, handshake, retry
};

// Versions with Initial protection metaprobe can remove: v1 (0x00000001),
// v2 (0x6b3343cf), drafts 27..34 (0xff00001b..0xff000022; 27/28 use the
// draft-23 salt, 29..32 the draft-29 salt, 33/34 the v1 salt). nullptr for
// anything else (including 0 = Version Negotiation and greased versions
// 0x?a?a?a?a).
const version_info* find_version(uint32_t version);

// The packet type that wire type bits (first byte >> 4 & 3) mean.
packet_type type_of(const version_info& v, uint8_t bits);

inline constexpr size_t key_len = 16;
inline constexpr size_t iv_len = 12;
inline constexpr size_t hp_len = 16;
inline constexpr size_t tag_len = 16;
inline constexpr size_t sample_len = 16;
inline constexpr size_t max_cid_len = 20;

struct initial_keys {
  std::array<uint8_t, key_len> key{};
  std::array<uint8_t, iv_len> iv{};
  std::array<uint8_t, hp_len> hp{};
};

// HKDF-Extract(salt, ikm) with SHA-256 (RFC 5869 §2.2).
bool hkdf_extract(const uint8_t* salt, size_t salt_len, const uint8_t* ikm, size_t ikm_len,
                  std::array<uint8_t, 32>& prk);
// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context; out_len <= 32.
bool hkdf_expand_label(const std::array<uint8_t, 32>& secret, const char* label, uint8_t* out,
                       size_t out_len);

// Client (client_side=true, label "client in") or server ("server in")
// Initial keys for the given version and the client's first Destination
// Connection ID (at most max_cid_len bytes).
bool derive_initial_keys(const version_info& v, const uint8_t* dcid, size_t dcid_len,
                         bool client_side, initial_keys& out);

// derive_initial_keys through a cache of the last key_cache_slots
// (version, side, DCID) of the calling thread (direct-mapped by a hash of
// the DCID): a capture that repeats a DCID (retransmissions, coalesced
// packets, a replayed Initial from many sources) derives once. `derived`
// tells whether this call derived (a miss).
inline constexpr size_t key_cache_slots = 256;
bool cached_initial_keys(const version_info& v, const uint8_t* dcid, size_t dcid_len,
                         bool client_side, initial_keys& out, bool& derived);

// AES-128-ECB of the 16-byte sample under the header protection key: the
// first 5 bytes are the mask (RFC 9001 §5.4.3).
bool header_mask(const std::array<uint8_t, hp_len>& hp, const uint8_t* sample,
                 std::array<uint8_t, 5>& mask);

// AES-128-GCM open: nonce = iv XOR packet number (RFC 9001 §5.3), `aad` the
// unprotected header, `in` ciphertext followed by the 16-byte tag
// (in_len >= tag_len). Writes in_len - tag_len plaintext bytes to `out`
// (which may alias `in`). False when the tag does not verify.
bool aead_open(const initial_keys& k, uint64_t packet_number, const uint8_t* aad, size_t aad_len,
               const uint8_t* in, size_t in_len, uint8_t* out);

} // namespace metaprobe::quic
