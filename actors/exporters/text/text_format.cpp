// SPDX-License-Identifier: Apache-2.0
#include "exporters/text/text_format.hpp"

#include <charconv>

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/config.hpp"

namespace metaprobe {

namespace {

using field = text_line_formatter::field;

struct field_name {
  std::string_view name;
  field id;
};

constexpr field_name field_names[] = {
    {"ts", field::ts},           {"prg", field::prg},         {"login", field::login},
    {"ipsrc", field::ipsrc},     {"ipdst", field::ipdst},     {"psrc", field::psrc},
    {"pdst", field::pdst},       {"ssid", field::ssid},       {"host", field::host},
    {"path", field::path},       {"ref", field::ref},         {"uagent", field::uagent},
    {"cookie", field::cookie},   {"tphost", field::tphost},   {"blockd", field::blockd},
    {"method", field::method},   {"methodname", field::methodname},
    {"msg", field::msg},         {"scode", field::scode},     {"from", field::from},
    {"to", field::to},           {"callid", field::callid},   {"uri", field::uri},
    {"ctype", field::ctype},     {"gateways", field::gateways},
    {"transport", field::transport}, {"rrtype", field::rrtype}, {"rrclass", field::rrclass},
    {"ttl", field::ttl},         {"rdlen", field::rdlen},     {"rdata", field::rdata},
};

void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

// IPv4 by hand: glibc's inet_ntop formats it through sprintf, a tenth of
// the text exporter's time.
void append_ip(std::string& out, const std::string& bytes) {
  if (bytes.size() == 4) {
    char buf[16];
    char* p = buf;
    for (int i = 0; i < 4; ++i) {
      if (i)
        *p++ = '.';
      p = std::to_chars(p, buf + sizeof buf, static_cast<unsigned char>(bytes[static_cast<size_t>(i)])).ptr;
    }
    out.append(buf, static_cast<size_t>(p - buf));
    return;
  }
  char buf[INET6_ADDRSTRLEN];
  if (bytes.size() == 16 && inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf))
    out += buf;
}

void append_hex(std::string& out, const std::string& bytes) {
  static const char digits[] = "0123456789abcdef";
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
}

uint64_t unix_seconds(const v1::FlowMeta& m) {
  if (m.time_stamp() != 0)
    return m.time_stamp();
  return m.time_ns() / 1000000000ull;
}

// Fields every kind shares, from FlowMeta. Returns false if `f` is not one.
bool append_meta(std::string& out, field f, const v1::FlowMeta& m) {
  switch (f) {
  case field::ts: append_uint(out, unix_seconds(m)); return true;
  case field::prg: out += '0'; return true;
  case field::login: append_escaped(out, m.login()); return true;
  case field::ipsrc: append_ip(out, m.ip_source()); return true;
  case field::ipdst: append_ip(out, m.ip_destination()); return true;
  case field::psrc: append_uint(out, m.port_source()); return true;
  case field::pdst: append_uint(out, m.port_destination()); return true;
  case field::ssid: append_uint(out, m.session_id()); return true;
  default: return false;
  }
}

void append_field(std::string& out, field f, const v1::Clickstream& c) {
  if (append_meta(out, f, c.meta()))
    return;
  switch (f) {
  case field::host: append_escaped(out, c.hostname()); break;
  case field::path: append_escaped(out, c.path()); break;
  case field::ref: append_escaped(out, c.referer()); break;
  case field::uagent: append_escaped(out, c.user_agent()); break;
  case field::cookie: append_escaped(out, c.cookie()); break;
  case field::tphost: append_uint(out, c.host_type()); break;
  case field::blockd: append_uint(out, c.locked()); break;
  case field::method: append_uint(out, c.method()); break;
  case field::methodname: append_escaped(out, c.method_name()); break;
  default: break;
  }
}

void append_field(std::string& out, field f, const v1::Sip& s) {
  if (append_meta(out, f, s.meta()))
    return;
  switch (f) {
  case field::msg: append_escaped(out, s.msg_code()); break;
  case field::scode: append_uint(out, s.status_code()); break;
  case field::from: append_escaped(out, s.from()); break;
  case field::to: append_escaped(out, s.to()); break;
  case field::callid: append_escaped(out, s.callid()); break;
  case field::uagent: append_escaped(out, s.uagent()); break;
  case field::uri: append_escaped(out, s.uri()); break;
  case field::ctype: append_escaped(out, s.ctype()); break;
  case field::gateways: append_escaped(out, s.gateways()); break;
  default: break;
  }
}

void append_field(std::string& out, field f, const v1::Dns& d) {
  if (append_meta(out, f, d.meta()))
    return;
  switch (f) {
  case field::transport: append_uint(out, d.transport()); break;
  case field::host: append_escaped(out, d.domain()); break;
  case field::rrtype: append_uint(out, d.rrtype()); break;
  case field::rrclass: append_uint(out, d.rrclass()); break;
  case field::ttl: append_uint(out, d.ttl()); break;
  case field::rdlen: append_uint(out, d.rdata().size()); break;
  case field::rdata:
    if (!d.rdata_text().empty())
      append_escaped(out, d.rdata_text());
    else
      append_hex(out, d.rdata());
    break;
  default: break;
  }
}

template <class R>
void append_line(std::string& out, const std::vector<field>& fields, const R& r) {
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i)
      out += text_field_separator;
    append_field(out, fields[i], r);
  }
  out += '\n';
}

} // namespace

