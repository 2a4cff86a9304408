// SPDX-License-Identifier: Apache-2.0
#pragma once
// Reassembly of one direction of a TCP connection into an in-order byte
// stream.
//
// Sequence numbers are mapped to 64-bit stream offsets (offset 0 is the byte
// after the SYN, or the first byte of the first data segment seen when the
// connection was picked up mid-stream), so wraparound of the 32-bit sequence
// space is invisible past the mapping: a segment is placed relative to the
// next expected byte by the signed 32-bit difference of their sequence
// numbers (segments more than 2 GiB ahead or behind are misplaced, as in TCP
// itself).
//
// Delivery (through a tcp_stream_sink, synchronously inside segment() and
// flush()):
//   - in-order bytes are delivered exactly once. Bytes of the segment being
//     fed are reported in place (pointer into the caller's buffer: zero
//     copy, `buffered` = false); bytes that had to wait in the out-of-order
//     buffer are reported from the stream's own storage (`buffered` = true;
//     the pointer is valid only during the callback, copy it).
//   - overlaps are trimmed: a byte already delivered or buffered is never
//     delivered again (the first copy received wins for buffered bytes; a
//     segment that is in order when it arrives is delivered whole, and the
//     buffered bytes it covers are dropped).
//   - a segment with payload whose whole range was already delivered or is
//     already buffered is a retransmission: dropped and counted.
//   - out-of-order segments wait in a per-direction buffer bounded by
//     `max_ooo_bytes` bytes and `max_ooo_segments` pieces. When a segment
//     does not fit, the oldest hole is declared a gap (on_gap) and the
//     buffered data after it is delivered, until the segment fits or is in
//     order (`limit_drops` counts the segments that forced this).
//   - flush() (the flow ends) declares every remaining hole a gap and
//     delivers the buffered data after it; when a FIN was seen beyond the
//     last byte delivered, the missing tail up to the FIN is a gap too.
//   - SYN: syn(isn) sets the initial sequence; data carried in the SYN is
//     fed as a segment at isn + 1. A FIN consumes one sequence number: it
//     ends the stream at its sequence (recorded, see fin_seen()). RST is the
//     flow's business (the classifier ends the flow and calls flush()).
//   - no SYN seen: the first segment with payload starts the stream
//     (mid-stream pickup); bytes before it are never reported. Except a
//     lone one-byte segment (no FIN): an idle connection picked up mid-stream
//     very often shows a TCP keep-alive probe first, and a probe carries one
//     byte at (next expected - 1), a byte already acknowledged (RFC 1122
//     4.2.3.6; some stacks send zero bytes, which never start a stream).
//     Delivering it would glue a garbage byte in front of the next message
//     ("\0GET / ..."). So the byte is held: when the next segment with
//     payload starts right after it, or repeats it, it was a probe (counted in
//     `keepalives`, never delivered) and the stream starts at the next
//     segment; any other segment starts the stream at the held byte, which
//     is then delivered first (`buffered` = true). A stream that ends with
//     only the held byte delivers nothing. The cost: a genuine one-byte write
//     that happens to be the first segment seen of a picked-up connection
//     and is directly followed by more data is dropped, mid-message anyway.
//   - keep-alive on a started stream: a one-byte segment (no FIN) that ends
//     exactly at the next expected byte is a probe: not delivered, counted
//     in `keepalives` (not `retransmitted`), result `keepalive`.
//   - a segment cut by the capture's snap length (`cut` bytes on the wire
//     beyond the `len` captured) occupies its whole sequence range; the
//     missing tail is reported as a gap when the stream reaches it.
//
// In "track only" mode (set_store(false)) out-of-order segments are recorded
// as ranges without copying their bytes, and buffered deliveries pass a null
// pointer: the classifier uses this for flows that have no parser, to keep
// counting retransmissions and gaps cheaply.
//
// Limits: every stream buffers at most max_ooo_bytes bytes (storage is
// compacted in place, never larger than that) and max_ooo_segments pieces.
//
// Threading: a stream belongs to one flow of one shard. Options and counters
// are shared by all streams of a shard (pointers given at bind()).

#include <cstddef>
#include <cstdint>
#include <vector>

namespace metaprobe {

struct tcp_stream_options {
  uint32_t max_ooo_bytes = 64 * 1024;   // bytes buffered per direction
  uint32_t max_ooo_segments = 64;       // buffered pieces per direction
};

// Counted per segment (in_order, out_of_order, retransmitted, limit_drops)
// or per declared gap (gaps, bytes_gapped).
struct tcp_stream_counters {
  uint64_t in_order = 0;       // segments delivered on arrival (possibly trimmed)
  uint64_t out_of_order = 0;   // segments buffered
  uint64_t retransmitted = 0;  // payload segments whose whole range was seen before
  uint64_t gaps = 0;           // holes declared lost
  uint64_t bytes_gapped = 0;   // bytes in those holes
  uint64_t limit_drops = 0;    // segments that hit an out-of-order limit and forced a gap
  uint64_t keepalives = 0;     // one-byte keep-alive probes (never delivered)

