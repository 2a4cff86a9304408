// SPDX-License-Identifier: Apache-2.0
#include "exporters/ipfix/ipfix_decoder.hpp"

#include <cstring>

#include "exporters/ipfix/ipfix_encoder.hpp"

namespace metaprobe::ipfix {

namespace {

inline uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t rd32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}

// IANA elements outside the field table that metaprobe itself sends.
struct iana_name {
  uint16_t id;
  const char* name;
};
constexpr iana_name extra_iana_names[] = {
  {40, "exportedOctetTotalCount"},    {41, "exportedMessageTotalCount"},
  {42, "exportedFlowRecordTotalCount"}, {149, "observationDomainId"},
  {166, "notSentFlowTotalCount"},     {167, "notSentPacketTotalCount"},
  {168, "notSentOctetTotalCount"},
};

constexpr uint16_t stats_ids[] = {149, 41, 40, 42, 166};
constexpr uint16_t stats_lengths[] = {4, 8, 8, 8, 8};

value_kind kind_for(const element_def* e, uint16_t length) {
  if (e) {
    switch (e->type) {
    case abstract_type::unsigned8:
    case abstract_type::unsigned16:
    case abstract_type::unsigned32:
    case abstract_type::unsigned64:
      if (length >= 1 && length <= 8) return value_kind::unsigned_int;
      return value_kind::octets;
    case abstract_type::date_time_milliseconds:
      return length == 8 ? value_kind::date_time_ms : value_kind::octets;
    case abstract_type::ipv4_address: return length == 4 ? value_kind::ipv4 : value_kind::octets;
    case abstract_type::ipv6_address: return length == 16 ? value_kind::ipv6 : value_kind::octets;
    case abstract_type::mac_address: return length == 6 ? value_kind::mac : value_kind::octets;
    case abstract_type::string: return value_kind::string;
    case abstract_type::octet_array: return value_kind::octets;
    }
  }
  if (length >= 1 && length <= 8) return value_kind::unsigned_int;
  return value_kind::octets;
}

value_kind kind_for_type(abstract_type t, uint16_t length) {
  element_def e{0, 0, length, t, ""};
  return kind_for(&e, length);
}

} // namespace

struct ipfix_decoder::template_info {
  uint16_t id = 0;
  uint16_t scope_count = 0; // 0: a (non-options) template
  std::vector<field_def> fields;
  std::vector<value_kind> kinds;
  std::vector<std::string> names;
  std::string_view kind = "unknown";
  std::string_view family;
  std::string counter_key;
  size_t min_length = 0;
};

struct ipfix_decoder::session_state {
  struct seq_state {
    bool known = false;      // `expected` can be checked
    uint32_t expected = 0;
    // the previous message had a data set without template: its sequence
    // number and the records decoded from it
    bool unknown_pending = false;
    uint32_t unknown_seq = 0;
    uint32_t unknown_decoded = 0;
    domain_report report;
  };
  bool active = true;
  // key: domain << 16 | template id
  std::unordered_map<uint64_t, std::unique_ptr<template_info>> templates;
  std::map<uint32_t, seq_state> domains;
};

ipfix_decoder::ipfix_decoder(decoder_limits limits) : limits_(limits) {}
ipfix_decoder::~ipfix_decoder() = default;

void ipfix_decoder::end_session(uint64_t session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end() || !it->second->active) return;
  it->second->templates.clear();
  it->second->active = false;
  --active_sessions_;
}

std::vector<domain_report> ipfix_decoder::domains() const {
  std::vector<domain_report> out;
  for (const auto& [sid, s] : sessions_)
    for (const auto& [dom, st] : s->domains) out.push_back(st.report);
  return out;
}

std::vector<domain_report> ipfix_decoder::domains(uint64_t session) const {
  std::vector<domain_report> out;
  auto it = sessions_.find(session);
  if (it != sessions_.end())
    for (const auto& [dom, st] : it->second->domains) out.push_back(st.report);
  return out;
}

