// SPDX-License-Identifier: Apache-2.0
#include "parsers/dns/dns_message.hpp"

#include <limits>

#include "parsers/common/field_text.hpp"

namespace metaprobe::dns {

namespace {

constexpr size_t max_name_chars = 253;   // longest presentation name tshark shows
constexpr size_t max_pointers = 255;     // more pointers in one name: a loop

// Label bytes as tshark's format_text shows them: C escapes for \a \b \t \n
// \v \f \r, 3-digit octal for the other control bytes and 0x7f.
void append_label(std::string& text, const uint8_t* p, size_t n, bool& high) {
  static constexpr char letters[] = "abtnvfr"; // for 0x07..0x0d
  for (size_t i = 0; i < n; ++i) {
    const uint8_t b = p[i];
    if (b >= 0x07 && b <= 0x0d) {
      text.push_back('\\');
      text.push_back(letters[b - 0x07]);
    } else if (b < 0x20 || b == 0x7f) {
      const char esc[4] = {'\\', static_cast<char>('0' + (b >> 6)),
                           static_cast<char>('0' + ((b >> 3) & 7)),
                           static_cast<char>('0' + (b & 7))};
      text.append(esc, 4);
    } else {
      if (b >= 0x80)
        high = true;
      text.push_back(static_cast<char>(b));
    }
  }
}

} // namespace

bool read_header(const uint8_t* msg, size_t len, header& h) {
  if (msg == nullptr || len < header_size)
    return false;
  h.id = be16(msg);
  h.flags = be16(msg + 2);
  h.qdcount = be16(msg + 4);
  h.ancount = be16(msg + 6);
  h.nscount = be16(msg + 8);
  h.arcount = be16(msg + 10);
  return true;
}

namespace {

// The one name walker; `text` null: check only, render nothing.
name_status walk_name(const uint8_t* msg, size_t len, size_t off, std::string* text,
                      std::string* wire, size_t& next, size_t& budget) {
  if (text != nullptr)
    text->clear();
  if (wire != nullptr)
    wire->clear();
  size_t pos = off;
  bool jumped = false;
  size_t pointers = 0;
  size_t chars = 0;      // presentation length, escapes not expanded
  bool too_long = false;
  bool high = false;
  for (;;) {
    if (pos >= len)
      return name_status::malformed;
    const uint8_t c = msg[pos];
    if (c == 0) {
      if (!jumped)
        next = pos + 1;
      break;
    }
    if (jumped) {
      // Bytes in place are walked once per message; what pointers lead to
      // may be walked again and again: that work is bounded.
      if (budget == 0)
        return name_status::overload;
      --budget;
    }
    switch (c & 0xc0) {
    case 0x00: {
      if (pos + 1 + c > len)
        return name_status::malformed;
      chars += (chars ? 1u : 0u) + c;
      if (chars > max_name_chars)
        too_long = true;
      if (!too_long && text != nullptr) {
        if (chars > c)
          text->push_back('.');
        append_label(*text, msg + pos + 1, c, high);
        if (wire != nullptr)
          wire->append(reinterpret_cast<const char*>(msg + pos), 1u + c);
      }
      pos += 1u + c;
      break;
    }
    case 0xc0: {
      if (pos + 1 >= len)
        return name_status::malformed;
      const size_t target = (static_cast<size_t>(c & 0x3f) << 8) | msg[pos + 1];
      if (!jumped) {
        next = pos + 2;
        jumped = true;
      }
      // tshark 4.0's loop rules: a pointer to the 2 bytes just past itself,
      // or more than 255 pointers in one name.
      if (target == pos + 4 || ++pointers > max_pointers) {
        if (text != nullptr)
          text->assign("<Name contains a pointer that loops>");
        if (wire != nullptr)
          wire->clear();
        return name_status::loop;
      }
      pos = target;
      break;
    }
    default: // 0x40 extended / 0x80 reserved label types
      return name_status::malformed;
    }
  }
  if (too_long) {
    if (text != nullptr)
      text->assign("<Name too long>");
    if (wire != nullptr)
      wire->clear();
    return name_status::too_long;
  }
  if (text != nullptr) {
    if (chars == 0) {
      text->assign("<Root>");
    } else if (high) {
      std::string raw;
      raw.swap(*text);
      text::append_utf8(*text, raw, std::numeric_limits<size_t>::max());
    }
  }
  if (wire != nullptr)
    wire->push_back('\0');
  return name_status::ok;
}

} // namespace

name_status read_name(const uint8_t* msg, size_t len, size_t off, std::string& text,
                      std::string* wire, size_t& next, size_t& budget) {
  return walk_name(msg, len, off, &text, wire, next, budget);
}

name_status read_name(const uint8_t* msg, size_t len, size_t off, std::string& text,
                      std::string* wire, size_t& next) {
  size_t budget = default_name_budget;
  return walk_name(msg, len, off, &text, wire, next, budget);
}

name_status skip_name(const uint8_t* msg, size_t len, size_t off, size_t& next, size_t& budget) {
  return walk_name(msg, len, off, nullptr, nullptr, next, budget);
}

decode_status decode_message(const uint8_t* msg, size_t len, const decode_limits& limits,
                             message_view& out) {
  out.count = 0;
  out.end = 0;
  if (!read_header(msg, len, out.hdr))
    return decode_status::truncated;
  size_t pos = header_size;
  out.end = pos;
  size_t budget = limits.max_name_steps;
  const uint16_t counts[4] = {out.hdr.qdcount, out.hdr.ancount, out.hdr.nscount,
                              out.hdr.arcount};
  const int last = static_cast<int>(limits.last_section);
  for (int sec = 0; sec <= last && sec < 4; ++sec) {
    for (uint32_t i = 0; i < counts[sec]; ++i) {
      if (pos >= len)
        return decode_status::truncated;
      if (out.count >= limits.max_entries)
        return decode_status::limit;
      if (out.entries.size() <= out.count)
        out.entries.emplace_back();
      entry& e = out.entries[out.count];
      size_t next = 0;
      e.name_st = read_name(msg, len, pos, e.name, nullptr, next, budget);
      if (e.name_st == name_status::overload)
        return decode_status::limit;
      if (e.name_st == name_status::malformed)
        return decode_status::malformed;
      e.sec = static_cast<section>(sec);
      if (sec == 0) {
        if (next + 4 > len)
          return decode_status::truncated;
        e.type = be16(msg + next);
        e.rrclass = be16(msg + next + 2);
        e.ttl = 0;
        e.rdata_off = next + 4;
        e.rdlen = 0;
        e.rdata_complete = true;
        pos = next + 4;
      } else {
        if (next + 10 > len)
          return decode_status::truncated;
        e.type = be16(msg + next);
        e.rrclass = be16(msg + next + 2);
        e.ttl = be32(msg + next + 4);
        e.rdlen = be16(msg + next + 8);
        e.rdata_off = next + 10;
        e.rdata_complete = e.rdata_off + e.rdlen <= len;
        if (!e.rdata_complete)
          return decode_status::malformed; // tshark does not list it either
        pos = e.rdata_off + e.rdlen;
      }
      ++out.count;
      out.end = pos;
    }
  }
  return decode_status::ok;
}

} // namespace metaprobe::dns
