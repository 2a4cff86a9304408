// SPDX-License-Identifier: Apache-2.0
#include "parsers/quic/quic_packet.hpp"

#include <algorithm>
#include <cstring>

namespace metaprobe::quic {

namespace {

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

bool skip_varints(const uint8_t* p, size_t len, size_t& off, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i)
    if (!read_varint(p, len, off, v))
      return false;
  return true;
}

// Skips `n` bytes announced by a length field.
bool skip_bytes(size_t len, size_t& off, uint64_t n) {
  if (n > len - off)
    return false;
  off += static_cast<size_t>(n);
  return true;
}

} // namespace

bool read_varint(const uint8_t* p, size_t len, size_t& off, uint64_t& value) {
  if (off >= len)
    return false;
  const size_t n = size_t{1} << (p[off] >> 6);
  if (n > len - off)
    return false;
  uint64_t v = p[off] & 0x3f;
  for (size_t i = 1; i < n; ++i)
    v = (v << 8) | p[off + i];
  off += n;
  value = v;
  return true;
}

uint64_t decode_packet_number(int64_t largest_pn, uint64_t truncated_pn, unsigned pn_nbits) {
  const uint64_t expected = static_cast<uint64_t>(largest_pn + 1);
  const uint64_t win = uint64_t{1} << pn_nbits;
  const uint64_t hwin = win / 2;
  const uint64_t mask = win - 1;
  const uint64_t candidate = (expected & ~mask) | truncated_pn;
  // RFC 9000 A.3, written without signed overflow; (1 << 62) bounds packet numbers.
  if (candidate + hwin <= expected && candidate < (uint64_t{1} << 62) - win)
    return candidate + win;
  if (candidate > expected + hwin && candidate >= win)
    return candidate - win;
  return candidate;
}

header_status parse_long_header(const uint8_t* data, size_t len, long_header& h) {
  h = long_header{};
  if (len == 0 || (data[0] & 0x80) == 0)
    return header_status::not_long;
  if (len < 7)
    return header_status::malformed;
  h.first = data[0];
  h.version = be32(data + 1);
  size_t off = 5;
  h.dcid_len = data[off++];
  if (h.dcid_len > len - off)
    return header_status::malformed;
  h.dcid = data + off;
  off += h.dcid_len;
  if (off >= len)
    return header_status::malformed;
  h.scid_len = data[off++];
  if (h.scid_len > len - off)
    return header_status::malformed;
  h.scid = data + off;
  off += h.scid_len;
  h.info = h.version == 0 ? nullptr : find_version(h.version);
  if (h.info == nullptr) {
    h.packet_len = len;
    return header_status::unknown_version;
  }
  if (h.dcid_len > max_cid_len || h.scid_len > max_cid_len || (h.first & 0x40) == 0)
    return header_status::malformed;
  h.type = type_of(*h.info, static_cast<uint8_t>(h.first >> 4));
  if (h.type == packet_type::retry) {
    h.packet_len = len;
    return header_status::ok;
  }
  if (h.type == packet_type::initial) {
    uint64_t token_len = 0;
    if (!read_varint(data, len, off, token_len) || !skip_bytes(len, off, token_len))
      return header_status::malformed;
    h.token_len = static_cast<size_t>(token_len);
  }
  uint64_t length = 0;
  if (!read_varint(data, len, off, length) || length > len - off)
    return header_status::malformed;
  h.pn_offset = off;
  h.packet_len = off + static_cast<size_t>(length);
  return header_status::ok;
}

open_status open_initial(const uint8_t* packet, const long_header& h, const initial_keys& keys,
                         int64_t largest_pn, opened_packet& out) {
  // The sample starts 4 bytes after the packet number's start (RFC 9001 §5.4.2).
  if (h.pn_offset + 4 + sample_len > h.packet_len)
    return open_status::too_short;
  std::array<uint8_t, 5> mask{};
  if (!header_mask(keys.hp, packet + h.pn_offset + 4, mask))
    return open_status::crypto_fail;
  const uint8_t first = static_cast<uint8_t>(packet[0] ^ (mask[0] & 0x0f));
  const uint8_t pn_len = static_cast<uint8_t>((first & 3) + 1);
  const size_t hdr_len = h.pn_offset + pn_len;
  out.header.assign(packet, packet + hdr_len);
  out.header[0] = first;
  uint64_t truncated = 0;
  for (size_t i = 0; i < pn_len; ++i) {
    out.header[h.pn_offset + i] ^= mask[1 + i];
    truncated = (truncated << 8) | out.header[h.pn_offset + i];
  }
  out.pn_len = pn_len;
  out.packet_number = decode_packet_number(largest_pn, truncated, 8u * pn_len);
  const size_t ct_len = h.packet_len - hdr_len;
  if (ct_len < tag_len)
    return open_status::too_short;
  out.payload.resize(ct_len - tag_len);
  if (!aead_open(keys, out.packet_number, out.header.data(), out.header.size(), packet + hdr_len,
                 ct_len, out.payload.data()))
    return open_status::crypto_fail;
  return open_status::ok;
}

