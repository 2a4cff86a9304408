// SPDX-License-Identifier: Apache-2.0
#pragma once
// Detection of the protocol a stream turns into after an in-band hand-over
// (CONNECT 2xx, 101, STARTTLS; parser.hpp handover_kind). One path for every
// hand-over and every inner protocol: the bytes of both directions
// accumulate, in arrival order, until a probe of the registry accepts the
// start of one direction's bytes; the stage then replays them, in the same
// order, into a new parser of that protocol. So an inner ClientHello split
// into 1-byte segments, or "GE" + "T / HTTP/1.1...", is found exactly as a
// whole one.
//
// Cost: linear in the bytes seen. A direction is probed again only when its
// bytes have at least doubled since its last probe (1, 2, 4, ... bytes), so
// the probes read at most twice the bytes held; the probes themselves look
// at a bounded prefix.
//
// Bounds: at most `max_bytes` bytes are held (both directions together).
// When they are reached the probes run once more on what is held; if none
// accepts, the stream is given up (verdict undetected, reason overflow).
// A gap before the first byte of a direction, or inside what it held, ends
// probing in that direction (its start is lost). When both directions
// cannot be probed any more, the verdict is undetected.
//
// Threading: plain C++, one instance per handed-over flow, used by the
// parser stage thread that owns the flow.

#include <cstdint>
#include <vector>

#include "parsers/registry.hpp"

namespace metaprobe {

class stream_redetector {
public:
  enum class verdict : uint8_t { pending, detected, undetected };
  enum class give_up : uint8_t { none, overflow, gaps, ended };

  // `protocols`: the probe candidates (entries with a probe and a stream
  // parser), in registry order. `max_bytes` > 0.
  stream_redetector(const std::vector<protocol_entry>& protocols, size_t max_bytes);

  // A piece of the stream (bytes or a gap) in arrival order.
  verdict add(stream_piece piece);
  // The flow ends: the probes run on what is held.
  verdict finish();

  verdict state() const { return verdict_; }
  give_up reason() const { return reason_; }
  // The accepted protocol (state detected).
  const protocol_entry* detected() const { return detected_; }
  // Everything held, in arrival order (state detected); empties the holder.
  std::vector<stream_piece> take_pieces() { return std::move(pieces_); }
  size_t held_bytes() const { return held_; }

private:
  struct side {
    std::vector<uint8_t> start; // the direction's first bytes, contiguous
    size_t probed_at = 0;       // start.size() at the last probe
    bool broken = false;        // a gap: the start is lost
  };
  void probe(direction dir, bool last);
  void check_dead();

  const std::vector<protocol_entry>& protocols_;
  size_t max_bytes_;
  std::vector<stream_piece> pieces_;
  side sides_[2];
  size_t held_ = 0;
  verdict verdict_ = verdict::pending;
  give_up reason_ = give_up::none;
  const protocol_entry* detected_ = nullptr;
};

} // namespace metaprobe
