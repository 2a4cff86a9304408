// SPDX-License-Identifier: Apache-2.0
#pragma once
// TLS handshake message decoding shared by the TLS parser (handshake bytes
// from TLS records over TCP) and the QUIC parser (handshake bytes from
// CRYPTO frames of Initial packets). Plain functions over complete handshake
// messages: no framing, no state, no I/O, no allocation beyond the output.
//
// Input is one whole handshake message *including* its 4-byte header
// (msg_type, uint24 length). Callers reassemble messages that span records,
// TCP segments or QUIC packets before calling.
//
// Limits: at most max_cipher_suites suites and max_alpn ALPN names are kept
// (the counts/lengths are still reported in full); names longer than
// max_name_bytes are cut. A value that does not fit its length prefix is
// `malformed`; nothing is read past `len`. On `malformed` the fields decoded
// before the error stay in the output (parse_client_hello sets
// cipher_suites_len, non-zero, once the cipher suite vector fitted), so a
// caller may still report what tshark would show of a damaged message.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace metaprobe::tls {

inline constexpr uint8_t handshake_client_hello = 1;
inline constexpr uint8_t handshake_server_hello = 2;
inline constexpr uint8_t handshake_certificate = 11;

inline constexpr size_t max_cipher_suites = 512;
inline constexpr size_t max_alpn = 16;
inline constexpr size_t max_name_bytes = 1024;

enum class hs_status : uint8_t {
  ok,        // decoded
  malformed, // lengths inconsistent, wrong message type, ...
};

struct client_hello {
  uint16_t legacy_version = 0;               // ClientHello.legacy_version (0x0303 ...)
  std::vector<uint16_t> supported_versions;  // extension 43, in order (GREASE kept)
  std::string sni;                           // first host_name of server_name (ext 0), raw bytes
  std::vector<std::string> alpn;             // extension 16, in order
  uint16_t cipher_suites_len = 0;            // length in bytes of the cipher_suites vector
  std::vector<uint16_t> cipher_suites;       // in order, at most max_cipher_suites
  std::vector<uint16_t> extension_types;     // in order
};

struct server_hello {
  uint16_t legacy_version = 0;               // ServerHello.legacy_version (0x7fNN: a TLS 1.3 draft)
  uint16_t selected_version = 0;             // supported_versions (ext 43), 0 if absent
  uint16_t cipher_suite = 0;
  uint8_t compression_method = 0;
  bool hello_retry_request = false;          // random == SHA-256("HelloRetryRequest")
  bool draft_layout = false;                 // TLS 1.3 draft < 22 layout (no session id, no compression)
  // Negotiated version: selected_version when present, else legacy_version.
  uint16_t version() const { return selected_version ? selected_version : legacy_version; }
};

// `msg` points at the handshake header (type 1 / 2); `len` covers the whole
// message (4 + body length) or more (trailing bytes are ignored).
hs_status parse_client_hello(const uint8_t* msg, size_t len, client_hello& out);
// A ServerHello whose version is 0x7fNN (TLS 1.3 drafts before 22, e.g.
// draft-18 0x7f12) has the draft layout: version, random, cipher_suite,
// extensions; no session id and no compression method (compression_method
// stays 0, legacy_version keeps the draft value).
hs_status parse_server_hello(const uint8_t* msg, size_t len, server_hello& out);

// SSLv2-compatible CLIENT-HELLO (RFC 5246 appendix E.2, RFC 6101 appendix
// E): the record header has the high bit set, two length bytes, and the
// message follows: msg_type 1, version (3.0 .. 3.3), cipher_spec_length,
// session_id_length, challenge_length, then the V2CipherSpecs (3 bytes
// each), the session id and the challenge.
//   v2_hello_header(h, n) checks the first n (>= 5) bytes of such a record:
//     high bit, msg_type 1, major version 3, minor 0..3, length >= 9; with
//     n >= 11 also the three lengths: cipher_spec_length a non-zero multiple
//     of 3, session_id_length 0 or 16, challenge_length 16..32, and the
//     lengths adding up to the record length.
//   parse_v2_client_hello: `msg` points at msg_type (after the 2-byte record
//     header), `len` = the record length. legacy_version = the version;
//     cipher_suites = the specs whose first byte is 0 (the TLS cipher suites
//     of appendix E.2), cipher_suites_len = 2 * their number (the bytes the
//     TLS list of those suites would take). No SNI, no extensions exist.
inline constexpr size_t v2_header_check = 11;
bool v2_hello_header(const uint8_t* h, size_t n);
hs_status parse_v2_client_hello(const uint8_t* msg, size_t len, client_hello& out);

// Certificate message (type 11, TLS <= 1.2 layout): the subject commonName
// of the first (leaf) certificate, decoded from its DER. Empty string with
// `ok` when the certificate has no CN. Uses OpenSSL's d2i_X509.
hs_status parse_certificate_cn(const uint8_t* msg, size_t len, std::string& cn);

} // namespace metaprobe::tls
