// SPDX-License-Identifier: Apache-2.0
#include "parsers/tls/tls_handshake.hpp"

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <algorithm>
#include <climits>

namespace metaprobe::tls {

namespace {

// Bounds-checked big-endian reader over [p, end).
struct cursor {
  const uint8_t* p;
  const uint8_t* end;

  size_t left() const { return static_cast<size_t>(end - p); }
  bool has(size_t n) const { return left() >= n; }
  bool u8(uint8_t& v) {
    if (!has(1))
      return false;
    v = p[0];
    p += 1;
    return true;
  }
  bool u16(uint16_t& v) {
    if (!has(2))
      return false;
    v = static_cast<uint16_t>(p[0] << 8 | p[1]);
    p += 2;
    return true;
  }
  bool u24(uint32_t& v) {
    if (!has(3))
      return false;
    v = uint32_t{p[0]} << 16 | uint32_t{p[1]} << 8 | p[2];
    p += 3;
    return true;
  }
  bool skip(size_t n) {
    if (!has(n))
      return false;
    p += n;
    return true;
  }
  // A sub-cursor over the next n bytes (which are consumed).
  bool sub(size_t n, cursor& out) {
    if (!has(n))
      return false;
    out = cursor{p, p + n};
    p += n;
    return true;
  }
};

// The body of a handshake message of type `type`: [msg+4, msg+4+length).
bool open_message(const uint8_t* msg, size_t len, uint8_t type, cursor& body) {
  if (msg == nullptr || len < 4 || msg[0] != type)
    return false;
  const size_t n = size_t{msg[1]} << 16 | size_t{msg[2]} << 8 | msg[3];
  if (n > len - 4)
    return false;
  body = cursor{msg + 4, msg + 4 + n};
  return true;
}

std::string cut_name(const uint8_t* p, size_t n) {
  if (n > max_name_bytes)
    n = max_name_bytes;
  return std::string(reinterpret_cast<const char*>(p), n);
}

// server_name (RFC 6066 §3): the first host_name entry. A broken list
// yields no name (tshark marks the extension malformed and goes on).
void read_sni(cursor ext, std::string& sni) {
  uint16_t list_len = 0;
  cursor list{};
  if (!ext.u16(list_len) || !ext.sub(list_len, list))
    return;
  while (list.left() > 0) {
    uint8_t type = 0;
    uint16_t n = 0;
    if (!list.u8(type) || !list.u16(n) || !list.has(n))
      return;
    if (type == 0) {
      sni = cut_name(list.p, n);
      return;
    }
    list.skip(n);
  }
}

// application_layer_protocol_negotiation (RFC 7301 §3.1).
void read_alpn(cursor ext, std::vector<std::string>& alpn) {
  uint16_t list_len = 0;
  cursor list{};
  if (!ext.u16(list_len) || !ext.sub(list_len, list))
    return;
  while (list.left() > 0 && alpn.size() < max_alpn) {
    uint8_t n = 0;
    if (!list.u8(n) || !list.has(n))
      return;
    alpn.push_back(cut_name(list.p, n));
    list.skip(n);
  }
}

// supported_versions in a ClientHello (RFC 8446 §4.2.1): a u8-length list.
void read_versions(cursor ext, std::vector<uint16_t>& versions) {
  uint8_t n = 0;
  cursor list{};
  if (!ext.u8(n) || !ext.sub(n, list))
    return;
  uint16_t v = 0;
  while (versions.size() < max_cipher_suites && list.u16(v))
    versions.push_back(v);
}

// SHA-256("HelloRetryRequest"), the ServerHello.random of a HelloRetryRequest
// (RFC 8446 §4.1.3).
constexpr uint8_t hrr_random[32] = {
  0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
  0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
};

} // namespace

hs_status parse_client_hello(const uint8_t* msg, size_t len, client_hello& out) {
  out = client_hello{};
  cursor c{};
  if (!open_message(msg, len, handshake_client_hello, c))
    return hs_status::malformed;
  uint8_t sid_len = 0;
  if (!c.u16(out.legacy_version) || !c.skip(32) || !c.u8(sid_len) || sid_len > 32 ||
      !c.skip(sid_len))
    return hs_status::malformed;
  uint16_t cs_len = 0;
  cursor suites{};
  if (!c.u16(cs_len) || !c.sub(cs_len, suites))
    return hs_status::malformed;
  out.cipher_suites_len = cs_len;
  uint16_t suite = 0;
  while (out.cipher_suites.size() < max_cipher_suites && suites.u16(suite))
    out.cipher_suites.push_back(suite);
  bool bad = cs_len == 0 || (cs_len & 1) != 0;
  uint8_t comp_len = 0;
  if (!c.u8(comp_len) || !c.skip(comp_len))
    return hs_status::malformed;
  bad = bad || comp_len == 0;
  if (c.left() == 0)
    return bad ? hs_status::malformed : hs_status::ok; // no extensions (TLS 1.0 style)
  uint16_t ext_len = 0;
  cursor exts{};
  if (!c.u16(ext_len) || !c.sub(ext_len, exts))
    return hs_status::malformed;
  bool have_sni = false, have_alpn = false, have_versions = false;
  while (exts.left() > 0) {
    uint16_t type = 0, n = 0;
    cursor ext{};
    if (!exts.u16(type) || !exts.u16(n) || !exts.sub(n, ext))
      return hs_status::malformed;
    out.extension_types.push_back(type);
    switch (type) {
    case 0:
      if (!have_sni) {
        have_sni = true;
        read_sni(ext, out.sni);
      }
      break;
    case 16:
      if (!have_alpn) {
        have_alpn = true;
        read_alpn(ext, out.alpn);
      }
      break;
    case 43:
      if (!have_versions) {
        have_versions = true;
        read_versions(ext, out.supported_versions);
      }
      break;
    default:
      break;
    }
  }
  return bad ? hs_status::malformed : hs_status::ok;
}

hs_status parse_server_hello(const uint8_t* msg, size_t len, server_hello& out) {
  out = server_hello{};
  cursor c{};
  if (!open_message(msg, len, handshake_server_hello, c))
    return hs_status::malformed;
  if (!c.u16(out.legacy_version) || !c.has(32))
    return hs_status::malformed;
  out.hello_retry_request = std::equal(c.p, c.p + 32, hrr_random);
  c.skip(32);
  if ((out.legacy_version >> 8) == 0x7f) {
    // TLS 1.3 drafts before 22: no legacy_session_id_echo, no compression.
    out.draft_layout = true;
    if (!c.u16(out.cipher_suite))
      return hs_status::malformed;
  } else {
    uint8_t sid_len = 0;
    if (!c.u8(sid_len) || sid_len > 32 || !c.skip(sid_len) || !c.u16(out.cipher_suite) ||
        !c.u8(out.compression_method))
      return hs_status::malformed;
  }
  if (c.left() == 0)
    return hs_status::ok;
  uint16_t ext_len = 0;
  cursor exts{};
  if (!c.u16(ext_len) || !c.sub(ext_len, exts))
    return hs_status::malformed;
  while (exts.left() > 0) {
    uint16_t type = 0, n = 0;
    cursor ext{};
    if (!exts.u16(type) || !exts.u16(n) || !exts.sub(n, ext))
      return hs_status::malformed;
    if (type == 43 && out.selected_version == 0) {
      uint16_t v = 0;
      if (n == 2 && ext.u16(v))
        out.selected_version = v;
    }
  }
  return hs_status::ok;
}

bool v2_hello_header(const uint8_t* h, size_t n) {
  if (h == nullptr || n < 5 || (h[0] & 0x80) == 0)
    return false;
  const size_t rec_len = size_t{h[0] & 0x7fu} << 8 | h[1];
  if (rec_len < 9 || h[2] != handshake_client_hello || h[3] != 3 || h[4] > 3)
    return false;
  if (n < v2_header_check)
    return true;
  const size_t cs = size_t{h[5]} << 8 | h[6];
  const size_t sid = size_t{h[7]} << 8 | h[8];
  const size_t chal = size_t{h[9]} << 8 | h[10];
  return cs > 0 && cs % 3 == 0 && (sid == 0 || sid == 16) && chal >= 16 && chal <= 32 &&
         9 + cs + sid + chal == rec_len;
}

hs_status parse_v2_client_hello(const uint8_t* msg, size_t len, client_hello& out) {
  out = client_hello{};
  cursor c{msg, msg + (msg ? len : 0)};
  uint8_t type = 0;
  uint16_t cs_len = 0, sid_len = 0, chal_len = 0;
  if (!c.u8(type) || type != handshake_client_hello || !c.u16(out.legacy_version) ||
      (out.legacy_version >> 8) != 3 || !c.u16(cs_len) || !c.u16(sid_len) || !c.u16(chal_len))
    return hs_status::malformed;
  cursor specs{};
  if (!c.sub(cs_len, specs))
    return hs_status::malformed;
  size_t mapped = 0;
  while (specs.has(3)) {
    const uint8_t* spec = specs.p;
    specs.skip(3);
    if (spec[0] != 0)
      continue; // an SSL 2.0 cipher kind: no TLS cipher suite
    ++mapped;
    if (out.cipher_suites.size() < max_cipher_suites)
      out.cipher_suites.push_back(static_cast<uint16_t>(spec[1] << 8 | spec[2]));
  }
  out.cipher_suites_len = static_cast<uint16_t>(std::min<size_t>(2 * mapped, 0xffff));
  if (cs_len == 0 || cs_len % 3 != 0 || sid_len > 32 || chal_len < 16 || chal_len > 32 ||
      !c.skip(sid_len) || !c.skip(chal_len))
    return hs_status::malformed;
  return hs_status::ok;
}

namespace {

// One DER element: tag, contents [p, p + len), and the whole element from
// its tag byte (for handing it to a decoder). Definite lengths only (DER).
struct der_element {
  uint8_t tag = 0;
  const uint8_t* start = nullptr;
  const uint8_t* p = nullptr;
  size_t len = 0;
  size_t size() const { return static_cast<size_t>(p - start) + len; }
};

bool der_next(cursor& c, der_element& e) {
  e.start = c.p;
  uint8_t first = 0;
  if (!c.u8(e.tag) || (e.tag & 0x1f) == 0x1f || !c.u8(first)) // no high tag numbers
    return false;
  size_t len = first;
  if (first & 0x80) {
    const size_t n = first & 0x7f;
    if (n == 0 || n > 4) // indefinite, or longer than any certificate
      return false;
    len = 0;
    for (size_t i = 0; i < n; ++i) {
      uint8_t b = 0;
      if (!c.u8(b))
        return false;
      len = len << 8 | b;
    }
  }
  e.p = c.p;
  e.len = len;
  return c.skip(len);
}

// The subject Name of a DER certificate, found by walking the TBSCertificate
// header fields only (version, serial, signature algorithm, issuer,
// validity): the rest (keys, extensions, signature) is never decoded.
bool find_subject(const uint8_t* der, size_t len, der_element& subject) {
  cursor c{der, der + len};
  der_element cert, tbs;
  if (!der_next(c, cert) || cert.tag != 0x30)
    return false;
  cursor in{cert.p, cert.p + cert.len};
  if (!der_next(in, tbs) || tbs.tag != 0x30)
    return false;
  cursor t{tbs.p, tbs.p + tbs.len};
  der_element e;
  if (!der_next(t, e))
    return false;
  if (e.tag == 0xa0 && !der_next(t, e)) // [0] version, then the serial number
    return false;
  if (e.tag != 0x02)
    return false;
  for (uint8_t want : {uint8_t{0x30}, uint8_t{0x30}, uint8_t{0x30}}) { // signature, issuer, validity
    if (!der_next(t, e) || e.tag != want)
      return false;
  }
  return der_next(t, subject) && subject.tag == 0x30;
}

} // namespace

hs_status parse_certificate_cn(const uint8_t* msg, size_t len, std::string& cn) {
  cn.clear();
  if (msg == nullptr || len < 4 || msg[0] != handshake_certificate)
    return hs_status::malformed;
  // The message may be cut after the leaf certificate (a capped reassembly
  // buffer): only the bytes up to the end of the first certificate must be
  // present, and they must lie within the announced message length.
  const size_t body_len = size_t{msg[1]} << 16 | size_t{msg[2]} << 8 | msg[3];
  cursor c{msg + 4, msg + 4 + std::min(body_len, len - 4)};
  uint32_t list_len = 0;
  if (!c.u24(list_len))
    return hs_status::malformed;
  if (list_len == 0)
    return body_len == 3 ? hs_status::ok : hs_status::malformed;
  if (list_len > body_len - 3)
    return hs_status::malformed;
  uint32_t cert_len = 0;
  if (!c.u24(cert_len) || cert_len == 0 || cert_len > list_len - 3 || !c.has(cert_len) ||
      cert_len > static_cast<uint32_t>(LONG_MAX))
    return hs_status::malformed;
  // Only the subject Name is decoded (OpenSSL's d2i_X509_NAME): a whole
  // d2i_X509 also decodes the public key and extensions, which cost about
  // a hundred times more and are not exported.
  der_element name;
  if (!find_subject(c.p, cert_len, name))
    return hs_status::malformed;
  const unsigned char* der = name.start;
  X509_NAME* subject = d2i_X509_NAME(nullptr, &der, static_cast<long>(name.size()));
  if (subject == nullptr)
    return hs_status::malformed;
  hs_status st = hs_status::ok;
  const int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (idx >= 0) {
    X509_NAME_ENTRY* entry = X509_NAME_get_entry(subject, idx);
    ASN1_STRING* data = entry ? X509_NAME_ENTRY_get_data(entry) : nullptr;
    unsigned char* utf8 = nullptr;
    const int n = data ? ASN1_STRING_to_UTF8(&utf8, data) : -1;
    if (n >= 0 && utf8 != nullptr)
      cn = cut_name(utf8, static_cast<size_t>(n));
    else
      st = hs_status::malformed;
    OPENSSL_free(utf8);
  }
  X509_NAME_free(subject);
  return st;
}

} // namespace metaprobe::tls