std::unique_ptr<ipfix_decoder::template_info>
ipfix_decoder::make_template(uint16_t tid, std::vector<field_def> fields, uint16_t scope_count) const {
  auto t = std::make_unique<template_info>();
  t->id = tid;
  t->scope_count = scope_count;
  t->fields = std::move(fields);
  const size_t n = t->fields.size();

  // Which table template is it? By id first, then by field list.
  auto matches = [&](const template_def& d) {
    if (d.field_count != n) return false;
    for (size_t i = 0; i < n; ++i) {
      if (d.fields[i].id != t->fields[i].id || d.fields[i].pen != t->fields[i].pen ||
          d.fields[i].length != t->fields[i].length)
        return false;
    }
    return true;
  };
  const template_def* known = nullptr;
  if (scope_count == 0) {
    const template_def* by_id = find_template_by_id(tid);
    if (by_id && matches(*by_id)) {
      known = by_id;
    } else {
      for (size_t i = 0; i < template_count && !known; ++i)
        if (matches(template_at(i))) known = &template_at(i);
    }
  }
  bool stats = scope_count == 1 && n == sizeof(stats_ids) / sizeof(stats_ids[0]);
  for (size_t i = 0; stats && i < n; ++i)
    stats = t->fields[i].pen == 0 && t->fields[i].id == stats_ids[i] &&
            t->fields[i].length == stats_lengths[i];

  t->names.reserve(n);
  t->kinds.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const field_def& f = t->fields[i];
    const element_def* e = find_element(f.pen, f.id);
    if (known) {
      t->names.emplace_back(known->fields[i].name);
      t->kinds.push_back(kind_for_type(known->fields[i].type, f.length));
      continue;
    }
    t->kinds.push_back(kind_for(e, f.length));
    if (e) {
      t->names.emplace_back(e->name);
      continue;
    }
    const char* iana = nullptr;
    if (f.pen == 0)
      for (const auto& x : extra_iana_names)
        if (x.id == f.id) iana = x.name;
    if (iana)
      t->names.emplace_back(iana);
    else if (f.pen)
      t->names.push_back("e" + std::to_string(f.pen) + "id" + std::to_string(f.id));
    else
      t->names.push_back(std::to_string(f.id));
  }
  if (known) {
    t->kind = known->kind_name;
    t->family = known->family_name;
    t->counter_key = std::string(known->kind_name) + "/" + known->family_name;
  } else if (stats) {
    t->kind = exporter_stats_kind_name;
    t->counter_key = exporter_stats_kind_name;
  } else {
    t->kind = scope_count ? "options" : "unknown";
    t->counter_key = std::string(t->kind) + "/" + std::to_string(tid);
  }
  size_t min = 0;
  for (const auto& f : t->fields) min += f.length == variable_length ? 1 : f.length;
  t->min_length = min;
  return t;
}

bool ipfix_decoder::decode_template_set(session_state& s, uint32_t domain, const uint8_t* p,
                                        size_t n, bool options) {
  size_t off = 0;
  while (n - off >= 4) {
    const uint16_t tid = rd16(p + off);
    const uint16_t count = rd16(p + off + 2);
    off += 4;
    if (count == 0) {
      // withdrawal (RFC 7011 §8.1); id 2 / 3 withdraws all of the set type
      ++stats_.template_withdrawals;
      if (tid == 2 || tid == 3) {
        for (auto it = s.templates.begin(); it != s.templates.end();) {
          if ((it->first >> 16) == domain && (it->second->scope_count != 0) == options)
            it = s.templates.erase(it);
          else
            ++it;
        }
      } else {
        s.templates.erase(static_cast<uint64_t>(domain) << 16 | tid);
      }
      continue;
    }
    if (tid < 256) {
      ++stats_.decode_errors;
      return false;
    }
    uint16_t scope = 0;
    if (options) {
      if (n - off < 2) {
        ++stats_.decode_errors;
        return false;
      }
      scope = rd16(p + off);
      off += 2;
      if (scope == 0 || scope > count) {
        ++stats_.decode_errors;
        return false;
      }
    }
    if (count > limits_.max_fields_per_template) {
      ++stats_.decode_errors;
      return false;
    }
    std::vector<field_def> fields;
    fields.reserve(count);
    for (uint16_t i = 0; i < count; ++i) {
      if (n - off < 4) {
        ++stats_.decode_errors;
        return false;
      }
      uint16_t id = rd16(p + off);
      const uint16_t len = rd16(p + off + 2);
      off += 4;
      uint32_t pen = 0;
      if (id & 0x8000) {
        if (n - off < 4) {
          ++stats_.decode_errors;
          return false;
        }
        pen = rd32(p + off);
        off += 4;
        id &= 0x7fff;
      }
      fields.push_back({id, pen, len, abstract_type::octet_array, ""});
    }
    const uint64_t key = static_cast<uint64_t>(domain) << 16 | tid;
    if (s.templates.size() >= limits_.max_templates_per_session && !s.templates.count(key)) {
      ++stats_.limit_drops;
      continue;
    }
    s.templates[key] = make_template(tid, std::move(fields), scope);
    ++stats_.template_records;
  }
  return true; // fewer than 4 octets left: padding
}

