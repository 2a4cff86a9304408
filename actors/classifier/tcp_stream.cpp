// SPDX-License-Identifier: Apache-2.0
#include "classifier/tcp_stream.hpp"

#include <algorithm>
#include <cstring>

namespace metaprobe {

namespace {
const tcp_stream_options default_options{};
} // namespace

uint32_t tcp_stream::max_bytes() const {
  return (opts_ ? opts_ : &default_options)->max_ooo_bytes;
}

uint32_t tcp_stream::max_segments() const {
  return (opts_ ? opts_ : &default_options)->max_ooo_segments;
}

void tcp_stream::reset(bool keep_storage) {
  base_ = 0;
  next_ = 0;
  fin_abs_ = 0;
  segs_.clear();
  buf_.clear();
  if (!keep_storage || buf_.capacity() > 4096)
    std::vector<uint8_t>().swap(buf_);
  if (!keep_storage || segs_.capacity() > 16)
    std::vector<piece>().swap(segs_);
  live_bytes_ = 0;
  started_ = false;
  syn_seen_ = false;
  fin_seen_ = false;
  store_ = true;
  held_ = false;
  held_lost_ = false;
  held_byte_ = 0;
  held_seq_ = 0;
}

void tcp_stream::pick_up(uint32_t seq) {
  base_ = seq;
  next_ = 0;
  started_ = true;
}

void tcp_stream::syn(uint32_t isn) {
  if (started_ && (next_ > 0 || !segs_.empty()))
    return; // data already placed: a late or bogus SYN changes nothing
  base_ = isn + 1;
  next_ = 0;
  started_ = true;
  syn_seen_ = true;
  held_ = false; // the SYN fixes the start; a held pickup byte is forgotten
}

segment_result tcp_stream::segment(uint32_t seq, const uint8_t* data, uint32_t len, bool fin,
                                   tcp_stream_sink& sink, uint32_t cut) {
  uint64_t total = uint64_t{len} + cut;
  if (!started_) {
    if (total == 0)
      return segment_result::empty;
    if (!held_) {
      if (total == 1 && !fin) { // maybe a keep-alive probe: wait for the next segment
        held_ = true;
        held_seq_ = seq;
        held_lost_ = len == 0;
        held_byte_ = len && data ? data[0] : 0;
        return segment_result::held;
      }
      pick_up(seq);
    } else if (seq == held_seq_ && total == 1 && !fin) {
      if (counters_) // the probe again (or its retransmission)
        ++counters_->keepalives;
      return segment_result::keepalive;
    } else if (seq == held_seq_ + 1) {
      held_ = false; // data right after the held byte: that was a probe
      if (counters_)
        ++counters_->keepalives;
      pick_up(seq);
    } else {
      held_ = false; // the held byte was data: it starts the stream
      pick_up(held_seq_);
      if (held_lost_) {
        declare_gap(1, sink);
      } else {
        next_ = 1;
        uint8_t b = held_byte_;
        sink.on_data(held_seq_, store_ ? &b : nullptr, 1, true);
      }
    }
  }
  int64_t a = to_abs(seq);
  int64_t e = a + static_cast<int64_t>(total);
  if (fin && !fin_seen_ && e >= 0) {
    fin_seen_ = true;
    fin_abs_ = static_cast<uint64_t>(e);
  }
  if (total == 0)
    return segment_result::empty;
  if (e <= static_cast<int64_t>(next_)) {
    if (total == 1 && e == static_cast<int64_t>(next_) && !fin) {
      if (counters_) // keep-alive probe: the byte before the next expected one
        ++counters_->keepalives;
      return segment_result::keepalive;
    }
    if (counters_)
      ++counters_->retransmitted;
    return segment_result::retransmission;
  }
  int64_t cap_end = a + len; // end of the captured bytes
  bool limited = false;
  for (;;) {
    if (e <= static_cast<int64_t>(next_)) {
      // Only reachable after a forced skip delivered everything we carry.
      if (counters_)
        ++counters_->retransmitted;
      return segment_result::retransmission;
    }
    if (a <= static_cast<int64_t>(next_)) {
      if (counters_)
        ++counters_->in_order;
      if (cap_end > static_cast<int64_t>(next_)) {
        uint64_t skip = next_ - static_cast<uint64_t>(a);
        uint32_t n = static_cast<uint32_t>(static_cast<uint64_t>(cap_end) - next_);
        uint32_t at = seq_of(next_);
        next_ = static_cast<uint64_t>(cap_end);
        sink.on_data(at, data ? data + skip : nullptr, n, false);
      }
      declare_gap(static_cast<uint64_t>(e), sink); // the cut tail, if any
      drain(sink);
      return segment_result::in_order;
    }
    uint64_t ua = static_cast<uint64_t>(a), ue = static_cast<uint64_t>(e);
    uint64_t uc = static_cast<uint64_t>(cap_end);
    uint32_t bytes = 0, pieces = 0;
    if (!uncovered(ua, ue, bytes, pieces)) {
      if (counters_)
        ++counters_->retransmitted;
      return segment_result::retransmission;
    }
    if (cut && len)
      ++pieces; // the captured / cut boundary may split a piece
    if (uint64_t{live_bytes_} + bytes <= max_bytes() &&
        segs_.size() + pieces <= max_segments()) {
      insert(ua, uc, data, false);
      insert(uc, ue, nullptr, true);
      if (counters_)
        ++counters_->out_of_order;
      return segment_result::out_of_order;
    }
    // Does not fit: give up the oldest hole and retry.
    if (!limited) {
      limited = true;
      if (counters_)
        ++counters_->limit_drops;
    }
    uint64_t hole_end = segs_.empty() ? ua : std::min(ua, segs_.front().start);
    declare_gap(hole_end, sink);
    drain(sink);
  }
}

void tcp_stream::flush(tcp_stream_sink& sink) {
  if (!started_)
    return;
  while (!segs_.empty()) {
    declare_gap(segs_.front().start, sink);
    drain(sink);
  }
  if (fin_seen_ && fin_abs_ > next_)
    declare_gap(fin_abs_, sink);
}

void tcp_stream::drain(tcp_stream_sink& sink) {
  while (!segs_.empty() && segs_.front().start <= next_) {
    piece p = segs_.front();
    segs_.erase(segs_.begin());
    live_bytes_ -= p.len;
    if (p.end() <= next_)
      continue; // covered by an in-order segment delivered whole
    if (p.off == lost_data) {
      declare_gap(p.end(), sink);
      continue;
    }
    uint64_t skip = next_ - p.start;
    uint32_t at = seq_of(next_);
    next_ = p.end();
    const uint8_t* ptr = p.stored() ? buf_.data() + p.off + skip : nullptr;
    sink.on_data(at, ptr, static_cast<uint32_t>(p.len - skip), true);
  }
  if (segs_.empty())
    buf_.clear();
}

void tcp_stream::declare_gap(uint64_t upto, tcp_stream_sink& sink) {
  if (upto <= next_)
    return;
  uint64_t len = upto - next_;
  uint32_t at = seq_of(next_);
  next_ = upto;
  if (counters_) {
    ++counters_->gaps;
    counters_->bytes_gapped += len;
  }
  // A hole is below 2^31 bytes: offsets come from signed 32-bit differences.
  sink.on_gap(at, static_cast<uint32_t>(len));
}

bool tcp_stream::uncovered(uint64_t a, uint64_t e, uint32_t& bytes, uint32_t& pieces) const {
  uint64_t cur = a;
  uint64_t total = 0;
  pieces = 0;
  for (const auto& s : segs_) {
    if (s.end() <= cur)
      continue;
    if (s.start >= e)
      break;
    if (s.start > cur) {
      total += s.start - cur;
      ++pieces;
    }
    cur = std::max(cur, s.end());
    if (cur >= e)
      break;
  }
  if (cur < e) {
    total += e - cur;
    ++pieces;
  }
  bytes = static_cast<uint32_t>(total);
  return total > 0;
}

void tcp_stream::insert(uint64_t a, uint64_t e, const uint8_t* data, bool lost) {
  if (a >= e)
    return;
  size_t i = 0;
  while (i < segs_.size() && segs_[i].end() <= a)
    ++i;
  uint64_t cur = a;
  while (cur < e) {
    if (i < segs_.size() && segs_[i].start <= cur) {
      cur = std::max(cur, segs_[i].end());
      ++i;
      continue;
    }
    uint64_t stop = i < segs_.size() ? std::min(e, segs_[i].start) : e;
    add_piece(i, cur, static_cast<uint32_t>(stop - cur), data ? data + (cur - a) : nullptr, lost);
    ++i;
    cur = stop;
  }
}

void tcp_stream::add_piece(size_t pos, uint64_t start, uint32_t len, const uint8_t* data,
                           bool lost) {
  piece p{start, len, lost ? lost_data : no_data};
  if (!lost && store_ && data) {
    if (buf_.size() + len > max_bytes())
      compact();
    if (buf_.capacity() < buf_.size() + len) {
      size_t want = std::max(buf_.size() + len, std::min<size_t>(max_bytes(), buf_.capacity() * 2));
      buf_.reserve(std::max<size_t>(want, 1024));
    }
    p.off = static_cast<uint32_t>(buf_.size());
    buf_.insert(buf_.end(), data, data + len);
  }
  segs_.insert(segs_.begin() + static_cast<std::ptrdiff_t>(pos), p);
  live_bytes_ += len;
}

void tcp_stream::compact() {
  // Move stored pieces down in increasing offset order: the write position
  // never passes a piece not yet moved.
  uint32_t w = 0;
  int64_t last = -1;
  for (;;) {
    piece* best = nullptr;
    for (auto& s : segs_)
      if (s.stored() && static_cast<int64_t>(s.off) > last && (!best || s.off < best->off))
        best = &s;
    if (!best)
      break;
    last = best->off;
    if (best->off != w)
      std::memmove(buf_.data() + w, buf_.data() + best->off, best->len);
    best->off = w;
    w += best->len;
  }
  buf_.resize(w);
}

} // namespace metaprobe
