// SPDX-License-Identifier: Apache-2.0
#pragma once
// Writes the fields of one IPFIX data record into a caller-owned buffer.
// Used by the generated per-template encode functions (field_table_gen.cpp);
// no allocation, every write bounds-checked. On overflow the writer stops
// writing and overflow() turns true; the caller rolls the record back.
//
// Encoding rules (docs/ipfix.md):
//  - unsigned integers: network order, value truncated to the field width;
//  - addresses / MACs: copied when the proto bytes have exactly the field
//    size, otherwise written as zeros and counted in bad_address;
//  - variable length (RFC 7011 §7): 1 length octet below 255, else 255 and a
//    2-octet length; content cut to max_var_length octets;
//  - strings: valid UTF-8 is copied (cut on a character boundary); invalid
//    input has each offending octet replaced by U+FFFD (counted).

#include <cstdint>
#include <cstring>
#include <string>

#include "exporters/ipfix/utf8.hpp"

namespace metaprobe::v1 {
class Record;
}

namespace metaprobe::ipfix {

struct field_writer_stats {
  uint32_t truncated = 0;    // strings / octet arrays cut to the limit
  uint32_t invalid_utf8 = 0; // strings with invalid UTF-8 repaired
  uint32_t bad_address = 0;  // address / MAC of the wrong size, sent as zeros
};

class field_writer {
public:
  field_writer(uint8_t* begin, uint8_t* end, uint32_t max_var_length)
    : p_(begin), end_(end), max_var_(max_var_length > 65535 ? 65535 : max_var_length) {}

  uint8_t* pos() const { return p_; }
  bool overflow() const { return overflow_; }
  const field_writer_stats& stats() const { return stats_; }

  void put_u8(uint64_t v) {
    if (!room(1)) return;
    *p_++ = static_cast<uint8_t>(v);
  }
  void put_u16(uint64_t v) {
    if (!room(2)) return;
    p_[0] = static_cast<uint8_t>(v >> 8);
    p_[1] = static_cast<uint8_t>(v);
    p_ += 2;
  }
  void put_u32(uint64_t v) {
    if (!room(4)) return;
    p_[0] = static_cast<uint8_t>(v >> 24);
    p_[1] = static_cast<uint8_t>(v >> 16);
    p_[2] = static_cast<uint8_t>(v >> 8);
    p_[3] = static_cast<uint8_t>(v);
    p_ += 4;
  }
  void put_u64(uint64_t v) {
    if (!room(8)) return;
    for (int i = 7; i >= 0; --i) {
      p_[i] = static_cast<uint8_t>(v);
      v >>= 8;
    }
    p_ += 8;
  }
  void put_ipv4(const std::string& b) { put_fixed_bytes(b, 4); }
  void put_ipv6(const std::string& b) { put_fixed_bytes(b, 16); }
  void put_mac(const std::string& b) { put_fixed_bytes(b, 6); }

  void put_octets(const std::string& b) {
    size_t n = b.size();
    if (n > max_var_) {
      n = max_var_;
      ++stats_.truncated;
    }
    put_var(reinterpret_cast<const uint8_t*>(b.data()), n);
  }

  void put_string(const std::string& s) {
    const auto* d = reinterpret_cast<const uint8_t*>(s.data());
    const size_t n = s.size();
    if (utf8_valid_prefix(d, n) == n) {
      size_t len = n;
      if (n > max_var_) {
        len = utf8_truncate(d, n, max_var_);
        ++stats_.truncated;
      }
      put_var(d, len);
      return;
    }
    ++stats_.invalid_utf8;
    const size_t len = utf8_sanitize(d, n, nullptr, max_var_);
    if (len < utf8_sanitize(d, n, nullptr, SIZE_MAX)) ++stats_.truncated;
    if (!put_var_header(len)) return;
    utf8_sanitize(d, n, p_, len);
    p_ += len;
  }

private:
  bool room(size_t n) {
    if (overflow_ || static_cast<size_t>(end_ - p_) < n) {
      overflow_ = true;
      return false;
    }
    return true;
  }
  void put_fixed_bytes(const std::string& b, size_t size) {
    if (!room(size)) return;
    if (b.size() == size) {
      std::memcpy(p_, b.data(), size);
    } else {
      std::memset(p_, 0, size);
      ++stats_.bad_address;
    }
    p_ += size;
  }
  // Writes the RFC 7011 §7 length prefix and reserves room for `len` octets.
  bool put_var_header(size_t len) {
    const size_t hdr = len < 255 ? 1 : 3;
    if (!room(hdr + len)) return false;
    if (hdr == 1) {
      *p_++ = static_cast<uint8_t>(len);
    } else {
      p_[0] = 255;
      p_[1] = static_cast<uint8_t>(len >> 8);
      p_[2] = static_cast<uint8_t>(len);
      p_ += 3;
    }
    return true;
  }
  void put_var(const uint8_t* d, size_t len) {
    if (!put_var_header(len)) return;
    if (len) std::memcpy(p_, d, len);
    p_ += len;
  }

  uint8_t* p_;
  uint8_t* end_;
  size_t max_var_;
  bool overflow_ = false;
  field_writer_stats stats_;
};

// Generated (field_table_gen.cpp): writes the fields of template `index`
// (see template_index()) for `rec`. The record must be of that template's kind.
void encode_fields(int index, const v1::Record& rec, field_writer& w);

} // namespace metaprobe::ipfix