bool ipfix_decoder::decode_data_set(session_state& s, uint32_t domain, uint16_t set_id,
                                    const uint8_t* p, size_t n, const record_callback& cb,
                                    uint32_t& records, bool& unknown) {
  auto it = s.templates.find(static_cast<uint64_t>(domain) << 16 | set_id);
  if (it == s.templates.end()) {
    ++stats_.sets_without_template;
    unknown = true;
    return true;
  }
  const template_info& t = *it->second;
  rec_.kind = t.kind;
  rec_.family = t.family;
  rec_.template_id = t.id;
  rec_.options = t.scope_count != 0;
  rec_.observation_domain = domain;
  if (t.min_length == 0) {
    // every field has length 0: records would consume nothing
    ++stats_.decode_errors;
    return false;
  }
  size_t off = 0;
  while (n - off >= t.min_length) {
    rec_.fields.clear();
    for (size_t i = 0; i < t.fields.size(); ++i) {
      size_t len = t.fields[i].length;
      if (len == variable_length) {
        if (n - off < 1) {
          ++stats_.decode_errors;
          return false;
        }
        len = p[off++];
        if (len == 255) {
          if (n - off < 2) {
            ++stats_.decode_errors;
            return false;
          }
          len = rd16(p + off);
          off += 2;
        }
      }
      if (n - off < len) {
        ++stats_.decode_errors;
        return false;
      }
      decoded_field f;
      f.name = t.names[i];
      f.id = t.fields[i].id;
      f.pen = t.fields[i].pen;
      f.kind = t.kinds[i];
      f.data = p + off;
      f.size = len;
      if (f.kind == value_kind::unsigned_int || f.kind == value_kind::date_time_ms) {
        if (len >= 1 && len <= 8) {
          uint64_t v = 0;
          for (size_t b = 0; b < len; ++b) v = v << 8 | p[off + b];
          f.number = v;
        } else {
          f.kind = value_kind::octets; // variable-length encoded integer of odd size
        }
      } else if ((f.kind == value_kind::ipv4 && len != 4) || (f.kind == value_kind::ipv6 && len != 16) ||
                 (f.kind == value_kind::mac && len != 6)) {
        f.kind = value_kind::octets;
      }
      rec_.fields.push_back(f);
      off += len;
    }
    ++records;
    if (rec_.options)
      ++stats_.options_records;
    else
      ++stats_.data_records;
    ++stats_.records_per_kind[t.counter_key];
    ++s.domains[domain].report.records_per_template[t.id];
    if (cb) cb(rec_);
  }
  return true; // the rest (shorter than the smallest record) is padding
}

