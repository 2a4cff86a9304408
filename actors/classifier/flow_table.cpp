// SPDX-License-Identifier: Apache-2.0
#include "classifier/flow_table.hpp"

#include <algorithm>
#include <cstring>

namespace metaprobe {

flow_key flow_key::of(const decoded_packet& p, bool& src_is_lo) {
  flow_key k;
  k.family = p.ip_version;
  k.proto = p.l4_proto;
  k.tunnel = p.tunnel.id;
  int c = std::memcmp(p.src.bytes.data(), p.dst.bytes.data(), 16);
  src_is_lo = c < 0 || (c == 0 && p.sport <= p.dport);
  if (src_is_lo) {
    k.lo_addr = p.src.bytes;
    k.hi_addr = p.dst.bytes;
    k.lo_port = p.sport;
    k.hi_port = p.dport;
  } else {
    k.lo_addr = p.dst.bytes;
    k.hi_addr = p.src.bytes;
    k.lo_port = p.dport;
    k.hi_port = p.sport;
  }
  return k;
}

bool flow_key::operator==(const flow_key& o) const {
  return std::memcmp(this, &o, sizeof(flow_key)) == 0;
}

static_assert(sizeof(flow_key) == 48, "flow_key must have no implicit padding");

uint32_t flow_slots_for(uint64_t budget_bytes, int workers, unsigned share_percent) {
  uint64_t n = budget_bytes / 100 * share_percent / flow_cost_bytes /
               static_cast<uint64_t>(std::max(workers, 1));
  return static_cast<uint32_t>(std::clamp<uint64_t>(n, 4096, uint64_t{1} << 20));
}

flow_table::flow_table(const flow_table_options& opts)
  : opts_(opts), max_flows_(std::max<uint32_t>(opts.max_flows, 1)) {
  unsigned bits = 4;
  while (bits < 31 && (uint64_t{1} << bits) < max_flows_)
    ++bits;
  bucket_shift_ = 64 - bits;
  buckets_.assign(size_t{1} << bits, none);
}

flow_entry* flow_table::find(const flow_key& key, uint32_t hash) {
  for (uint32_t i = buckets_[bucket_of(hash)]; i != none;) {
    flow_entry& f = slot(i);
    if (f.hash == hash && f.key == key)
      return &f;
    i = f.bucket_next;
  }
  return nullptr;
}

template <uint32_t flow_entry::*Prev, uint32_t flow_entry::*Next>
void flow_table::unlink(list& l, flow_entry& f) {
  uint32_t p = f.*Prev, n = f.*Next;
  if (p != none)
    slot(p).*Next = n;
  else
    l.head = n;
  if (n != none)
    slot(n).*Prev = p;
  else
    l.tail = p;
  f.*Prev = none;
  f.*Next = none;
}

template <uint32_t flow_entry::*Prev, uint32_t flow_entry::*Next>
void flow_table::push_back(list& l, flow_entry& f) {
  f.*Prev = l.tail;
  f.*Next = none;
  if (l.tail != none)
    slot(l.tail).*Next = f.index;
  else
    l.head = f.index;
  l.tail = f.index;
}

flow_entry* flow_table::create(const flow_key& key, uint32_t hash, uint64_t ts_ns) {
  if (full())
    return nullptr;
  uint32_t i;
  if (free_head_ != none) {
    i = free_head_;
    free_head_ = slot(i).bucket_next;
  } else {
    if (next_unused_ >= allocated()) {
      chunks_.emplace_back(new flow_entry[chunk_size]);
    }
    i = next_unused_++;
  }
  flow_entry& f = slot(i);
  f.key = key;
  f.hash = hash;
  f.index = i;
  f.last_ts_ns = ts_ns;
  f.report_ts_ns = ts_ns;
  f.close_ts_ns = 0;
  f.in_use = true;
  f.closing = false;
  f.confirmed = false;
  f.close_prev = f.close_next = none;
  f.s = flow_state{};
  f.stream[0].reset();
  f.stream[1].reset();
  uint32_t b = bucket_of(hash);
  f.bucket_next = buckets_[b];
  buckets_[b] = i;
  push_back<&flow_entry::lru_prev, &flow_entry::lru_next>(lru_, f);
  push_back<&flow_entry::unc_prev, &flow_entry::unc_next>(unconfirmed_, f);
  push_back<&flow_entry::act_prev, &flow_entry::act_next>(active_, f);
  ++size_;
  return &f;
}

void flow_table::touch(flow_entry& f, uint64_t ts_ns) {
  f.last_ts_ns = std::max(f.last_ts_ns, ts_ns);
  if (lru_.tail != f.index) {
    unlink<&flow_entry::lru_prev, &flow_entry::lru_next>(lru_, f);
    push_back<&flow_entry::lru_prev, &flow_entry::lru_next>(lru_, f);
  }
  if (!f.confirmed && unconfirmed_.tail != f.index) {
    unlink<&flow_entry::unc_prev, &flow_entry::unc_next>(unconfirmed_, f);
    push_back<&flow_entry::unc_prev, &flow_entry::unc_next>(unconfirmed_, f);
  }
}

void flow_table::confirm(flow_entry& f) {
  if (f.confirmed || !f.in_use)
    return;
  unlink<&flow_entry::unc_prev, &flow_entry::unc_next>(unconfirmed_, f);
  f.confirmed = true;
  ++confirmed_;
}

void flow_table::mark_closing(flow_entry& f, uint64_t ts_ns) {
  if (f.closing)
    return;
  f.closing = true;
  f.close_ts_ns = ts_ns;
  push_back<&flow_entry::close_prev, &flow_entry::close_next>(closing_, f);
}

void flow_table::rearm_active(flow_entry& f, uint64_t now_ns) {
  f.report_ts_ns = now_ns;
  unlink<&flow_entry::act_prev, &flow_entry::act_next>(active_, f);
  push_back<&flow_entry::act_prev, &flow_entry::act_next>(active_, f);
}

void flow_table::release(flow_entry& f, bool keep_storage) {
  if (!f.in_use)
    return;
  uint32_t* link = &buckets_[bucket_of(f.hash)];
  while (*link != none && *link != f.index)
    link = &slot(*link).bucket_next;
  if (*link == f.index)
    *link = f.bucket_next;
  unlink<&flow_entry::lru_prev, &flow_entry::lru_next>(lru_, f);
  if (f.confirmed)
    --confirmed_;
  else
    unlink<&flow_entry::unc_prev, &flow_entry::unc_next>(unconfirmed_, f);
  f.confirmed = false;
  unlink<&flow_entry::act_prev, &flow_entry::act_next>(active_, f);
  if (f.closing)
    unlink<&flow_entry::close_prev, &flow_entry::close_next>(closing_, f);
  f.in_use = false;
  f.closing = false;
  f.stream[0].reset(keep_storage);
  f.stream[1].reset(keep_storage);
  f.bucket_next = free_head_;
  free_head_ = f.index;
  --size_;
}

flow_entry* flow_table::oldest() {
  if (unconfirmed_.head != none)
    return &slot(unconfirmed_.head);
  return lru_.head == none ? nullptr : &slot(lru_.head);
}

flow_entry* flow_table::next_due(uint64_t now_ns, flow_end_reason& why) {
  if (closing_.head != none) {
    flow_entry& f = slot(closing_.head);
    if (f.close_ts_ns + opts_.tcp_close_linger_ns <= now_ns) {
      why = flow_end_reason::end;
      return &f;
    }
  }
  if (lru_.head != none && opts_.inactive_timeout_ns != 0) {
    flow_entry& f = slot(lru_.head);
    if (f.last_ts_ns + opts_.inactive_timeout_ns <= now_ns) {
      why = flow_end_reason::idle;
      return &f;
    }
  }
  if (active_.head != none && opts_.active_timeout_ns != 0) {
    flow_entry& f = slot(active_.head);
    if (f.report_ts_ns + opts_.active_timeout_ns <= now_ns) {
      why = flow_end_reason::active;
      return &f;
    }
  }
  return nullptr;
}

} // namespace metaprobe
