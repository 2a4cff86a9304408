// SPDX-License-Identifier: Apache-2.0
#include "exporters/ipfix/record_format.hpp"

#include <arpa/inet.h>

#include <cstdio>

#include "exporters/ipfix/utf8.hpp"

namespace metaprobe::ipfix {

namespace {
constexpr char hex_digits[] = "0123456789abcdef";

void append_number(std::string& out, uint64_t v) {
  char tmp[24];
  int n = std::snprintf(tmp, sizeof tmp, "%llu", static_cast<unsigned long long>(v));
  out.append(tmp, static_cast<size_t>(n));
}

// Valid UTF-8 rendering, escaped for JSON.
void append_json_escaped(std::string& out, const uint8_t* d, size_t n) {
  std::string clean;
  if (utf8_valid_prefix(d, n) != n) {
    clean.resize(utf8_sanitize(d, n, nullptr, SIZE_MAX));
    utf8_sanitize(d, n, reinterpret_cast<uint8_t*>(clean.data()), clean.size());
    d = reinterpret_cast<const uint8_t*>(clean.data());
    n = clean.size();
  }
  for (size_t i = 0; i < n; ++i) {
    const uint8_t c = d[i];
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    case '\b': out += "\\b"; break;
    case '\f': out += "\\f"; break;
    default:
      if (c < 0x20 || c == 0x7f) {
        out += "\\u00";
        out += hex_digits[c >> 4];
        out += hex_digits[c & 15];
      } else {
        out += static_cast<char>(c);
      }
    }
  }
}

void append_text_escaped(std::string& out, const uint8_t* d, size_t n) {
  out += '"';
  for (size_t i = 0; i < n; ++i) {
    const uint8_t c = d[i];
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    default:
      if (c < 0x20 || c == 0x7f) {
        out += "\\x";
        out += hex_digits[c >> 4];
        out += hex_digits[c & 15];
      } else {
        out += static_cast<char>(c);
      }
    }
  }
  out += '"';
}

void append_value(std::string& out, const decoded_field& f, output_format fmt) {
  switch (f.kind) {
  case value_kind::unsigned_int:
  case value_kind::date_time_ms:
    append_number(out, f.number);
    return;
  case value_kind::ipv4:
  case value_kind::ipv6:
  case value_kind::mac:
    if (fmt == output_format::json) out += '"';
    append_address(out, f);
    if (fmt == output_format::json) out += '"';
    return;
  case value_kind::string:
    if (fmt == output_format::json) {
      out += '"';
      append_json_escaped(out, f.data, f.size);
      out += '"';
    } else {
      append_text_escaped(out, f.data, f.size);
    }
    return;
  case value_kind::octets:
    if (fmt == output_format::json) out += '"';
    append_hex(out, f.data, f.size);
    if (fmt == output_format::json) out += '"';
    return;
  }
}
} // namespace

void append_json_string(std::string& out, const uint8_t* data, size_t size) {
  out += '"';
  append_json_escaped(out, data, size);
  out += '"';
}

void append_hex(std::string& out, const uint8_t* data, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    out += hex_digits[data[i] >> 4];
    out += hex_digits[data[i] & 15];
  }
}

void append_address(std::string& out, const decoded_field& f) {
  char tmp[INET6_ADDRSTRLEN];
  if (f.kind == value_kind::ipv4 && f.size == 4) {
    if (inet_ntop(AF_INET, f.data, tmp, sizeof tmp)) out += tmp;
  } else if (f.kind == value_kind::ipv6 && f.size == 16) {
    if (inet_ntop(AF_INET6, f.data, tmp, sizeof tmp)) out += tmp;
  } else if (f.kind == value_kind::mac && f.size == 6) {
    for (size_t i = 0; i < 6; ++i) {
      if (i) out += ':';
      out += hex_digits[f.data[i] >> 4];
      out += hex_digits[f.data[i] & 15];
    }
  } else {
    append_hex(out, f.data, f.size);
  }
}

void format_record(const decoded_record& rec, output_format fmt, std::string& out) {
  if (fmt == output_format::json) {
    out += "{\"template\":";
    append_json_string(out, reinterpret_cast<const uint8_t*>(rec.kind.data()), rec.kind.size());
    if (!rec.family.empty()) {
      out += ",\"family\":";
      append_json_string(out, reinterpret_cast<const uint8_t*>(rec.family.data()), rec.family.size());
    }
    if (rec.kind == "unknown" || rec.kind == "options") {
      out += ",\"template_id\":";
      append_number(out, rec.template_id);
    }
    for (const decoded_field& f : rec.fields) {
      out += ',';
      append_json_string(out, reinterpret_cast<const uint8_t*>(f.name.data()), f.name.size());
      out += ':';
      append_value(out, f, fmt);
    }
    out += '}';
    return;
  }
  out.append(rec.kind.data(), rec.kind.size());
  if (!rec.family.empty()) {
    out += ' ';
    out.append(rec.family.data(), rec.family.size());
  }
  if (rec.kind == "unknown" || rec.kind == "options") {
    out += " template_id=";
    append_number(out, rec.template_id);
  }
  for (const decoded_field& f : rec.fields) {
    out += ' ';
    out.append(f.name.data(), f.name.size());
    out += '=';
    append_value(out, f, fmt);
  }
}

} // namespace metaprobe::ipfix