bool ipfix_decoder::decode(uint64_t session, const uint8_t* data, size_t len, const record_callback& cb) {
  if (len < 16 || rd16(data) != 10) {
    ++stats_.decode_errors;
    return false;
  }
  const size_t mlen = rd16(data + 2);
  if (mlen < 16 || mlen > len) {
    ++stats_.decode_errors;
    return false;
  }
  bool ok = true;
  if (mlen < len) {
    ++stats_.decode_errors; // trailing octets after the message
    ok = false;
  }
  auto sit = sessions_.find(session);
  if (sit == sessions_.end() || !sit->second->active) {
    if (active_sessions_ >= limits_.max_sessions) {
      ++stats_.limit_drops;
      return false;
    }
    if (sit == sessions_.end())
      sit = sessions_.emplace(session, std::make_unique<session_state>()).first;
    sit->second->active = true;
    ++active_sessions_;
  }
  session_state& s = *sit->second;
  const uint32_t export_time = rd32(data + 4);
  const uint32_t seq = rd32(data + 8);
  const uint32_t domain = rd32(data + 12);
  ++stats_.messages;
  rec_.session = session;
  rec_.export_time = export_time;
  const uint64_t errors_before = stats_.decode_errors - (ok ? 0 : 1);
  const uint64_t templates_before = stats_.template_records;
  const uint64_t unknown_sets_before = stats_.sets_without_template;

  auto& st = s.domains[domain];
  domain_report& rep = st.report;
  const bool first_message = rep.messages == 0;
  if (first_message) {
    rep.session = session;
    rep.domain = domain;
    rep.first_sequence = seq;
  }
  ++rep.messages;
  if (st.unknown_pending) {
    // the previous message's unreadable sets held what its sequence span
    // does not account for
    const uint32_t span = seq - st.unknown_seq;
    if (span < 0x80000000u && span >= st.unknown_decoded) {
      rep.records_without_template += span - st.unknown_decoded;
      stats_.records_without_template += span - st.unknown_decoded;
    }
    st.unknown_pending = false;
  }
  if (st.known && seq != st.expected) {
    ++rep.gaps;
    ++stats_.sequence_gaps;
    const uint32_t diff = seq - st.expected;
    if (diff < 0x80000000u) {
      rep.lost += diff;
      stats_.records_lost += diff;
    }
  }

  uint32_t records = 0;
  bool unknown = false;
  size_t off = 16;
  while (mlen - off >= 4) {
    const uint16_t set_id = rd16(data + off);
    const size_t set_len = rd16(data + off + 2);
    if (set_len < 4 || set_len > mlen - off) {
      ++stats_.decode_errors;
      ok = false;
      break;
    }
    const uint8_t* body = data + off + 4;
    const size_t blen = set_len - 4;
    bool set_ok = true;
    if (set_id == 2 || set_id == 3) {
      set_ok = decode_template_set(s, domain, body, blen, set_id == 3);
    } else if (set_id >= 256) {
      set_ok = decode_data_set(s, domain, set_id, body, blen, cb, records, unknown);
    } else {
      ++stats_.decode_errors; // reserved set id
      set_ok = false;
    }
    ok = ok && set_ok;
    off += set_len;
  }
  if (off != mlen) {
    ++stats_.decode_errors;
    ok = false;
  }
  rep.records += records;
  rep.decode_errors += stats_.decode_errors - errors_before;
  const uint64_t learnt = stats_.template_records - templates_before;
  rep.template_records += learnt;
  rep.sets_without_template += stats_.sets_without_template - unknown_sets_before;
  if (first_message) rep.first_message_templates = static_cast<uint32_t>(learnt);
  if (learnt && !rep.templates_seen) {
    rep.templates_seen = true;
    rep.first_template_sequence = seq;
  }
  // Without every data set decoded the record count is unknown: skip the
  // next gap check rather than report a false one.
  st.known = !unknown && ok;
  st.expected = seq + records;
  rep.next_sequence = seq + records;
  if (unknown) {
    st.unknown_pending = true;
    st.unknown_seq = seq;
    st.unknown_decoded = records;
  }
  return ok;
}

bool ipfix_stream_reader::feed(const uint8_t* data, size_t len, const message_callback& on_message) {
  if (failed_) return false;
  buf_.insert(buf_.end(), data, data + len);
  size_t off = 0;
  while (buf_.size() - off >= 4) {
    const uint8_t* p = buf_.data() + off;
    const uint16_t version = rd16(p);
    const size_t mlen = rd16(p + 2);
    if (version != 10 || mlen < 16) {
      failed_ = true;
      buf_.clear();
      return false;
    }
    if (buf_.size() - off < mlen) break;
    on_message(p, mlen);
    off += mlen;
  }
  buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(off));
  return true;
}

} // namespace metaprobe::ipfix