std::string_view text_kind_name(text_kind k) {
  switch (k) {
  case text_kind::url: return "url";
  case text_kind::ssl: return "ssl";
  case text_kind::sip: return "sip";
  case text_kind::dns: return "dns";
  }
  return "?";
}

std::optional<text_kind> text_kind_from_name(std::string_view name) {
  for (text_kind k : {text_kind::url, text_kind::ssl, text_kind::sip, text_kind::dns})
    if (text_kind_name(k) == name)
      return k;
  return std::nullopt;
}

namespace {

// Whether any of the 8 bytes in `x` needs an escape (< 0x20, 0x7f or '\\'):
// the exact "has a byte less than n" / "has a zero byte" word tests.
inline bool word_needs_escape(uint64_t x) {
  constexpr uint64_t ones = 0x0101010101010101ull;
  constexpr uint64_t highs = 0x8080808080808080ull;
  const uint64_t below_space = (x - ones * 0x20) & ~x & highs;
  const uint64_t y = x ^ (ones * 0x7f);
  const uint64_t del = (y - ones) & ~y & highs;
  const uint64_t z = x ^ (ones * '\\');
  const uint64_t backslash = (z - ones) & ~z & highs;
  return (below_space | del | backslash) != 0;
}

} // namespace

void append_escaped(std::string& out, std::string_view s) {
  static const char digits[] = "0123456789abcdef";
  // runs of characters that need no escape are appended in one piece; the
  // scan skips 8 clean bytes at a time
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    while (i + 8 <= s.size()) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, sizeof w);
      if (word_needs_escape(w))
        break;
      i += 8;
    }
    if (i >= s.size())
      break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != 0x7f && c != '\\')
      continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
    case '\\': out += "\\\\"; break;
    case '\t': out += "\\t"; break;
    case '\r': out += "\\r"; break;
    case '\n': out += "\\n"; break;
    default:
      out += "\\x";
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  out.append(s.data() + run, s.size() - run);
}

text_line_formatter::text_line_formatter(text_kind kind, const std::vector<std::string>& fields,
                                         int64_t ssl_mask)
    : kind_(kind), ssl_mask_(ssl_mask) {
  const auto& valid = text_format_fields(text_kind_name(kind));
  if (fields.empty())
    throw config_error("text export " + std::string(text_kind_name(kind)) + ": empty format");
  for (const auto& name : fields) {
    auto it = std::find_if(std::begin(field_names), std::end(field_names),
                           [&](const field_name& f) { return f.name == name; });
    if (it == std::end(field_names) || std::find(valid.begin(), valid.end(), name) == valid.end())
      throw config_error("text export " + std::string(text_kind_name(kind)) + ": unknown field '" +
                         name + "'");
    fields_.push_back(it->id);
  }
}

bool text_line_formatter::selects(const v1::Record& rec) const {
  switch (kind_) {
  case text_kind::url:
    return rec.has_clickstream() && rec.clickstream().host_type() == 1;
  case text_kind::ssl: {
    if (!rec.has_clickstream())
      return false;
    int64_t bit = 0;
    switch (rec.clickstream().host_type()) {
    case 2: bit = ssl_mask_cname; break;
    case 3: bit = ssl_mask_sni; break;
    case 4: bit = ssl_mask_quic; break;
    default: return false;
    }
    return ssl_mask_ == -1 || (ssl_mask_ & bit) != 0;
  }
  case text_kind::sip:
    return rec.has_sip();
  case text_kind::dns:
    return rec.has_dns();
  }
  return false;
}

bool text_line_formatter::append(const v1::Record& rec, std::string& out) const {
  if (!selects(rec))
    return false;
  switch (kind_) {
  case text_kind::url:
  case text_kind::ssl: append_line(out, fields_, rec.clickstream()); break;
  case text_kind::sip: append_line(out, fields_, rec.sip()); break;
  case text_kind::dns: append_line(out, fields_, rec.dns()); break;
  }
  return true;
}

} // namespace metaprobe
