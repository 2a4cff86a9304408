// SPDX-License-Identifier: Apache-2.0
#include "parsers/stage/redetect.hpp"

namespace metaprobe {

stream_redetector::stream_redetector(const std::vector<protocol_entry>& protocols,
                                     size_t max_bytes)
  : protocols_(protocols), max_bytes_(max_bytes ? max_bytes : 1) {}

stream_redetector::verdict stream_redetector::add(stream_piece piece) {
  if (verdict_ != verdict::pending)
    return verdict_;
  side& s = sides_[static_cast<size_t>(piece.dir) & 1];
  const direction dir = piece.dir;
  if (piece.gap > 0) {
    s.broken = true;
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
  if (!s.broken)
    s.start.insert(s.start.end(), piece.bytes.begin(), piece.bytes.end());
  pieces_.push_back(std::move(piece));
  const bool full = held_ >= max_bytes_;
  if (!s.broken && (s.start.size() >= 2 * s.probed_at || full))
    probe(dir, full);
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
  s.probed_at = s.start.size();
  for (const protocol_entry& e : protocols_) {
    if (!e.probe || !e.make_stream)
      continue;
    if (e.probe(s.start.data(), s.start.size(), dir)) {
      verdict_ = verdict::detected;
      detected_ = &e;
      // The probe copies are no longer needed; the pieces are replayed.
      sides_[0].start = {};
      sides_[1].start = {};
      return;
    }
  }
}

void stream_redetector::check_dead() {
  if (sides_[0].broken && sides_[1].broken && verdict_ == verdict::pending) {
    verdict_ = verdict::undetected;
    reason_ = give_up::gaps;
  }
}

} // namespace metaprobe
