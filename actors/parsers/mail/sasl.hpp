// SPDX-License-Identifier: Apache-2.0
#pragma once
// Credentials in SASL exchanges, shared by the mail and XMPP parsers.
// base64 (RFC 4648 §4; whitespace skipped, stops at '=' or a bad byte),
// PLAIN (RFC 4616: authzid NUL authcid NUL passwd), the user name of a
// DIGEST-MD5 response (RFC 2831 username="...") and of a SCRAM client-first
// message (RFC 5802 n=...). Header-only.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace metaprobe::sasl {

// Decodes base64 text; output capped at `max_out` bytes. Returns false when
// the text holds a byte outside the alphabet (the decoded prefix is kept).
inline bool base64_decode(std::string_view in, std::string& out, size_t max_out) {
  out.clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+')
      v = 62;
    else if (c == '/')
      v = 63;
    else if (c == '=')
      break;
    else if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
      continue;
    else
      return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (out.size() < max_out)
        out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

struct plain_credentials {
  std::string authzid, authcid, passwd;
};

// Splits a decoded PLAIN message. False unless it has exactly two NULs.
inline bool split_plain(std::string_view msg, plain_credentials& out) {
  const size_t a = msg.find('\0');
  if (a == std::string_view::npos)
    return false;
  const size_t b = msg.find('\0', a + 1);
  if (b == std::string_view::npos || msg.find('\0', b + 1) != std::string_view::npos)
    return false;
  out.authzid.assign(msg.substr(0, a));
  out.authcid.assign(msg.substr(a + 1, b - a - 1));
  out.passwd.assign(msg.substr(b + 1));
  return true;
}

// username="..." of a decoded DIGEST-MD5 response; empty when absent.
inline std::string digest_md5_username(std::string_view msg) {
  size_t pos = 0;
  while (pos < msg.size()) {
    while (pos < msg.size() && (msg[pos] == ' ' || msg[pos] == ','))
      ++pos;
    const size_t eq = msg.find('=', pos);
    if (eq == std::string_view::npos)
      return {};
    const std::string_view key = msg.substr(pos, eq - pos);
    size_t v = eq + 1;
    std::string value;
    if (v < msg.size() && msg[v] == '"') {
      ++v;
      while (v < msg.size() && msg[v] != '"') {
        if (msg[v] == '\\' && v + 1 < msg.size())
          ++v;
        value.push_back(msg[v]);
        ++v;
      }
      ++v;
    } else {
      while (v < msg.size() && msg[v] != ',')
        value.push_back(msg[v++]);
    }
    if (key == "username")
      return value;
    pos = v;
  }
  return {};
}

// n=<user> of a SCRAM client-first message ("n,,n=user,r=nonce"); "=2C" and
// "=3D" decoded. Empty when absent.
inline std::string scram_username(std::string_view msg) {
  size_t pos = 0;
  // Skip the GS2 header: two comma-separated fields.
  for (int i = 0; i < 2; ++i) {
    const size_t c = msg.find(',', pos);
    if (c == std::string_view::npos)
      return {};
    pos = c + 1;
  }
  if (msg.substr(pos, 2) != "n=")
    return {};
  pos += 2;
  std::string out;
  while (pos < msg.size() && msg[pos] != ',') {
    if (msg.substr(pos, 3) == "=2C") {
      out.push_back(',');
      pos += 3;
    } else if (msg.substr(pos, 3) == "=3D") {
      out.push_back('=');
      pos += 3;
    } else {
      out.push_back(msg[pos++]);
    }
  }
  return out;
}

} // namespace metaprobe::sasl
