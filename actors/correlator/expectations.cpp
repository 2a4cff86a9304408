// SPDX-License-Identifier: Apache-2.0
#include "correlator/expectations.hpp"

#include <algorithm>
#include <vector>

namespace metaprobe {

namespace {
constexpr uint8_t ipproto_tcp = 6;
}

size_t expectation_table::key_hash::operator()(const key& k) const {
  // FNV-1a over the address bytes, family and port.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint8_t b) {
    h ^= b;
    h *= 1099511628211ull;
  };
  for (size_t i = 0; i < k.addr.size(); ++i)
    mix(k.addr.bytes[i]);
  mix(k.addr.family);
  mix(static_cast<uint8_t>(k.port >> 8));
  mix(static_cast<uint8_t>(k.port));
  return static_cast<size_t>(h);
}

void expectation_table::advance(uint64_t now_ns) {
  if (now_ns <= now_ns_)
    return;
  now_ns_ = now_ns;
  purge();
}

void expectation_table::purge() {
  const uint64_t keep = opts_.window_ns + opts_.hold_ns;
  while (!order_.empty()) {
    const fifo_item& front = order_.front();
    auto it = expected_.find(front.k);
    if (it == expected_.end() || it->second.seq != front.seq) {
      order_.pop_front(); // consumed or replaced since
      continue;
    }
    if (it->second.learned_ns + keep >= now_ns_)
      break;
    expected_.erase(it);
    ++counters_.expired;
    order_.pop_front();
  }
}

void expectation_table::compact() {
  // Drop the FIFO items of consumed / replaced entries (bounds the FIFO).
  std::vector<fifo_item> live;
  live.reserve(expected_.size());
  for (const auto& [k, e] : expected_)
    live.push_back({k, e.seq});
  std::sort(live.begin(), live.end(),
            [](const fifo_item& a, const fifo_item& b) { return a.seq < b.seq; });
  order_.assign(live.begin(), live.end());
}

void expectation_table::learn(const ip_address& server, uint16_t port, uint8_t mode,
                              uint64_t control_session, uint64_t ts_ns) {
  if ((server.family != 4 && server.family != 6) || port == 0)
    return;
  advance(ts_ns);
  key k;
  k.addr.family = server.family;
  std::copy_n(server.bytes.begin(), server.size(), k.addr.bytes.begin());
  k.port = port;
  auto it = expected_.find(k);
  if (it != expected_.end()) {
    ++counters_.expired; // superseded by the newer announcement
  } else if (expected_.size() >= opts_.capacity) {
    ++counters_.dropped;
    return;
  }
  entry& e = expected_[k];
  e.control_session = control_session;
  e.learned_ns = ts_ns;
  e.seq = next_seq_++;
  e.mode = mode;
  order_.push_back({k, e.seq});
  ++counters_.learned;
  if (order_.size() > 2 * opts_.capacity + 64)
    compact();
}

uint64_t expectation_table::session_for(uint64_t own_session, uint8_t l4_proto,
                                        const ip_address& server, uint16_t server_port,
                                        uint64_t first_ts_ns) {
  if (l4_proto != ipproto_tcp || empty())
    return own_session;
  if (auto b = bound_.find(own_session); b != bound_.end())
    return b->second;
  if (expected_.empty())
    return own_session;
  key k;
  k.addr.family = server.family;
  std::copy_n(server.bytes.begin(), server.size(), k.addr.bytes.begin());
  k.port = server_port;
  auto it = expected_.find(k);
  if (it == expected_.end())
    return own_session;
  const entry& e = it->second;
  if (e.control_session == own_session || first_ts_ns < e.learned_ns ||
      first_ts_ns - e.learned_ns > opts_.window_ns)
    return own_session; // the flow predates the announcement, or came too late
  const uint64_t control = e.control_session;
  expected_.erase(it); // one data connection per announcement (RFC 959)
  ++counters_.matched;
  if (bound_.size() < opts_.capacity)
    bound_.emplace(own_session, control);
  else
    ++counters_.dropped; // later records of this flow keep their own id
  return control;
}

void expectation_table::release(uint64_t own_session) {
  if (!bound_.empty())
    bound_.erase(own_session);
}

} // namespace metaprobe
