// SPDX-License-Identifier: Apache-2.0
#include "parsers/common/redetect.hpp"

namespace metaprobe {

stream_redetector::stream_redetector(const candidates& protocols, size_t max_bytes,
                                     uint32_t max_probes, uint32_t max_solo)
  : protocols_(protocols), max_bytes_(max_bytes ? max_bytes : 1), max_probes_(max_probes),
    max_solo_(max_solo) {}

stream_redetector::candidates
stream_redetector::stream_candidates(const std::vector<protocol_entry>& registry) {
  candidates out;
  for (const protocol_entry& e : registry)
    if (e.probe && e.make_stream)
      out.push_back(&e);
  return out;
}

stream_redetector::verdict stream_redetector::add(stream_piece piece) {
  if (verdict_ != verdict::pending)
    return verdict_;
  side& s = sides_[static_cast<size_t>(piece.dir) & 1];
  const direction dir = piece.dir;
  if (piece.gap > 0) {
    s.broken = true;
    s.seen = true;
    pieces_.push_back(std::move(piece));
    check_dead();
    return verdict_;
  }
  if (piece.bytes.empty())
    return verdict_;
  size_t take = piece.bytes.size();
  if (held_ + take > max_bytes_) {
    take = max_bytes_ - held_;
    piece.bytes.resize(take);
  }
  held_ += take;
  const bool later = s.seen; // not the direction's first bytes
  s.seen = true;
  if (!s.broken)
    s.start.insert(s.start.end(), piece.bytes.begin(), piece.bytes.end());
  pieces_.push_back(std::move(piece));
  const bool full = held_ >= max_bytes_;
  const int d = static_cast<int>(dir) & 1;
  if (last_dir_ >= 0 && last_dir_ != d) {
    // A turn: what the other side sent before it is likely a whole message.
    side& o = sides_[static_cast<size_t>(last_dir_)];
    if (!o.broken && o.start.size() > o.probed_at)
      probe(reverse(dir), false);
  }
  last_dir_ = d;
  if (verdict_ == verdict::pending && !s.broken && (s.start.size() >= 2 * s.probed_at || full))
    probe(dir, full);
  if (verdict_ == verdict::pending && later && solo_ < max_solo_)
    probe_alone(pieces_.back());
  check_dead();
  if (verdict_ == verdict::pending && full) {
    // Nothing accepted what the bound allows to hold: the other side gets
    // its last chance too.
    probe(reverse(dir), true);
    if (verdict_ == verdict::pending) {
      verdict_ = verdict::undetected;
      reason_ = give_up::overflow;
    }
  }
  return verdict_;
}

stream_redetector::verdict stream_redetector::finish() {
  if (verdict_ != verdict::pending)
    return verdict_;
  probe(direction::client_to_server, true);
  if (verdict_ == verdict::pending)
    probe(direction::server_to_client, true);
  if (verdict_ == verdict::pending) {
    verdict_ = verdict::undetected;
    reason_ = give_up::ended;
  }
  return verdict_;
}

void stream_redetector::probe(direction dir, bool last) {
  side& s = sides_[static_cast<size_t>(dir) & 1];
  if (verdict_ != verdict::pending || s.broken || s.start.empty())
    return;
  if (!last && s.start.size() == s.probed_at)
    return;
  if (max_probes_ && probes_ >= max_probes_) {
    verdict_ = verdict::undetected;
    reason_ = give_up::probes;
    return;
  }
  ++probes_;
  s.probed_at = s.start.size();
  for (const protocol_entry* e : protocols_) {
    if (!e->probe)
      continue;
    if (e->probe(s.start.data(), s.start.size(), dir)) {
      verdict_ = verdict::detected;
      detected_ = e;
      // The probe copies are no longer needed; the pieces are replayed.
      sides_[0].start = {};
      sides_[1].start = {};
      return;
    }
  }
}

void stream_redetector::probe_alone(const stream_piece& piece) {
  ++solo_;
  const auto* data = reinterpret_cast<const uint8_t*>(piece.bytes.data());
  for (const protocol_entry* e : protocols_) {
    if (!e->probe || !e->probe(data, piece.bytes.size(), piece.dir))
      continue;
    verdict_ = verdict::detected;
    detected_ = e;
    resynced_ = true;
    sides_[0].start = {};
    sides_[1].start = {};
    // What came before is not a start the parser can use: gaps.
    for (size_t i = 0; i + 1 < pieces_.size(); ++i) {
      stream_piece& p = pieces_[i];
      if (p.gap == 0) {
        p.gap = p.bytes.size();
        p.bytes = {};
      }
    }
    return;
  }
}

void stream_redetector::check_dead() {
  if (verdict_ != verdict::pending)
    return;
  // Both starts lost and no piece may be probed alone any more.
  if (sides_[0].broken && sides_[1].broken && solo_ >= max_solo_) {
    verdict_ = verdict::undetected;
    reason_ = give_up::gaps;
  }
}

size_t stream_redetector::memory_bytes() const {
  size_t n = sizeof(*this) + pieces_.capacity() * sizeof(stream_piece);
  for (const auto& p : pieces_)
    n += p.bytes.capacity();
  for (const auto& s : sides_)
    n += s.start.capacity();
  return n;
}

} // namespace metaprobe