  void add(const tcp_stream_counters& o) {
    in_order += o.in_order;
    out_of_order += o.out_of_order;
    retransmitted += o.retransmitted;
    gaps += o.gaps;
    bytes_gapped += o.bytes_gapped;
    limit_drops += o.limit_drops;
    keepalives += o.keepalives;
  }
};

// Receives a stream's output. `seq` is the TCP sequence number of the first
// byte (data) or of the first lost byte (gap).
class tcp_stream_sink {
public:
  virtual void on_data(uint32_t seq, const uint8_t* data, uint32_t len, bool buffered) = 0;
  virtual void on_gap(uint32_t seq, uint32_t len) = 0;

protected:
  ~tcp_stream_sink() = default;
};

// What segment() did with a segment.
enum class segment_result : uint8_t {
  empty,          // no payload (or not started: nothing to place)
  in_order,       // delivered (after trimming any part already delivered)
  out_of_order,   // buffered (at least one new byte)
  retransmission, // every byte already delivered or buffered: dropped
  keepalive,      // a one-byte keep-alive probe: dropped
  held,           // mid-stream pickup: a lone one-byte segment waits (see above)
};

class tcp_stream {
public:
  tcp_stream() = default;
  tcp_stream(const tcp_stream_options* opts, tcp_stream_counters* counters) {
    bind(opts, counters);
  }

  // Options and counters used from now on (either may be null: defaults /
  // not counted). They must outlive the stream.
  void bind(const tcp_stream_options* opts, tcp_stream_counters* counters) {
    opts_ = opts;
    counters_ = counters;
  }

  // Back to the initial state (for a reused flow slot). Releases buffer
  // storage above a few KiB, or all of it when !keep_storage.
  void reset(bool keep_storage = true);

  // Copy out-of-order bytes (true, default) or track ranges only (false).
  void set_store(bool store) { store_ = store; }
  bool store() const { return store_; }

  // A SYN of this direction. Sets the initial sequence number unless the
  // stream already consumed or buffered data.
  void syn(uint32_t isn);

  // One segment of this direction: payload [data, data+len) at sequence
  // `seq`, followed by `cut` payload bytes the capture did not keep; `fin`
  // when the FIN flag is set (the FIN sits at seq + len + cut). `data` may
  // be null only in track-only mode.
  segment_result segment(uint32_t seq, const uint8_t* data, uint32_t len, bool fin,
                         tcp_stream_sink& sink, uint32_t cut = 0);

  // End of the flow: remaining holes become gaps, buffered data is
  // delivered, a missing tail before a seen FIN becomes a gap.
  void flush(tcp_stream_sink& sink);

  bool started() const { return started_; }
  bool syn_seen() const { return syn_seen_; }
  bool fin_seen() const { return fin_seen_; }
  // Sequence number of the next byte expected (valid once started()).
  uint32_t next_seq() const { return seq_of(next_); }
  // Bytes delivered or declared lost so far.
  uint64_t consumed() const { return next_; }
  uint32_t buffered_bytes() const { return live_bytes_; }
  size_t buffered_segments() const { return segs_.size(); }
  // Heap bytes the stream holds (buffer storage, including what reset()
  // kept for reuse).
  size_t memory_bytes() const {
    return buf_.capacity() + segs_.capacity() * sizeof(piece);
  }

private:
  struct piece {
    uint64_t start;
    uint32_t len;
    uint32_t off; // into buf_, or no_data / lost_data
    uint64_t end() const { return start + len; }
    bool stored() const { return off < lost_data; }
  };
  static constexpr uint32_t no_data = 0xffffffffu;   // track-only: bytes not kept
  static constexpr uint32_t lost_data = 0xfffffffeu; // cut by the capture: a gap

  uint32_t seq_of(uint64_t abs) const { return static_cast<uint32_t>(base_ + abs); }
  int64_t to_abs(uint32_t seq) const {
    return static_cast<int64_t>(next_) + static_cast<int32_t>(seq - seq_of(next_));
  }
  uint32_t max_bytes() const;
  uint32_t max_segments() const;
  // Deliver buffered pieces that became in order.
  void drain(tcp_stream_sink& sink);
  void declare_gap(uint64_t upto, tcp_stream_sink& sink);
  // Ranges of [a, e) not yet buffered; false when none (retransmission).
  bool uncovered(uint64_t a, uint64_t e, uint32_t& bytes, uint32_t& pieces) const;
  void insert(uint64_t a, uint64_t e, const uint8_t* data, bool lost);
  void add_piece(size_t pos, uint64_t start, uint32_t len, const uint8_t* data, bool lost);
  void compact();
  // Mid-stream pickup: start the stream at `seq` (offset 0).
  void pick_up(uint32_t seq);

  const tcp_stream_options* opts_ = nullptr;
  tcp_stream_counters* counters_ = nullptr;
  uint32_t base_ = 0;      // sequence number of stream offset 0
  uint64_t next_ = 0;      // stream offset of the next byte expected
  uint64_t fin_abs_ = 0;   // stream offset of the FIN
  std::vector<piece> segs_; // sorted by start, non-overlapping, all > next_
  std::vector<uint8_t> buf_;
  uint32_t live_bytes_ = 0;
  bool started_ = false;
  bool syn_seen_ = false;
  bool fin_seen_ = false;
  bool store_ = true;
  bool held_ = false;      // a one-byte first segment waits (pickup only)
  bool held_lost_ = false; // the held byte was cut by the capture
  uint8_t held_byte_ = 0;
  uint32_t held_seq_ = 0;
};

} // namespace metaprobe
