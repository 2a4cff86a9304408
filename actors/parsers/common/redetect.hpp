// SPDX-License-Identifier: Apache-2.0
#pragma once
// Detection on the accumulated first bytes of a stream. One path for every
// place where a TCP stream's protocol is looked for by its content:
//   - a new flow on a port no protocol claims (the classifier, before any
//     parser is attached: classifier_core.hpp step 4);
//   - the rest of a stream after an in-band hand-over (CONNECT 2xx, 101,
//     STARTTLS; parser.hpp handover_kind) in the parser stage.
// The bytes of both directions accumulate, in arrival order, until a probe
// of the candidates accepts the start of one direction's bytes; the caller
// then replays them, in the same order, into a parser of that protocol. So
// a ClientHello split into 1-byte segments, or "GE" + "T / HTTP/1.1...", is
// found exactly as a whole one, and no byte held is lost to the parser.
//
// When a direction is probed (cost linear in the bytes seen): when its bytes
// have at least doubled since its last probe (1, 2, 4, ... bytes), and once
// more when the other direction starts to send after it (a turn: its message
// is likely complete) if it got bytes since; so the probes read at most
// about twice the bytes held plus one prefix per turn, and `max_probes`
// bounds the turns too. The probes themselves look at a bounded prefix.
//
// Mid-stream pick-up (`max_solo` > 0, the classifier's use): a flow seen
// from its middle (the capture started late, or a gap) does not start with
// a message, so besides the accumulated start every later piece of a
// direction is also probed alone, up to `max_solo` pieces. When one is
// accepted, the pieces before it become gaps (their bytes are not a
// message start the parser could use) and it and what follows are replayed.
//
// Bounds: at most `max_bytes` bytes are held (both directions together).
// When they are reached the probes run once more on what is held; if none
// accepts, the stream is given up (verdict undetected, reason overflow).
// `max_probes` (0: no bound) probe runs in all: then reason probes. A gap
// before the first byte of a direction, or inside what it held, ends
// probing in that direction (its start is lost). When both directions
// cannot be probed any more, the verdict is undetected (reason gaps).
//
// Threading: plain C++, one instance per flow being detected, used by the
// thread that owns the flow. The candidate list outlives the instance.

#include <cstdint>
#include <vector>

#include "parsers/registry.hpp"

namespace metaprobe {

class stream_redetector {
public:
  enum class verdict : uint8_t { pending, detected, undetected };
  enum class give_up : uint8_t { none, overflow, gaps, ended, probes };
  using candidates = std::vector<const protocol_entry*>;

  static constexpr uint32_t default_max_probes = 32;

  // `protocols`: the probe candidates, in registry order (entries without a
  // probe are skipped). `max_bytes` > 0; `max_probes`: probe runs on the
  // accumulated starts (0 = no bound); `max_solo`: pieces probed alone
  // (0 = none).
  stream_redetector(const candidates& protocols, size_t max_bytes,
                    uint32_t max_probes = default_max_probes, uint32_t max_solo = 0);

  // The candidates of the parser stage's re-detection: every entry with a
  // probe and a stream parser, in registry order.
  static candidates stream_candidates(const std::vector<protocol_entry>& registry);

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
  // Heap bytes held, the detector itself included (memory budget).
  size_t memory_bytes() const;
  uint32_t probes_run() const { return probes_; }
  // Detected on a piece probed alone (mid-stream): what came before it is
  // replayed as gaps.
  bool resynced() const { return resynced_; }

private:
  struct side {
    std::vector<uint8_t> start; // the direction's first bytes, contiguous
    size_t probed_at = 0;       // start.size() at the last probe
    bool broken = false;        // a gap: the start is lost
    bool seen = false;          // bytes or a gap came in this direction
  };
  void probe(direction dir, bool last);
  void probe_alone(const stream_piece& piece);
  void check_dead();

  const candidates& protocols_;
  size_t max_bytes_;
  uint32_t max_probes_;
  uint32_t max_solo_;
  uint32_t probes_ = 0;
  uint32_t solo_ = 0;
  bool resynced_ = false;
  std::vector<stream_piece> pieces_;
  side sides_[2];
  size_t held_ = 0;
  int last_dir_ = -1; // direction of the last bytes added
  verdict verdict_ = verdict::pending;
  give_up reason_ = give_up::none;
  const protocol_entry* detected_ = nullptr;
};

} // namespace metaprobe