frames_status collect_crypto_frames(const uint8_t* p, size_t len, std::vector<crypto_frame>& out,
                                    size_t max_frames) {
  size_t off = 0;
  while (off < len) {
    if (p[off] == 0x00) { // PADDING: runs of zero bytes
      ++off;
      continue;
    }
    uint64_t type = 0;
    if (!read_varint(p, len, off, type))
      return frames_status::malformed;
    switch (type) {
    case 0x01: // PING
      break;
    case 0x02:   // ACK
    case 0x03: { // ACK with ECN counts
      uint64_t ranges = 0;
      // Largest Acknowledged, ACK Delay, ACK Range Count, First ACK Range
      if (!skip_varints(p, len, off, 2) || !read_varint(p, len, off, ranges) ||
          !skip_varints(p, len, off, 1))
        return frames_status::malformed;
      // Every range is two varints of at least one byte each.
      if (ranges > (len - off) / 2)
        return frames_status::malformed;
      if (!skip_varints(p, len, off, static_cast<size_t>(ranges) * 2))
        return frames_status::malformed;
      if (type == 0x03 && !skip_varints(p, len, off, 3))
        return frames_status::malformed;
      break;
    }
    case 0x06: { // CRYPTO
      uint64_t offset = 0, n = 0;
      if (!read_varint(p, len, off, offset) || !read_varint(p, len, off, n) || n > len - off)
        return frames_status::malformed;
      if (out.size() >= max_frames)
        return frames_status::malformed;
      out.push_back(crypto_frame{offset, p + off, static_cast<size_t>(n)});
      off += static_cast<size_t>(n);
      break;
    }
    case 0x1c:   // CONNECTION_CLOSE (transport): code, frame type, reason
    case 0x1d: { // CONNECTION_CLOSE (application): code, reason
      uint64_t reason = 0;
      if (!skip_varints(p, len, off, type == 0x1c ? 2 : 1) || !read_varint(p, len, off, reason) ||
          !skip_bytes(len, off, reason))
        return frames_status::malformed;
      break;
    }
    default: // no other frame is allowed in an Initial (RFC 9000 §12.4)
      return frames_status::malformed;
    }
  }
  return frames_status::ok;
}

bool crypto_stream::add(uint64_t offset, const uint8_t* data, size_t len) {
  if (offset >= max_bytes_)
    return len == 0;
  const size_t begin = static_cast<size_t>(offset);
  bool refused = false;
  if (len > max_bytes_ - begin) {
    len = max_bytes_ - begin;
    refused = true;
  }
  if (len == 0)
    return !refused;
  const size_t end = begin + len;

  // The merged range list if this frame is taken.
  std::vector<std::pair<size_t, size_t>> merged;
  merged.reserve(ranges_.size() + 1);
  bool placed = false;
  size_t nb = begin, ne = end;
  for (const auto& r : ranges_) {
    if (r.second < nb) {
      merged.push_back(r);
    } else if (r.first > ne) {
      if (!placed) {
        merged.emplace_back(nb, ne);
        placed = true;
      }
      merged.push_back(r);
    } else { // overlapping or adjacent: absorb
      nb = std::min(nb, r.first);
      ne = std::max(ne, r.second);
    }
  }
  if (!placed)
    merged.emplace_back(nb, ne);
  if (merged.size() > max_ranges_)
    return false;

  if (buf_.size() < end)
    buf_.resize(end, '\0');
  // Copy only the bytes no earlier frame supplied (first copy wins).
  size_t pos = begin;
  for (const auto& r : ranges_) {
    if (pos >= end)
      break;
    if (r.second <= pos)
      continue;
    if (r.first > pos) {
      const size_t stop = std::min(end, r.first);
      std::memcpy(&buf_[pos], data + (pos - begin), stop - pos);
    }
    pos = std::max(pos, r.second);
  }
  if (pos < end)
    std::memcpy(&buf_[pos], data + (pos - begin), end - pos);
  ranges_.swap(merged);
  return !refused;
}

size_t crypto_stream::first_message_len() const {
  if (contiguous() < 4)
    return 0;
  const auto* p = data();
  return 4 + ((size_t{p[1]} << 16) | (size_t{p[2]} << 8) | p[3]);
}

} // namespace metaprobe::quic
