// SPDX-License-Identifier: Apache-2.0
#include "classifier/classifier_core.hpp"

#include <algorithm>
#include <limits>

#include "core/decap_config.hpp"
#include "core/raw_meta.hpp"

namespace metaprobe {

namespace {

constexpr uint8_t tcp_fin = 0x01;
constexpr uint8_t tcp_syn = 0x02;
constexpr uint8_t tcp_rst = 0x04;
constexpr uint8_t tcp_ack = 0x10;
constexpr uint8_t ipproto_tcp = 6;
constexpr uint8_t ipproto_udp = 17;

size_t di(direction d) {
  return static_cast<size_t>(d);
}

uint64_t ip_bytes(const decoded_packet& p) {
  return p.l3_wire_len ? p.l3_wire_len : p.l3_len;
}

// Half of a duration in ns, in ms rounded to nearest, at least 1.
uint32_t half_ms(uint64_t ns) {
  uint64_t ms = (ns / 2 + 500'000) / 1'000'000;
  return static_cast<uint32_t>(std::min<uint64_t>(std::max<uint64_t>(ms, 1),
                                                  std::numeric_limits<uint32_t>::max()));
}

ip_reassembly_limits reassembly_limits(const classifier_options& o) {
  ip_reassembly_limits l;
  l.max_datagrams = o.frag_max_datagrams;
  l.max_fragments = o.frag_max_fragments;
  l.timeout_ns = o.frag_timeout_ns;
  l.max_buffered_bytes = static_cast<size_t>(o.frag_max_buffered_bytes);
  return l;
}

flow_table_options table_options(const classifier_options& o) {
  flow_table_options t;
  t.max_flows = o.max_flows;
  t.inactive_timeout_ns = o.inactive_timeout_ns;
  t.active_timeout_ns = o.active_timeout_ns;
  t.tcp_close_linger_ns = o.tcp_close_linger_ns;
  return t;
}

} // namespace

// ---------------------------------------------------------------- output

void classifier_output::clear() {
  for (auto& b : per_proto) {
    b.infos.clear();
    b.summaries.clear();
    b.events.clear();
    b.sources.clear();
    b.bytes.clear();
    b.relayed.clear();
  }
  flows.clear();
}

bool classifier_output::empty() const {
  for (const auto& b : per_proto)
    if (!b.empty())
      return false;
  return flows.empty();
}

// ---------------------------------------------------------------- setup

classifier_core::classifier_core(const classifier_options& opts, uint16_t shard,
                                 session_id_generator ids,
                                 const std::vector<protocol_entry>& protocols)
  : opts_(opts), shard_(shard), ids_(ids), protocols_(protocols), account_(opts.budget),
    table_(table_options(opts)), reasm_(reassembly_limits(opts)) {
  tcp_opts_.max_ooo_bytes = opts.max_ooo_bytes;
  tcp_opts_.max_ooo_segments = opts.max_ooo_segments;
  lean_tcp_opts_.max_ooo_bytes = 0;
  lean_tcp_opts_.max_ooo_segments = 0;
  tcp_port_.assign(65536, 0);
  udp_port_.assign(65536, 0);
  // Port tables hold registry index + 1 in a byte: at most 255 entries.
  size_t n = std::min<size_t>(protocols_.size(), 255);
  slots_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const protocol_entry& e = protocols_[i];
    proto_slot& s = slots_[i];
    s.entry = &e;
    s.tcp_parser = e.make_stream != nullptr;
    s.udp_parser = e.make_datagram != nullptr;
    per_proto_size_ = std::max(per_proto_size_, static_cast<size_t>(e.id) + 1);
    for (uint16_t port : e.tcp_ports)
      if (!tcp_port_[port])
        tcp_port_[port] = static_cast<uint8_t>(i + 1);
    for (uint16_t port : e.udp_ports)
      if (!udp_port_[port])
        udp_port_[port] = static_cast<uint8_t>(i + 1);
    if (e.probe) {
      if (s.tcp_parser || !e.tcp_ports.empty()) {
        any_tcp_probe_ = true;
        tcp_candidates_.push_back(&e);
      }
      if (s.udp_parser || !e.udp_ports.empty())
        any_udp_probe_ = true;
    }
    if (e.relays_unparsed_flows && s.tcp_parser && relay_proto_ < 0)
      relay_proto_ = static_cast<int>(e.id);
  }
  for (app_protocol p : opts_.raw_protocols) {
    auto v = static_cast<size_t>(p);
    if (raw_meta_.size() <= v)
      raw_meta_.resize(v + 1, 0);
    raw_meta_[v] = meta_proto_of(p);
  }
  tallies_.resize(tally_slots);
  sink_.core = this;
  account_.add(static_cast<int64_t>(table_.bucket_bytes()));
  account_.flush();
}

void classifier_core::prepare(classifier_output& out) {
  out_ = &out;
  if (out.per_proto.size() < per_proto_size_)
    out.per_proto.resize(per_proto_size_);
  for (size_t i = 0; i < out.per_proto.size(); ++i)
    out.per_proto[i].proto = static_cast<app_protocol>(i);
}

// ---------------------------------------------------------------- entry points

void classifier_core::process(const packet_batch_ptr& batch, classifier_output& out) {
  if (!batch)
    return;
  prepare(out);
  batch_ = &batch;
  for (const decoded_packet& p : batch->packets) {
    ++counters_.packets;
    ++counters_.by_status[std::min<size_t>(static_cast<size_t>(p.status),
                                           decode_status_count - 1)];
    if (p.status != decode_status::ok)
      continue;
    if (p.ts_ns > clock_)
      clock_ = p.ts_ns;
    expire(opts_.expire_per_packet);
    if (account_.budget() && account_.pressure() >= memory_pressure::critical)
      evict_for_memory(opts_.evict_per_packet);
    if (p.is_fragment) {
      handle_fragment(p);
      continue;
    }
    packet_ctx ctx;
    ctx.bytes = ip_bytes(p);
    handle_packet(p, ctx);
  }
  batch_ = nullptr;
  out_ = nullptr;
  account_.flush();
}

void classifier_core::advance_time(uint64_t now_ns, classifier_output& out) {
  prepare(out);
  clock_ = std::max(clock_, now_ns);
  expire(opts_.expire_per_call);
  reasm_.expire(clock_);
  if (account_.budget()) {
    recharge_reassembly();
    account_.flush();
  }
  out_ = nullptr;
}

void classifier_core::flush_all(uint64_t now_ns, classifier_output& out) {
  prepare(out);
  clock_ = std::max(clock_, now_ns);
  while (flow_entry* f = table_.oldest())
    end_flow(*f, flow_end_reason::forced, clock_);
  reasm_.clear();
  recharge_reassembly();
  account_.flush();
  for (auto& t : tallies_)
    t.used = false;
  out_ = nullptr;
}

void classifier_core::expire(uint32_t budget) {
  flow_end_reason why = flow_end_reason::idle;
  for (uint32_t n = 0; n < budget; ++n) {
    flow_entry* f = table_.next_due(clock_, why);
    if (!f)
      break;
    end_flow(*f, why, clock_);
  }
}

// ---------------------------------------------------------------- packets

void classifier_core::handle_fragment(const decoded_packet& p, bool nested) {
  ++counters_.fragments;
  reasm_.expire(clock_);
  uint32_t h = p.flow_hash ^ (p.frag_id * 0x9E3779B1u);
  frag_tally& t = tallies_[(h ^ (h >> 16)) & (tally_slots - 1)];
  if (!t.used || t.id != p.frag_id || t.src != p.src || t.dst != p.dst) {
    if (t.used)
      ++counters_.frag_tally_collisions;
    t.used = true;
    t.src = p.src;
    t.dst = p.dst;
    t.id = p.frag_id;
    t.packets = 0;
    t.bytes = 0;
  }
  ++t.packets;
  t.bytes += ip_bytes(p);
  bool done = false;
  if (account_.budget()) {
    reasm_.set_admit_new(account_.pressure() < memory_pressure::tight);
    const uint64_t refused = reasm_.counters().refused;
    done = reasm_.add(p, reasm_buf_);
    if (reasm_.counters().refused != refused)
      account_.budget()->count(memory_reason::frag_refused);
    recharge_reassembly();
  } else {
    done = reasm_.add(p, reasm_buf_);
  }
  if (!done)
    return;
  ++counters_.reassembled;
  packet_ctx ctx;
  ctx.ephemeral = true;
  ctx.packets = t.packets;
  ctx.bytes = t.bytes;
  ctx.fragments = t.packets;
  t.used = false;
  if (decode_reassembled(reasm_buf_.data(), static_cast<uint32_t>(reasm_buf_.size()), p,
                         reasm_pkt_, opts_.decode) != decode_status::ok) {
    ++counters_.reassembled_bad;
    return;
  }
  if (reasm_pkt_.tunnel.depth > p.tunnel.depth) {
    ++counters_.reassembled_tunnels;
    for (uint8_t i = p.tunnel.depth; i < reasm_pkt_.tunnel.depth; ++i)
      ++counters_.decap[reasm_pkt_.tunnel.kinds[i]];
  }
  if (reasm_pkt_.is_fragment) {
    // A fragmented tunnel packet carrying a fragment of an inner datagram:
    // the inner fragment goes to reassembly in its turn (its bytes stay in
    // reasm_outer_buf_ while reasm_buf_ is reused).
    if (nested || reasm_pkt_.tunnel.depth == p.tunnel.depth) {
      ++counters_.reassembled_bad;
      return;
    }
    reasm_outer_buf_.swap(reasm_buf_);
    const decoded_packet inner = reasm_pkt_;
    handle_fragment(inner, true);
    return;
  }
  handle_packet(reasm_pkt_, ctx);
}

void classifier_core::handle_packet(const decoded_packet& p, const packet_ctx& ctx) {
  bool src_is_lo = true;
  flow_key key = flow_key::of(p, src_is_lo);
  flow_entry* f = table_.find(key, p.flow_hash);
  bool tcp = p.l4_proto == ipproto_tcp;
  if (f && tcp && f->closing && (p.tcp_flags & (tcp_syn | tcp_ack)) == tcp_syn) {
    // A new connection on the tuple of one that has closed.
    ++counters_.port_reuse;
    end_flow(*f, flow_end_reason::end, clock_);
    f = nullptr;
  }
  if (!f)
    f = new_flow(p, key, src_is_lo);
  flow_state& s = f->s;
  direction dir = src_is_lo == s.client_is_lo ? direction::client_to_server
                                              : direction::server_to_client;
  direction_counters& d = s.dir[di(dir)];
  if (d.packets == 0) {
    d.first_ts_ns = p.ts_ns;
    d.tos = p.tos;
    d.l2 = p.l2;
  }
  d.packets += ctx.packets;
  d.bytes += ctx.bytes;
  d.last_ts_ns = std::max(d.last_ts_ns, p.ts_ns);
  d.fragments += ctx.fragments;
  table_.touch(*f, p.ts_ns);
  if (tcp) {
    d.tcp_flags |= p.tcp_flags;
    handle_tcp(*f, dir, p, ctx);
  } else if (p.l4_proto == ipproto_udp) {
    handle_udp(*f, dir, p, ctx);
  } else {
    ++counters_.non_tcp_udp;
  }
  raw_item(*f, dir, p, ctx);
  if (!f->confirmed && s.dir[0].packets && s.dir[1].packets &&
      (!tcp || s.handshake == 3 || s.payload_dirs == 3))
    confirm(*f);
  if (account_.budget() && f->in_use)
    recharge(*f);
}

void classifier_core::raw_item(flow_entry& f, direction dir, const decoded_packet& p,
                               const packet_ctx& ctx) {
  flow_state& s = f.s;
  const auto proto = static_cast<size_t>(s.info.proto);
  if (proto >= raw_meta_.size() || raw_meta_[proto] == 0)
    return;
  if (opts_.raw_max_packets && s.raw_packets >= opts_.raw_max_packets) {
    ++counters_.raw_dropped;
    return;
  }
  flow_batch& fb = out_->flows;
  if (s.raw_packets == 0 || s.raw_info >= fb.raw_infos.size() ||
      fb.raw_infos[s.raw_info].flow_id != s.info.flow_id) {
    s.raw_info = static_cast<uint32_t>(fb.raw_infos.size());
    fb.raw_infos.push_back(s.info);
  }
  ++s.raw_packets;
  // Captured bytes of the IP packet (l3_len is already within the capture).
  uint32_t have = p.l3_len;
  if (p.cap_len > p.l3_off)
    have = std::min<uint32_t>(have, p.cap_len - p.l3_off);
  else if (p.cap_len)
    have = 0;
  uint32_t keep = std::min(have, opts_.raw_max_bytes);
  if (keep < have)
    ++counters_.raw_truncated;
  raw_packet r;
  r.info_index = s.raw_info;
  r.ts_ns = p.ts_ns;
  r.dir = dir;
  r.tcp_flags = s.is_tcp ? p.tcp_flags : 0;
  r.tcp_seq = s.is_tcp ? p.tcp_seq : 0;
  r.proto = s.info.proto;
  r.meta_proto = raw_meta_[proto];
  r.len = keep;
  const uint8_t* ip = p.data + p.l3_off;
  if (!ctx.ephemeral && batch_ && *batch_ && fb.sources.size() < raw_packet::own_bytes) {
    if (fb.sources.empty() || fb.sources.back() != *batch_)
      fb.sources.push_back(*batch_);
    r.source = static_cast<uint16_t>(fb.sources.size() - 1);
    r.ptr = ip;
  } else {
    r.source = raw_packet::own_bytes;
    r.offset = static_cast<uint32_t>(fb.bytes.size());
    fb.bytes.insert(fb.bytes.end(), ip, ip + keep);
    counters_.bytes_copied += keep;
  }
  fb.raw.push_back(r);
  ++counters_.raw_packets;
  counters_.raw_bytes += keep;
}

flow_entry* classifier_core::new_flow(const decoded_packet& p, const flow_key& key,
                                      bool src_is_lo) {
  const memory_pressure pressure = account_.pressure();
  if (table_.full()) {
    ++counters_.table_full;
    if (flow_entry* victim = table_.oldest()) {
      ++counters_.evictions;
      end_flow(*victim, flow_end_reason::evicted, clock_);
    }
  } else if (table_.needs_chunk() && table_.size() > 0 && account_.budget() &&
             account_.budget()->would_reach(static_cast<int64_t>(flow_table::chunk_bytes),
                                            memory_pressure::critical)) {
    // No new chunk of slots that would make memory short: as if the table
    // were full, the oldest unconfirmed flow (else the oldest) gives its
    // slot up.
    ++counters_.chunk_refused;
    account_.budget()->count(memory_reason::chunk_refused);
    if (flow_entry* victim = table_.oldest())
      evict_for_memory(*victim);
  }
  flow_entry* f = table_.create(key, p.flow_hash, p.ts_ns);
  ++counters_.flows_created;
  if (account_.budget() && table_.allocated() / flow_table::chunk_size > charged_chunks_) {
    account_.add(static_cast<int64_t>(flow_table::chunk_bytes));
    ++charged_chunks_;
  }
  flow_state& s = f->s;
  s.is_tcp = p.l4_proto == ipproto_tcp;
  // The receiver of a first-seen SYN/ACK is the client; otherwise the sender.
  bool client_is_src = !(s.is_tcp && (p.tcp_flags & (tcp_syn | tcp_ack)) == (tcp_syn | tcp_ack));
  s.client_is_lo = client_is_src == src_is_lo;
  flow_info& info = s.info;
  info.flow_id = ++next_flow_id_;
  info.session_id = ids_.next();
  info.client = client_is_src ? p.src : p.dst;
  info.server = client_is_src ? p.dst : p.src;
  info.client_port = client_is_src ? p.sport : p.dport;
  info.server_port = client_is_src ? p.dport : p.sport;
  info.l4_proto = p.l4_proto;
  info.proto = app_protocol::unknown;
  info.l2 = p.l2;
  info.first_ts_ns = p.ts_ns;
  if (pressure >= memory_pressure::tight) {
    info.lean = true;
    ++counters_.lean_flows;
    account_.budget()->count(memory_reason::lean_flows);
  }
  for (auto& st : f->stream)
    st.bind(info.lean ? &lean_tcp_opts_ : &tcp_opts_, &counters_.tcp);
  detect_by_port(*f, p.ts_ns);
  return f;
}

void classifier_core::confirm(flow_entry& f) {
  table_.confirm(f);
  ++counters_.confirmed;
}

void classifier_core::recharge(flow_entry& f) {
  size_t now = f.stream[0].memory_bytes() + f.stream[1].memory_bytes() +
               (f.s.detect ? f.s.detect->memory_bytes() : 0);
  if (now != f.charged) {
    account_.add(static_cast<int64_t>(now) - static_cast<int64_t>(f.charged));
    f.charged = static_cast<uint32_t>(now);
  }
}

void classifier_core::evict_for_memory(uint32_t n) {
  account_.budget()->relieve();
  for (uint32_t i = 0; i < n; ++i) {
    flow_entry* victim = table_.oldest();
    if (!victim)
      return;
    // Merely short of memory (not full), real conversations stay, and so
    // do flows that had a packet within min_victim_idle_ns (a handshake
    // in progress): the victim is the least recently used unconfirmed
    // flow, so when it is that young, every other one is too.
    if (account_.pressure() < memory_pressure::full &&
        (victim->confirmed || victim->last_ts_ns + opts_.min_victim_idle_ns > clock_))
      return;
    evict_for_memory(*victim);
  }
}

void classifier_core::evict_for_memory(flow_entry& victim) {
  ++counters_.memory_evictions;
  account_.budget()->count(memory_reason::evicted);
  if (victim.confirmed) {
    ++counters_.memory_evictions_confirmed;
    account_.budget()->count(memory_reason::evicted_confirmed);
  }
  end_flow(victim, flow_end_reason::evicted, clock_);
}

void classifier_core::recharge_reassembly() {
  account_.add(static_cast<int64_t>(reasm_.buffered_bytes()) - static_cast<int64_t>(reasm_charged_));
  reasm_charged_ = reasm_.buffered_bytes();
}

// ---------------------------------------------------------------- detection

void classifier_core::detect_by_port(flow_entry& f, uint64_t ts_ns) {
  flow_state& s = f.s;
  const std::vector<uint8_t>* ports = nullptr;
  bool can_probe = false;
  if (s.info.l4_proto == ipproto_tcp) {
    ports = &tcp_port_;
    can_probe = any_tcp_probe_;
  } else if (s.info.l4_proto == ipproto_udp) {
    ports = &udp_port_;
    can_probe = any_udp_probe_;
  } else {
    return;
  }
  uint8_t m = (*ports)[s.info.server_port];
  if (!m)
    m = (*ports)[s.info.client_port];
  if (m) {
    ++counters_.detected_port;
    set_protocol(f, m - 1u, ts_ns);
    return;
  }
  const bool budget = s.info.l4_proto == ipproto_tcp ? opts_.max_probe_bytes > 0
                                                     : opts_.max_probe_packets > 0;
  if (can_probe && budget) {
    s.probing = true;
  } else {
    f.stream[0].set_store(false);
    f.stream[1].set_store(false);
  }
}

bool classifier_core::probe_datagram(flow_entry& f, direction dir, const uint8_t* data,
                                     uint32_t len, uint64_t ts_ns) {
  for (size_t i = 0; i < slots_.size(); ++i) {
    const protocol_entry& e = *slots_[i].entry;
    if (!e.probe)
      continue;
    const bool fits = slots_[i].udp_parser || !e.udp_ports.empty();
    if (fits && e.probe(data, len, dir)) {
      ++counters_.detected_probe;
      set_protocol(f, i, ts_ns);
      return true;
    }
  }
  if (++f.s.probe_packets >= opts_.max_probe_packets)
    stop_probing(f);
  return false;
}

void classifier_core::stop_probing(flow_entry& f) {
  f.s.probing = false;
  f.s.detect.reset();
  ++counters_.undetected;
  f.stream[0].set_store(false);
  f.stream[1].set_store(false);
}

void classifier_core::set_protocol(flow_entry& f, size_t slot_index, uint64_t ts_ns) {
  const proto_slot& sl = slots_[slot_index];
  flow_state& s = f.s;
  s.probing = false;
  s.info.proto = sl.entry->id;
  bool parser = s.is_tcp ? sl.tcp_parser : (s.info.l4_proto == ipproto_udp && sl.udp_parser);
  if (parser) {
    open(f, ts_ns);
  } else {
    f.stream[0].set_store(false);
    f.stream[1].set_store(false);
  }
}

void classifier_core::open(flow_entry& f, uint64_t ts_ns) {
  stream_batch& b = batch_of(f);
  stream_event ev;
  ev.kind = stream_event_kind::open;
  ev.flow_id = f.s.info.flow_id;
  ev.ts_ns = ts_ns;
  ev.info_index = static_cast<uint32_t>(b.infos.size());
  b.infos.push_back(f.s.info);
  b.events.push_back(ev);
  f.s.has_parser = true;
  ++counters_.parser_flows;
  ++counters_.events;
}

// ---------------------------------------------------------------- TCP / UDP

void classifier_core::handle_tcp(flow_entry& f, direction dir, const decoded_packet& p,
                                 const packet_ctx& ctx) {
  flow_state& s = f.s;
  uint8_t fl = p.tcp_flags;
  uint64_t ts = p.ts_ns;
  uint8_t sa = fl & (tcp_syn | tcp_ack);
  if (sa == tcp_syn) {
    if (dir == direction::client_to_server && s.handshake == 0) {
      s.handshake = 1;
      s.syn_ts_ns = ts;
    }
  } else if (sa == (tcp_syn | tcp_ack)) {
    if (dir == direction::server_to_client && s.handshake == 1 && ts >= s.syn_ts_ns) {
      s.handshake = 2;
      s.synack_ts_ns = ts;
      s.rtt_half_ms = half_ms(ts - s.syn_ts_ns);
    }
  } else if ((fl & tcp_ack) && dir == direction::client_to_server && s.handshake == 2 &&
             ts >= s.synack_ts_ns) {
    s.handshake = 3;
    s.rtt_half_ms = half_ms(ts - s.syn_ts_ns);
  }

  if (fl & tcp_rst) {
    s.rst_seen = true;
    table_.mark_closing(f, ts);
    return; // RST payload (diagnostic text) is not stream data
  }
  tcp_stream& st = f.stream[di(dir)];
  uint32_t seq = p.tcp_seq;
  if (fl & tcp_syn) {
    st.syn(seq);
    ++seq; // data in a SYN starts after the SYN's sequence number
  }
  bool fin = (fl & tcp_fin) != 0;
  if (p.payload_len > 0)
    s.payload_dirs |= static_cast<uint8_t>(1u << di(dir));
  // Payload bytes on the wire that the capture's snap length cut off.
  uint32_t cut = 0;
  uint32_t hdrs = p.payload_off >= p.l3_off ? uint32_t{p.payload_off} - p.l3_off : 0;
  if (p.l3_wire_len > hdrs + p.payload_len)
    cut = p.l3_wire_len - hdrs - p.payload_len;
  if (p.payload_len > 0 || cut > 0 || fin) {
    sink_.flow = &f;
    sink_.dir = dir;
    sink_.ts_ns = ts;
    sink_.ephemeral = ctx.ephemeral;
    if (st.segment(seq, p.payload(), p.payload_len, fin, sink_, cut) ==
        segment_result::retransmission)
      ++s.dir[di(dir)].retransmissions;
  }
  if (fin) {
    s.fin_seen |= static_cast<uint8_t>(1u << di(dir));
    if (s.fin_seen == 3)
      table_.mark_closing(f, ts);
  }
}

void classifier_core::handle_udp(flow_entry& f, direction dir, const decoded_packet& p,
                                 const packet_ctx& ctx) {
  if (p.payload_len == 0)
    return;
  flow_state& s = f.s;
  if (!s.has_parser && s.probing)
    probe_datagram(f, dir, p.payload(), p.payload_len, p.ts_ns);
  if (!s.has_parser)
    return;
  stream_batch& b = batch_of(f);
  stream_event ev;
  ev.kind = stream_event_kind::datagram;
  ev.dir = dir;
  ev.flow_id = s.info.flow_id;
  ev.ts_ns = p.ts_ns;
  place(b, ev, p.payload(), p.payload_len, ctx.ephemeral);
  b.events.push_back(ev);
  ++counters_.events;
}

void classifier_core::stream_sink::on_data(uint32_t seq, const uint8_t* data, uint32_t len,
                                           bool buffered) {
  core->tcp_data(*flow, dir, seq, data, len, buffered || ephemeral, ts_ns);
}

void classifier_core::stream_sink::on_gap(uint32_t seq, uint32_t len) {
  core->tcp_gap(*flow, dir, seq, len, ts_ns);
}

void classifier_core::tcp_data(flow_entry& f, direction dir, uint32_t seq, const uint8_t* data,
                               uint32_t len, bool copy, uint64_t ts_ns) {
  flow_state& s = f.s;
  if (!s.has_parser) {
    if (s.probing) {
      stream_piece piece;
      piece.dir = dir;
      piece.seq = seq;
      piece.ts_ns = ts_ns;
      if (data)
        piece.bytes.assign(reinterpret_cast<const char*>(data), len);
      else
        piece.gap = len; // track-only bytes (not expected)
      probe_stream(f, std::move(piece), ts_ns);
    }
    return; // bytes of a flow without parser are not kept
  }
  if (!data) { // track-only bytes cannot reach a parser (not expected)
    tcp_gap(f, dir, seq, len, ts_ns);
    return;
  }
  stream_batch& b = batch_of(f);
  stream_event ev;
  ev.kind = stream_event_kind::data;
  ev.dir = dir;
  ev.flow_id = s.info.flow_id;
  ev.ts_ns = ts_ns;
  ev.seq = seq;
  place(b, ev, data, len, copy);
  b.events.push_back(ev);
  ++counters_.events;
}

void classifier_core::probe_stream(flow_entry& f, stream_piece piece, uint64_t ts_ns) {
  flow_state& s = f.s;
  if (!s.detect)
    s.detect = std::make_unique<stream_redetector>(
      tcp_candidates_,
      s.info.lean ? std::min<size_t>(opts_.max_probe_bytes, memory_budget::lean_probe_bytes)
                  : opts_.max_probe_bytes,
      stream_redetector::default_max_probes, opts_.max_probe_packets);
  counters_.probe_bytes += piece.bytes.size();
  settle_probe(f, s.detect->add(std::move(piece)), ts_ns);
}

void classifier_core::settle_probe(flow_entry& f, stream_redetector::verdict v, uint64_t ts_ns) {
  flow_state& s = f.s;
  if (v == stream_redetector::verdict::pending)
    return;
  std::unique_ptr<stream_redetector> d = std::move(s.detect);
  if (v == stream_redetector::verdict::undetected) {
    switch (d->reason()) {
    case stream_redetector::give_up::overflow: ++counters_.probe_overflow; break;
    case stream_redetector::give_up::gaps: ++counters_.probe_gaps; break;
    default: break;
    }
    stop_probing(f);
    return;
  }
  size_t slot = 0;
  while (slot < slots_.size() && slots_[slot].entry != d->detected())
    ++slot;
  if (slot == slots_.size()) { // not a candidate of this table (cannot happen)
    stop_probing(f);
    return;
  }
  ++counters_.detected_probe;
  if (d->resynced())
    ++counters_.detected_midstream;
  set_protocol(f, slot, ts_ns);
  if (!s.has_parser)
    return;
  // The parser gets every byte held while probing, in arrival order.
  for (stream_piece& p : d->take_pieces()) {
    if (p.gap > 0) {
      tcp_gap(f, p.dir, p.seq, static_cast<uint32_t>(std::min<uint64_t>(p.gap, UINT32_MAX)),
              p.ts_ns);
      continue;
    }
    tcp_data(f, p.dir, p.seq, reinterpret_cast<const uint8_t*>(p.bytes.data()),
             static_cast<uint32_t>(p.bytes.size()), true, p.ts_ns);
  }
}

void classifier_core::tcp_gap(flow_entry& f, direction dir, uint32_t seq, uint32_t len,
                              uint64_t ts_ns) {
  flow_state& s = f.s;
  if (!s.has_parser) {
    if (s.probing) {
      stream_piece piece;
      piece.dir = dir;
      piece.seq = seq;
      piece.ts_ns = ts_ns;
      piece.gap = len;
      probe_stream(f, std::move(piece), ts_ns);
    }
    return;
  }
  stream_batch& b = batch_of(f);
  stream_event ev;
  ev.kind = stream_event_kind::gap;
  ev.dir = dir;
  ev.flow_id = s.info.flow_id;
  ev.ts_ns = ts_ns;
  ev.seq = seq;
  ev.len = len;
  b.events.push_back(ev);
  ++counters_.events;
}

void classifier_core::place(stream_batch& b, stream_event& ev, const uint8_t* data, uint32_t len,
                            bool copy) {
  ev.len = len;
  if (!copy && batch_ && *batch_ && b.sources.size() < stream_event::own_bytes) {
    if (b.sources.empty() || b.sources.back() != *batch_)
      b.sources.push_back(*batch_);
    ev.source = static_cast<uint16_t>(b.sources.size() - 1);
    ev.ptr = data;
    counters_.bytes_zero_copy += len;
    return;
  }
  ev.source = stream_event::own_bytes;
  ev.offset = static_cast<uint32_t>(b.bytes.size());
  ev.ptr = nullptr;
  b.bytes.insert(b.bytes.end(), data, data + len);
  counters_.bytes_copied += len;
}

// ---------------------------------------------------------------- flow end

void classifier_core::end_flow(flow_entry& f, flow_end_reason why, uint64_t now_ns) {
  flow_state& s = f.s;
  bool final = why != flow_end_reason::active;
  if (final && s.is_tcp) {
    sink_.flow = &f;
    sink_.ts_ns = f.last_ts_ns;
    sink_.ephemeral = false;
    for (size_t x = 0; x < 2; ++x) {
      sink_.dir = static_cast<direction>(x);
      f.stream[x].flush(sink_);
    }
    if (s.detect) // the probes run once more on what was held
      settle_probe(f, s.detect->finish(), f.last_ts_ns);
  }
  flow_summary sum;
  sum.info = s.info;
  sum.dir[0] = s.dir[0];
  sum.dir[1] = s.dir[1];
  sum.rtt_half_ms = s.rtt_half_ms;
  sum.reason = why;
  if (s.has_parser) {
    stream_batch& b = batch_of(f);
    stream_event ev;
    ev.kind = stream_event_kind::close;
    ev.flow_id = s.info.flow_id;
    ev.ts_ns = final ? f.last_ts_ns : now_ns;
    ev.info_index = static_cast<uint32_t>(b.summaries.size());
    b.summaries.push_back(std::move(sum));
    b.events.push_back(ev);
    ++counters_.events;
  } else if (relay_proto_ >= 0 && s.is_tcp) {
    out_->per_proto[static_cast<size_t>(relay_proto_)].relayed.push_back(std::move(sum));
  } else {
    out_->flows.summaries.push_back(std::move(sum));
  }
  ++counters_.flows_ended[static_cast<size_t>(why) % counters_.flows_ended.size()];
  if (final) {
    s.detect.reset();
    // Short of memory: the slot keeps no buffer storage for its next flow.
    table_.release(f, account_.pressure() < memory_pressure::tight);
    if (account_.budget())
      recharge(f);
    return;
  }
  // Active report: the next summary carries the deltas from here.
  for (auto& d : s.dir) {
    direction_counters fresh;
    fresh.tos = d.tos;
    fresh.l2 = d.l2;
    d = fresh;
  }
  table_.rearm_active(f, now_ns);
}

// ---------------------------------------------------------------- counters

void classifier_core::publish_counters(stage_stats& stats, const std::string& prefix) const {
  const classifier_counters& c = counters_;
  stats.set(prefix + "packets", c.packets);
  for (size_t i = 0; i < decode_status_count; ++i)
    stats.set(prefix + "decode." + to_string(static_cast<decode_status>(i)), c.by_status[i]);
  stats.set(prefix + "non_tcp_udp", c.non_tcp_udp);
  stats.set(prefix + "fragments", c.fragments);
  stats.set(prefix + "reassembled", c.reassembled);
  stats.set(prefix + "reassembled_bad", c.reassembled_bad);
  stats.set(prefix + "reassembled_tunnels", c.reassembled_tunnels);
  for (size_t i = 0; i < c.decap.size(); ++i)
    stats.set(prefix + "decap." + to_string(static_cast<decap_kind>(i)), c.decap[i]);
  stats.set(prefix + "flows_active", table_.size());
  stats.set(prefix + "flows_created", c.flows_created);
  stats.set(prefix + "flows_ended.idle", c.flows_ended[static_cast<size_t>(flow_end_reason::idle)]);
  stats.set(prefix + "flows_reported.active",
            c.flows_ended[static_cast<size_t>(flow_end_reason::active)]);
  stats.set(prefix + "flows_ended.end", c.flows_ended[static_cast<size_t>(flow_end_reason::end)]);
  stats.set(prefix + "flows_ended.forced",
            c.flows_ended[static_cast<size_t>(flow_end_reason::forced)]);
  stats.set(prefix + "flows_ended.evicted",
            c.flows_ended[static_cast<size_t>(flow_end_reason::evicted)]);
  stats.set(prefix + "evictions", c.evictions);
  stats.set(prefix + "flows_confirmed", c.confirmed);
  stats.set(prefix + "memory.lean_flows", c.lean_flows);
  stats.set(prefix + "memory.evictions", c.memory_evictions);
  stats.set(prefix + "memory.evictions_confirmed", c.memory_evictions_confirmed);
  stats.set(prefix + "memory.chunk_refused", c.chunk_refused);
  stats.set(prefix + "memory.charged_bytes", static_cast<uint64_t>(std::max<int64_t>(account_.total(), 0)));
  stats.set(prefix + "table_full", c.table_full);
  stats.set(prefix + "port_reuse", c.port_reuse);
  stats.set(prefix + "detected_port", c.detected_port);
  stats.set(prefix + "detected_probe", c.detected_probe);
  stats.set(prefix + "undetected", c.undetected);
  stats.set(prefix + "detected_midstream", c.detected_midstream);
  stats.set(prefix + "probe_bytes", c.probe_bytes);
  stats.set(prefix + "probe_overflow", c.probe_overflow);
  stats.set(prefix + "probe_gaps", c.probe_gaps);
  stats.set(prefix + "parser_flows", c.parser_flows);
  stats.set(prefix + "events", c.events);
  stats.set(prefix + "bytes_zero_copy", c.bytes_zero_copy);
  stats.set(prefix + "bytes_copied", c.bytes_copied);
  stats.set(prefix + "frag_tally_collisions", c.frag_tally_collisions);
  stats.set(prefix + "raw.packets", c.raw_packets);
  stats.set(prefix + "raw.bytes", c.raw_bytes);
  stats.set(prefix + "raw.truncated", c.raw_truncated);
  stats.set(prefix + "raw.dropped", c.raw_dropped);
  stats.set(prefix + "tcp.in_order", c.tcp.in_order);
  stats.set(prefix + "tcp.out_of_order", c.tcp.out_of_order);
  stats.set(prefix + "tcp.retransmitted", c.tcp.retransmitted);
  stats.set(prefix + "tcp.gaps", c.tcp.gaps);
  stats.set(prefix + "tcp.bytes_gapped", c.tcp.bytes_gapped);
  stats.set(prefix + "tcp.limit_drops", c.tcp.limit_drops);
  stats.set(prefix + "tcp.keepalives", c.tcp.keepalives);
  const ip_reassembly_counters& r = reasm_.counters();
  stats.set(prefix + "ipreasm.timed_out", r.timed_out);
  stats.set(prefix + "ipreasm.duplicates", r.duplicates);
  stats.set(prefix + "ipreasm.overlaps", r.overlaps);
  stats.set(prefix + "ipreasm.invalid", r.invalid);
  stats.set(prefix + "ipreasm.limit_datagrams", r.limit_datagrams);
  stats.set(prefix + "ipreasm.limit_fragments", r.limit_fragments);
  stats.set(prefix + "ipreasm.limit_bytes", r.limit_bytes);
  stats.set(prefix + "ipreasm.refused", r.refused);
  if (const memory_budget* b = account_.budget(); b && shard_ == 0) {
    // The process-wide budget, published once (by shard 0).
    stats.set("memory.limit_bytes", b->limit());
    stats.set("memory.used_bytes", static_cast<uint64_t>(std::max<int64_t>(b->used(), 0)));
    stats.set("memory.peak_bytes", b->peak());
    stats.set("memory.pressure", static_cast<uint64_t>(b->pressure()));
    stats.set("memory.heap_over_bytes", static_cast<uint64_t>(b->heap_over()));
    stats.set("memory.heap_over_peak_bytes", b->heap_over_peak());
    uint64_t allocated = 0, resident = 0;
    if (memory_budget::heap_stats(allocated, resident)) {
      stats.set("memory.heap_allocated_bytes", allocated);
      stats.set("memory.heap_resident_bytes", resident);
    }
    for (size_t i = 0; i < memory_reason_count; ++i)
      stats.set(std::string("memory.") + memory_reason_names[i],
                b->counted(static_cast<memory_reason>(i)));
  }
  stats.set(prefix + "ipreasm.pending", reasm_.pending());
}

} // namespace metaprobe
