// SPDX-License-Identifier: Apache-2.0
#include "parsers/dns/dns_rdata.hpp"

#include <arpa/inet.h>

#include <cstdio>

#include "parsers/common/field_text.hpp"
#include "parsers/dns/dns_message.hpp"

namespace metaprobe::dns {

namespace {

enum : uint16_t {
  t_a = 1, t_ns = 2, t_md = 3, t_mf = 4, t_cname = 5, t_soa = 6, t_mb = 7, t_mg = 8,
  t_mr = 9, t_ptr = 12, t_hinfo = 13, t_mx = 15, t_txt = 16, t_afsdb = 18, t_rt = 21,
  t_aaaa = 28, t_srv = 33, t_kx = 36, t_dname = 39, t_spf = 99,
};

// Reads one name that must start and (in place) end inside the RDATA.
// Appends its text to `text` and its expanded wire form to `bytes`.
bool rdata_name(const uint8_t* msg, size_t len, size_t& pos, size_t end, std::string& text,
                std::string& bytes, bool& expanded, std::string& scratch_text,
                std::string& scratch_wire) {
  size_t next = 0;
  if (pos >= end)
    return false;
  const name_status st = read_name(msg, len, pos, scratch_text, &scratch_wire, next);
  if (st == name_status::malformed || st == name_status::overload || next > end)
    return false;
  text.append(scratch_text);
  if (st == name_status::ok)
    bytes.append(scratch_wire);
  else
    expanded = false; // placeholder name: keep the raw RDATA
  pos = next;
  return true;
}

void append_uint(std::string& text, uint32_t v) {
  char buf[16];
  const int n = std::snprintf(buf, sizeof buf, "%u", v);
  text.append(buf, static_cast<size_t>(n));
}

// One character-string in dig's quoted form (see header).
void append_quoted(std::string& text, const uint8_t* p, size_t n) {
  text.push_back('"');
  size_t i = 0;
  while (i < n) {
    const uint8_t b = p[i];
    if (b == '"' || b == '\\') {
      text.push_back('\\');
      text.push_back(static_cast<char>(b));
      ++i;
    } else if (b >= 0x20 && b < 0x7f) {
      text.push_back(static_cast<char>(b));
      ++i;
    } else {
      const size_t seq = b >= 0x80 ? text::utf8_sequence_length(p + i, n - i) : 0;
      if (seq > 0) {
        text.append(reinterpret_cast<const char*>(p + i), seq);
        i += seq;
      } else {
        char buf[8];
        const int k = std::snprintf(buf, sizeof buf, "\\%03u", static_cast<unsigned>(b));
        text.append(buf, static_cast<size_t>(k));
        ++i;
      }
    }
  }
  text.push_back('"');
}

void append_generic(std::string& text, const uint8_t* p, size_t n) {
  static constexpr char hex[] = "0123456789abcdef";
  text.append("\\# ");
  append_uint(text, static_cast<uint32_t>(n));
  if (n > 0)
    text.push_back(' ');
  for (size_t i = 0; i < n; ++i) {
    text.push_back(hex[p[i] >> 4]);
    text.push_back(hex[p[i] & 15]);
  }
}

} // namespace

bool format_rdata(const uint8_t* msg, size_t len, size_t rdata_off, uint16_t rdlen,
                  uint16_t type, std::string& text, std::string& bytes) {
  text.clear();
  bytes.clear();
  const size_t end = rdata_off + rdlen;
  if (msg == nullptr || end > len)
    return false;
  const uint8_t* rd = msg + rdata_off;
  auto raw = [&] {
    bytes.assign(reinterpret_cast<const char*>(rd), rdlen);
  };
  std::string scratch_text;
  std::string scratch_wire;
  bool expanded = true;
  size_t pos = rdata_off;
  bool ok = true;

  switch (type) {
  case t_a:
    if (rdlen != 4) {
      ok = false;
      break;
    }
    for (int i = 0; i < 4; ++i) {
      if (i)
        text.push_back('.');
      append_uint(text, rd[i]);
    }
    raw();
    return true;
  case t_aaaa: {
    if (rdlen != 16) {
      ok = false;
      break;
    }
    char buf[INET6_ADDRSTRLEN];
    if (inet_ntop(AF_INET6, rd, buf, sizeof buf) == nullptr) {
      ok = false;
      break;
    }
    text.assign(buf);
    raw();
    return true;
  }
  case t_ns:
  case t_md:
  case t_mf:
  case t_cname:
  case t_mb:
  case t_mg:
  case t_mr:
  case t_ptr:
  case t_dname:
    ok = rdata_name(msg, len, pos, end, text, bytes, expanded, scratch_text, scratch_wire) &&
         pos == end;
    break;
  case t_mx:
  case t_afsdb:
  case t_rt:
  case t_kx:
    if (rdlen < 3) {
      ok = false;
      break;
    }
    append_uint(text, be16(rd));
    text.push_back(' ');
    bytes.append(reinterpret_cast<const char*>(rd), 2);
    pos += 2;
    ok = rdata_name(msg, len, pos, end, text, bytes, expanded, scratch_text, scratch_wire) &&
         pos == end;
    break;
  case t_soa:
    ok = rdata_name(msg, len, pos, end, text, bytes, expanded, scratch_text, scratch_wire);
    if (ok) {
      text.push_back(' ');
      ok = rdata_name(msg, len, pos, end, text, bytes, expanded, scratch_text, scratch_wire);
    }
    if (ok && end - pos == 20) {
      for (int i = 0; i < 5; ++i) {
        text.push_back(' ');
        append_uint(text, be32(msg + pos + 4 * i));
      }
      bytes.append(reinterpret_cast<const char*>(msg + pos), 20);
    } else {
      ok = false;
    }
    break;
  case t_srv:
    if (rdlen < 7) {
      ok = false;
      break;
    }
    for (int i = 0; i < 3; ++i) {
      append_uint(text, be16(rd + 2 * i));
      text.push_back(' ');
    }
    bytes.append(reinterpret_cast<const char*>(rd), 6);
    pos += 6;
    ok = rdata_name(msg, len, pos, end, text, bytes, expanded, scratch_text, scratch_wire) &&
         pos == end;
    break;
  case t_txt:
  case t_spf:
  case t_hinfo: {
    size_t i = 0;
    while (i < rdlen) {
      const size_t n = rd[i];
      if (i + 1 + n > rdlen) {
        ok = false;
        break;
      }
      if (i)
        text.push_back(' ');
      append_quoted(text, rd + i + 1, n);
      i += 1 + n;
    }
    raw();
    if (!ok)
      text.clear();
    return ok;
  }
  default:
    append_generic(text, rd, rdlen);
    raw();
    return true;
  }
  if (!ok) {
    text.clear();
    raw();
    return false;
  }
  if (!expanded)
    raw();
  return true;
}

} // namespace metaprobe::dns
