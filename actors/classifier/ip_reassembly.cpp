// SPDX-License-Identifier: Apache-2.0
#include "classifier/ip_reassembly.hpp"

#include <algorithm>
#include <cstring>

namespace metaprobe {

namespace {

inline uint16_t rd16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
inline void wr16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

constexpr int max_ext_headers = 8; // as the decoder
constexpr uint32_t ip_max = 65535;

uint16_t ipv4_checksum(const uint8_t* h, uint32_t len) {
  uint32_t sum = 0;
  for (uint32_t i = 0; i + 1 < len; i += 2)
    sum += rd16(h + i);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

} // namespace

size_t ip_reassembler::key_hash::operator()(const key& k) const {
  uint64_t w[4];
  std::memcpy(w, k.src.data(), 16);
  std::memcpy(w + 2, k.dst.data(), 16);
  uint64_t h = fmix64(w[0] ^ (w[1] * 0x9e3779b97f4a7c15ULL));
  h = fmix64(h ^ w[2] ^ (w[3] * 0x87c37b91114253d5ULL));
  h = fmix64(h ^ (static_cast<uint64_t>(k.id) << 16) ^ (static_cast<uint64_t>(k.proto) << 8) ^
             k.family ^ k.tunnel);
  return static_cast<size_t>(h);
}

ip_reassembler::ip_reassembler(const ip_reassembly_limits& limits) : limits_(limits) {
  if (limits_.max_datagram_size > ip_max)
    limits_.max_datagram_size = ip_max;
  if (limits_.max_datagrams == 0)
    limits_.max_datagrams = 1;
  if (limits_.max_fragments == 0)
    limits_.max_fragments = 1;
}

bool ip_reassembler::parse(const decoded_packet& f, piece& p) const {
  if (f.data == nullptr || f.status != decode_status::ok || !f.is_fragment)
    return false;
  const uint32_t l3_len = f.l3_len;
  if (static_cast<uint32_t>(f.l3_off) + l3_len > f.cap_len)
    return false;
  const uint8_t* ip = f.data + f.l3_off;
  p.ip = ip;
  p.offset = f.frag_offset;
  p.more = f.more_fragments;
  p.k.id = f.frag_id;
  p.k.tunnel = f.tunnel.id;
  if (f.ip_version == 4) {
    if (l3_len < 20 || (ip[0] >> 4) != 4)
      return false;
    const uint32_t ihl = static_cast<uint32_t>(ip[0] & 0x0f) * 4;
    const uint32_t total = rd16(ip + 2);
    if (ihl < 20 || total < ihl || total > l3_len)
      return false; // capture cut the fragment data
    p.head_len = ihl;
    p.bytes = ip + ihl;
    p.len = total - ihl;
    p.k.proto = ip[9];
    p.k.family = 4;
    std::memcpy(p.k.src.data(), ip + 12, 4);
    std::memcpy(p.k.dst.data(), ip + 16, 4);
    return true;
  }
  if (f.ip_version != 6 || l3_len < 40 || (ip[0] >> 4) != 6)
    return false;
  const uint32_t total = 40 + static_cast<uint32_t>(rd16(ip + 4));
  if (total > l3_len)
    return false;
  uint8_t nh = ip[6];
  uint32_t nh_pos = 6;
  uint32_t pos = 40;
  for (int n = 0; n <= max_ext_headers; ++n) {
    uint32_t hlen;
    switch (nh) {
    case 0:
    case 43:
    case 60:
      if (pos + 2 > total)
        return false;
      hlen = (static_cast<uint32_t>(ip[pos + 1]) + 1) * 8;
      break;
    case 51:
      if (pos + 2 > total)
        return false;
      hlen = (static_cast<uint32_t>(ip[pos + 1]) + 2) * 4;
      break;
    case 44:
      if (pos + 8 > total)
        return false;
      p.head_len = pos;
      p.nh_pos = nh_pos;
      p.frag_nh = ip[pos];
      p.bytes = ip + pos + 8;
      p.len = total - (pos + 8);
      p.k.proto = ip[pos];
      p.k.family = 6;
      std::memcpy(p.k.src.data(), ip + 8, 16);
      std::memcpy(p.k.dst.data(), ip + 24, 16);
      return true;
    default:
      return false; // no fragment header
    }
    if (pos + hlen > total)
      return false;
    nh = ip[pos];
    nh_pos = pos;
    pos += hlen;
  }
  return false;
}

void ip_reassembler::erase(list_t::iterator it) {
  buffered_ -= footprint(*it);
  index_.erase(it->k);
  order_.erase(it);
}

void ip_reassembler::abandon(datagram& d) {
  buffered_ -= footprint(d);
  d.abandoned = true;
  std::vector<uint8_t>().swap(d.data);
  std::vector<uint8_t>().swap(d.head);
  std::vector<range>().swap(d.frags);
}

// Frees buffered bytes (oldest datagrams other than `keep` first) until `need`
// more bytes fit. False when that is impossible.
bool ip_reassembler::make_room(size_t need, const datagram* keep) {
  auto it = order_.begin();
  while (buffered_ + need > limits_.max_buffered_bytes && it != order_.end()) {
    if (&*it == keep || footprint(*it) == 0) {
      ++it;
      continue;
    }
    ++counters_.limit_bytes;
    auto victim = it++;
    erase(victim);
  }
  return buffered_ + need <= limits_.max_buffered_bytes;
}

bool ip_reassembler::complete(const datagram& d) const {
  if (!d.have_head || !d.have_last)
    return false;
  uint32_t covered = 0; // frags are sorted by begin
  for (const range& r : d.frags) {
    if (r.begin > covered)
      return false;
    covered = std::max(covered, r.end);
  }
  return covered >= d.total;
}

void ip_reassembler::build(const datagram& d, std::vector<uint8_t>& out) const {
  const uint32_t hl = static_cast<uint32_t>(d.head.size());
  out.resize(hl + d.total);
  std::memcpy(out.data(), d.head.data(), hl);
  if (d.total)
    std::memcpy(out.data() + hl, d.data.data(), d.total);
  uint8_t* ip = out.data();
  if (d.k.family == 4) {
    wr16(ip + 2, hl + d.total);
    wr16(ip + 6, rd16(ip + 6) & 0x4000); // keep DF; clear reserved, MF, offset
    wr16(ip + 10, 0);
    wr16(ip + 10, ipv4_checksum(ip, hl));
  } else {
    wr16(ip + 4, hl - 40 + d.total);
    ip[d.nh_pos] = d.frag_nh;
  }
}

bool ip_reassembler::add(const decoded_packet& frag, std::vector<uint8_t>& out_ip_packet) {
  ++counters_.fragments;
  piece p;
  if (!parse(frag, p)) {
    ++counters_.invalid;
    return false;
  }
  const uint32_t begin = p.offset;
  const uint32_t end = p.offset + p.len;
  if ((p.more && (p.len == 0 || (p.len & 7) != 0)) || p.head_len + end > ip_max ||
      p.head_len + end > limits_.max_datagram_size) {
    ++counters_.invalid;
    return false;
  }

  auto found = index_.find(p.k);
  if (found != index_.end() && frag.ts_ns >= found->second->first_ts &&
      frag.ts_ns - found->second->first_ts >= limits_.timeout_ns) {
    if (!found->second->abandoned)
      ++counters_.timed_out;
    erase(found->second);
    found = index_.end();
  }
  if (found == index_.end()) {
    if (!admit_new_) {
      ++counters_.refused;
      return false;
    }
    while (index_.size() >= limits_.max_datagrams) {
      ++counters_.limit_datagrams;
      erase(order_.begin());
    }
    order_.emplace_back();
    datagram& nd = order_.back();
    nd.k = p.k;
    nd.first_ts = frag.ts_ns;
    found = index_.emplace(p.k, std::prev(order_.end())).first;
  }
  datagram& d = *found->second;
  if (d.abandoned) {
    ++counters_.invalid;
    return false;
  }
  if (d.frags.size() >= limits_.max_fragments) {
    ++counters_.limit_fragments;
    abandon(d);
    return false;
  }
  // Consistency with the end given by a last fragment.
  bool inconsistent = d.have_last && (p.more ? end > d.total : end != d.total);
  if (!p.more) {
    for (const range& r : d.frags)
      inconsistent = inconsistent || r.end > end;
  }
  if (inconsistent) {
    ++counters_.invalid;
    abandon(d);
    return false;
  }
  // Overlaps with fragments already held.
  bool overlapped = false;
  for (const range& r : d.frags) {
    if (r.end <= begin || r.begin >= end)
      continue;
    overlapped = true;
    const bool exact = r.begin == begin && r.end == end;
    if (d.k.family == 6 && !exact) {
      ++counters_.overlaps;
      abandon(d);
      return false;
    }
    const uint32_t ob = std::max(begin, r.begin);
    const uint32_t oe = std::min(end, r.end);
    if (std::memcmp(d.data.data() + ob, p.bytes + (ob - begin), oe - ob) != 0) {
      ++counters_.overlaps;
      abandon(d);
      return false;
    }
  }
  // Does it add bytes not yet held? (frags sorted by begin)
  uint32_t pos = begin;
  for (const range& r : d.frags) {
    if (r.begin > pos)
      break;
    if (r.end > pos)
      pos = r.end;
  }
  const bool adds_bytes = pos < end || (begin == end && !overlapped);
  const bool new_head = begin == 0 && !d.have_head;
  if (overlapped && !adds_bytes && !new_head && (p.more || d.have_last)) {
    ++counters_.duplicates;
    return false;
  }

  // Memory: grow data (and head) within max_buffered_bytes.
  size_t grow = 0;
  size_t new_cap = d.data.capacity();
  if (end > d.data.size() && end > new_cap) {
    new_cap = std::max<size_t>(end, std::min<size_t>(d.data.capacity() * 2, ip_max));
    grow += new_cap - d.data.capacity();
  }
  if (new_head)
    grow += p.head_len;
  if (grow && !make_room(grow, &d)) {
    ++counters_.limit_bytes;
    abandon(d);
    return false;
  }
  if (new_cap > d.data.capacity()) {
    buffered_ -= d.data.capacity();
    d.data.reserve(new_cap);
    buffered_ += d.data.capacity();
  }
  if (end > d.data.size())
    d.data.resize(end);
  if (p.len)
    std::memcpy(d.data.data() + begin, p.bytes, p.len);
  if (new_head) {
    buffered_ -= d.head.capacity();
    d.head.assign(p.ip, p.ip + p.head_len);
    buffered_ += d.head.capacity();
    d.nh_pos = p.nh_pos;
    d.frag_nh = p.frag_nh;
    d.have_head = true;
  }
  if (!p.more) {
    d.have_last = true;
    d.total = end;
  }
  const range nr{begin, end};
  d.frags.insert(std::upper_bound(d.frags.begin(), d.frags.end(), nr,
                                  [](const range& a, const range& b) {
                                    return a.begin < b.begin;
                                  }),
                 nr);

  if (!complete(d))
    return false;
  if (d.head.size() + d.total > limits_.max_datagram_size) {
    ++counters_.invalid;
    erase(found->second);
    return false;
  }
  build(d, out_ip_packet);
  ++counters_.reassembled;
  erase(found->second);
  return true;
}

void ip_reassembler::expire(uint64_t now_ns) {
  while (!order_.empty()) {
    const datagram& d = order_.front();
    if (now_ns < d.first_ts || now_ns - d.first_ts < limits_.timeout_ns)
      break;
    if (!d.abandoned)
      ++counters_.timed_out;
    erase(order_.begin());
  }
}

void ip_reassembler::clear() {
  index_.clear();
  order_.clear();
  buffered_ = 0;
}

} // namespace metaprobe
