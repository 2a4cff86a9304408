// SPDX-License-Identifier: Apache-2.0
#pragma once
// QUIC packet framing for Initial packets (RFC 9000 §16, §17.2, §17.2.2,
// §19, Appendix A.3; RFC 9001 §5.4): variable-length integers, the long
// header, header protection removal and payload decryption of one Initial,
// the frames an Initial may carry (PADDING, PING, ACK, CRYPTO,
// CONNECTION_CLOSE) and a bounded reassembly buffer for the CRYPTO stream.
// Plain functions over byte ranges: every read is bounds-checked, nothing
// is thrown, nothing is read past `len`.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "parsers/common/heap_bytes.hpp"
#include "parsers/quic/quic_crypto.hpp"

namespace metaprobe::quic {

// RFC 9000 §16. Returns false when the integer runs past `len`.
bool read_varint(const uint8_t* p, size_t len, size_t& off, uint64_t& value);

// RFC 9000 Appendix A.3: the full packet number from its `pn_nbits`-bit
// truncated form and the largest packet number seen so far in the space
// (-1: none yet).
uint64_t decode_packet_number(int64_t largest_pn, uint64_t truncated_pn, unsigned pn_nbits);

enum class header_status : uint8_t {
  ok,              // a long header of a known version (see find_version)
  not_long,        // short header (or no fixed bit): ends the coalesced packets
  unknown_version, // long header of another version (0 = Version Negotiation)
  malformed,       // lengths run past the datagram, CID longer than 20
};

struct long_header {
  uint8_t first = 0;              // first byte, still protected
  uint32_t version = 0;
  const version_info* info = nullptr;
  packet_type type = packet_type::initial;
  const uint8_t* dcid = nullptr;
  uint8_t dcid_len = 0;
  const uint8_t* scid = nullptr;
  uint8_t scid_len = 0;
  size_t token_len = 0;           // Initial only
  size_t pn_offset = 0;           // Initial / 0-RTT / Handshake: where the packet number starts
  size_t packet_len = 0;          // bytes of this packet in the datagram (whole datagram for
                                  // Retry and unknown versions)
};

// Reads the long header at data[0..len). For Initial, 0-RTT and Handshake
// packets of a known version, pn_offset and packet_len come from the
// Length field. For a long header of an unknown version, version and the
// connection IDs are filled (RFC 8999 invariants) and the status says so.
header_status parse_long_header(const uint8_t* data, size_t len, long_header& h);

enum class open_status : uint8_t {
  ok,          // header protection removed, payload authenticated and decrypted
  too_short,   // no room for the packet number + 16-byte sample, or no tag
  crypto_fail, // the AEAD tag did not verify (wrong keys, damaged or truncated packet)
};

struct opened_packet {
  uint64_t packet_number = 0;
  uint8_t pn_len = 0;
  std::vector<uint8_t> header;    // the unprotected header (AAD)
  std::vector<uint8_t> payload;   // plaintext frames
};

// Removes header protection and decrypts the Initial `h` (parsed from
// `packet`, which is packet_len bytes) with `keys`. `largest_pn` as for
// decode_packet_number. `out` keeps its buffers' capacity between calls.
open_status open_initial(const uint8_t* packet, const long_header& h, const initial_keys& keys,
                         int64_t largest_pn, opened_packet& out);

// One CRYPTO frame of a decrypted payload (points into the payload).
struct crypto_frame {
  uint64_t offset = 0;
  const uint8_t* data = nullptr;
  size_t len = 0;
};

enum class frames_status : uint8_t {
  ok,        // every frame decoded
  malformed, // a frame runs past the payload, or a frame type an Initial may not carry
};

// Walks the frames of a decrypted Initial payload: PADDING, PING, ACK
// (with or without ECN counts) and CONNECTION_CLOSE are skipped, CRYPTO
// frames are appended to `out` (at most max_frames; more is malformed).
// On malformed, the CRYPTO frames before the bad frame are in `out`.
frames_status collect_crypto_frames(const uint8_t* payload, size_t len,
                                    std::vector<crypto_frame>& out, size_t max_frames = 256);

// The client's CRYPTO stream at the Initial level, reassembled from frames
// arriving in any order, duplicated or overlapping (the first copy of a
// byte wins). Bounded: bytes at or past `max_bytes` and more than
// `max_ranges` separate holes are refused (add() returns false and the
// caller counts a limit hit).
class crypto_stream {
public:
  explicit crypto_stream(size_t max_bytes = 65536, size_t max_ranges = 64)
    : max_bytes_(max_bytes), max_ranges_(max_ranges) {}

  // False when (part of) the frame was refused by a limit; the part that
  // fits is still stored.
  bool add(uint64_t offset, const uint8_t* data, size_t len);

  // Heap bytes held (the parser's memory_bytes).
  size_t memory_bytes() const { return heap_bytes(buf_, ranges_); }

  // Bytes available from offset 0 without a hole.
  size_t contiguous() const {
    return ranges_.empty() || ranges_[0].first != 0 ? 0 : ranges_[0].second;
  }
  const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(buf_.data()); }

  // Bytes of the first TLS handshake message (4 + uint24 length) once its
  // header is in; 0 before.
  size_t first_message_len() const;
  // True when the whole first handshake message is contiguous.
  bool first_message_complete() const {
    const size_t n = first_message_len();
    return n > 0 && contiguous() >= n;
  }
  // True when the first message cannot fit within max_bytes.
  bool first_message_too_long() const { return first_message_len() > max_bytes_; }

  void clear() {
    buf_.clear();
    ranges_.clear();
  }
  size_t buffered() const { return buf_.size(); }

private:
  size_t max_bytes_;
  size_t max_ranges_;
  std::string buf_;                               // bytes [0, buf_.size()), holes zeroed
  std::vector<std::pair<size_t, size_t>> ranges_; // filled [begin, end), sorted, disjoint
};

} // namespace metaprobe::quic
