// SPDX-License-Identifier: Apache-2.0
#include "parsers/sip/sip_parser.hpp"

#include <algorithm>

#include "parsers/common/field_text.hpp"
#include "parsers/common/text_line.hpp"
#include "parsers/sip/sip_message.hpp"

namespace metaprobe {

using sip::header_id;

protocol_entry sip_protocol_entry() {
  protocol_entry e;
  e.id = app_protocol::sip;
  e.name = "sip";
  e.tcp_ports = {5060};
  e.udp_ports = {5060};
  e.probe = &sip_probe;
  e.make_stream = &make_sip_stream_parser;
  e.make_datagram = &make_sip_datagram_parser;
  return e;
}

bool sip_probe(const uint8_t* data, size_t len, direction /*dir*/) {
  return sip::looks_like_sip(data, len);
}

std::unique_ptr<stream_parser> make_sip_stream_parser(const parser_options& opts,
                                                      parser_counters& counters) {
  return std::make_unique<sip_stream_parser>(opts, counters);
}

std::unique_ptr<datagram_parser> make_sip_datagram_parser(const parser_options& opts,
                                                          parser_counters& counters) {
  return std::make_unique<sip_datagram_parser>(opts, counters);
}

namespace {

// Finds the empty line that ends the header block starting at s[0]. The
// search resumes where an earlier call on the same block stopped: `line` is
// the start of the unfinished line it ended in, `end` the first byte it did
// not read (both 0 for a new block; updated when the end is not there yet).
// head_len: bytes of the block before the empty line; body_off: first byte
// after it. `scanned` counts the bytes read: each byte once.
bool find_head_end(std::string_view s, size_t& line, size_t& end, size_t& head_len,
                   size_t& body_off, uint64_t& scanned) {
  size_t ls = line;
  size_t pos = std::max(line, end);
  while (true) {
    const size_t nl = pos < s.size() ? s.find('\n', pos) : std::string_view::npos;
    if (nl == std::string_view::npos) {
      scanned += s.size() - std::min(pos, s.size());
      line = ls;
      end = s.size();
      return false;
    }
    scanned += nl + 1 - pos;
    const size_t line_len = nl - ls;
    if (ls > 0 && (line_len == 0 || (line_len == 1 && s[ls] == '\r'))) {
      head_len = ls;
      body_off = nl + 1;
      return true;
    }
    ls = nl + 1;
    pos = ls;
  }
}

// Keep-alives between messages: CRLF (RFC 5626), and the runs of spaces or
// NULs some phones send instead.
void skip_keepalive(std::string_view& v) {
  size_t n = 0;
  while (n < v.size() && (v[n] == '\r' || v[n] == '\n' || v[n] == ' ' || v[n] == '\t' ||
                          v[n] == '\0'))
    ++n;
  v.remove_prefix(n);
}

} // namespace

sip_engine::sip_engine(const parser_options& opts, parser_counters& counters)
  : opts_(opts), counters_(counters) {}

void sip_engine::violate() {
  if (state_ != parser_state::violated) {
    state_ = parser_state::violated;
    ++counters_.violations;
  }
}

void sip_engine::set_text(std::string* dst, std::string_view value) {
  if (text::assign_utf8(*dst, value, opts_.max_field))
    ++counters_.truncated_fields;
}

sip_engine::head_result sip_engine::on_head(std::string_view head, direction dir,
                                            uint64_t ts_ns, uint32_t seq, bool& has_length,
                                            uint64_t& content_length, record_sink& out) {
  has_length = false;
  content_length = 0;
  std::string_view start;
  size_t nl = text::next_line(head, start);
  std::string_view rest = nl == std::string_view::npos ? std::string_view{} : head.substr(nl + 1);
  if (nl == std::string_view::npos) {
    start = head;
    if (!start.empty() && start.back() == '\r')
      start.remove_suffix(1);
  }
  sip::request_line rl;
  sip::status_line sl;
  const bool is_request = sip::parse_request_line(start, rl);
  if (!is_request && !sip::parse_status_line(start, sl))
    return head_result::bad_start_line;
  ++counters_.messages;
  if (state_ == parser_state::probing)
    state_ = parser_state::confirmed;

  // Header values of interest: the first occurrence each (unfolded).
  std::string from, to, callid, uagent, ctype, cseq, gateways;
  bool have[9] = {};
  size_t via_seen = 0;
  size_t headers = 0;
  bool headers_cut = false;
  std::string value; // the header being read (folded lines joined)
  header_id cur = header_id::other;
  bool cur_active = false;

  auto finish_header = [&]() {
    if (!cur_active)
      return;
    cur_active = false;
    const std::string_view v = text::trim_ows(value);
    const auto idx = static_cast<size_t>(cur);
    switch (cur) {
    case header_id::via:
      via_seen += sip::for_each_via_host(v, max_via > via_seen ? max_via - via_seen : 0,
                                         [&](std::string_view host) {
                                           if (!gateways.empty())
                                             gateways.push_back(',');
                                           gateways.append(host);
                                         });
      return;
    case header_id::content_length: {
      uint64_t n = 0;
      if (!has_length && text::parse_uint(v, n)) {
        has_length = true;
        content_length = n;
      }
      return;
    }
    case header_id::other:
      return;
    default:
      break;
    }
    if (have[idx])
      return;
    have[idx] = true;
    switch (cur) {
    case header_id::from: from.assign(sip::address_uri(v)); break;
    case header_id::to: to.assign(sip::address_uri(v)); break;
    case header_id::call_id: callid.assign(v); break;
    case header_id::user_agent: uagent.assign(v); break;
    case header_id::content_type: ctype.assign(v); break;
    case header_id::cseq: cseq.assign(v); break;
    default: break;
    }
  };

  while (!rest.empty()) {
    std::string_view line;
    nl = text::next_line(rest, line);
    if (nl == std::string_view::npos) {
      line = rest;
      if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
      rest = {};
    } else {
      rest.remove_prefix(nl + 1);
    }
    if (line.size() > opts_.max_line) {
      line = line.substr(0, opts_.max_line);
      ++counters_.limit_hits;
    }
    if (!line.empty() && text::is_ows(line.front())) {
      if (cur_active && value.size() < opts_.max_buffered) {
        value.push_back(' ');
        value.append(text::trim_ows(line));
      }
      continue;
    }
    finish_header();
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos)
      continue; // not a header line
    const header_id id = sip::classify_header(text::trim_ows(line.substr(0, colon)));
    if (++headers > opts_.max_headers) {
      if (!headers_cut) {
        headers_cut = true;
        ++counters_.limit_hits;
      }
      if (id != header_id::content_length)
        continue;
    }
    if (id == header_id::other)
      continue;
    cur = id;
    cur_active = true;
    value.assign(line.substr(colon + 1));
  }
  finish_header();
  if (via_seen > max_via)
    ++counters_.limit_hits;

  if (records_ >= opts_.max_records_per_flow) {
    ++counters_.limit_hits;
    return head_result::ok;
  }
  parsed_record pr;
  auto* m = pr.record.mutable_sip();
  if (is_request) {
    set_text(m->mutable_msg_code(), rl.method);
    set_text(m->mutable_uri(), rl.uri);
  } else {
    set_text(m->mutable_msg_code(), sip::cseq_method(cseq));
    m->set_status_code(sl.code);
  }
  set_text(m->mutable_from(), from);
  set_text(m->mutable_to(), to);
  set_text(m->mutable_callid(), callid);
  set_text(m->mutable_uagent(), uagent);
  set_text(m->mutable_ctype(), ctype);
  set_text(m->mutable_gateways(), gateways);
  pr.ts_ns = ts_ns;
  pr.dir = dir;
  pr.tcp_seq = seq;
  out.push_back(std::move(pr));
  ++records_;
  ++counters_.records;
  return head_result::ok;
}

// ---------------------------------------------------------------- datagrams

void sip_engine::on_datagram(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
                             record_sink& out) {
  if (state_ == parser_state::violated || state_ == parser_state::done || !data)
    return;
  std::string_view v(reinterpret_cast<const char*>(data), len);
  bool first = true;
  while (true) {
    skip_keepalive(v);
    if (v.empty())
      return;
    size_t head_len = 0, body_off = 0, line = 0, end = 0;
    if (!find_head_end(v, line, end, head_len, body_off, counters_.bytes_scanned)) {
      head_len = v.size(); // no empty line: the datagram ends the headers
      body_off = v.size();
    }
    bool has_length = false;
    uint64_t cl = 0;
    if (on_head(v.substr(0, head_len), dir, ts_ns, 0, has_length, cl, out) ==
        head_result::bad_start_line) {
      if (first && state_ == parser_state::probing && ++bad_datagrams_ >= probe_bad_datagrams)
        violate();
      return;
    }
    first = false;
    if (!has_length)
      return; // the body runs to the end of the datagram
    v.remove_prefix(body_off);
    v.remove_prefix(static_cast<size_t>(std::min<uint64_t>(cl, v.size())));
  }
}

// ---------------------------------------------------------------- streams

void sip_engine::on_stream(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
                           uint32_t seq, record_sink& out) {
  side& s = sides_[static_cast<size_t>(dir) & 1];
  const size_t chunk_max = std::max<size_t>(opts_.max_buffered, 64) + 1;
  while (len > 0 && data && state_ != parser_state::violated && state_ != parser_state::done) {
    if (s.skip > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(s.skip, len));
      s.skip -= n;
      data += n;
      len -= n;
      seq += static_cast<uint32_t>(n);
      if (len == 0)
        return;
    }
    const size_t n = std::min(len, chunk_max);
    if (s.off >= s.buf.size()) {
      s.buf.clear();
      s.off = 0;
      s.buf_seq = seq;
    }
    s.buf.append(reinterpret_cast<const char*>(data), n);
    data += n;
    len -= n;
    seq += static_cast<uint32_t>(n);
    process(s, dir, ts_ns, out);
  }
}

bool sip_engine::resync(side& s) {
  while (true) {
    std::string_view v(s.buf);
    v.remove_prefix(s.off);
    // The end of the line, searched from where the last delivery stopped.
    const size_t nl = s.scan < v.size() ? v.find('\n', s.scan) : std::string_view::npos;
    if (nl == std::string_view::npos) {
      counters_.bytes_scanned += v.size() - std::min(s.scan, v.size());
      s.scan = v.size();
      if (v.size() > opts_.max_buffered) { // one endless line: drop it
        ++counters_.limit_hits;
        s.off = s.buf.size();
        s.scan = 0;
      }
      return false;
    }
    counters_.bytes_scanned += nl + 1 - std::min(s.scan, nl + 1);
    s.scan = 0;
    std::string_view line = v.substr(0, nl);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    sip::request_line rl;
    sip::status_line sl;
    if (sip::parse_request_line(line, rl) || sip::parse_status_line(line, sl)) {
      s.resync = false;
      return true;
    }
    s.off += nl + 1;
  }
}

void sip_engine::process(side& s, direction dir, uint64_t ts_ns, record_sink& out) {
  while (state_ != parser_state::violated) {
    std::string_view v(s.buf);
    v.remove_prefix(s.off);
    const size_t before = v.size();
    skip_keepalive(v);
    s.off += before - v.size();
    if (v.empty())
      break;
    if (s.resync) {
      if (!resync(s))
        break;
      continue;
    }
    size_t head_len = 0, body_off = 0;
    if (!find_head_end(v, s.scan_line, s.scan, head_len, body_off, counters_.bytes_scanned)) {
      if (v.size() > opts_.max_buffered) {
        ++counters_.limit_hits;
        if (state_ == parser_state::probing) {
          violate();
          return;
        }
        s.off = s.buf.size();
        s.scan = s.scan_line = 0;
        s.resync = true;
      }
      break;
    }
    s.scan = s.scan_line = 0; // the next message's search starts at its first byte
    bool has_length = false;
    uint64_t cl = 0;
    const uint32_t seq = s.buf_seq + static_cast<uint32_t>(s.off);
    if (on_head(v.substr(0, head_len), dir, ts_ns, seq, has_length, cl, out) ==
        head_result::bad_start_line) {
      if (state_ != parser_state::confirmed) {
        violate();
        return;
      }
      s.resync = true;
      continue;
    }
    s.off += body_off;
    const uint64_t avail = s.buf.size() - s.off;
    const uint64_t take = std::min<uint64_t>(avail, cl);
    s.off += static_cast<size_t>(take);
    s.skip = cl - take;
  }
  // Compact: keep only the unconsumed tail.
  if (s.off >= s.buf.size()) {
    s.buf_seq += static_cast<uint32_t>(s.buf.size());
    s.buf.clear();
    s.off = 0;
  } else if (s.off > 0) {
    s.buf_seq += static_cast<uint32_t>(s.off);
    s.buf.erase(0, s.off);
    s.off = 0;
  }
}

void sip_engine::on_gap(direction dir, size_t len) {
  side& s = sides_[static_cast<size_t>(dir) & 1];
  ++counters_.gaps;
  if (s.skip >= len) {
    s.skip -= len; // lost body bytes only
    return;
  }
  s.skip = 0;
  s.buf.clear();
  s.off = 0;
  s.scan = s.scan_line = 0;
  s.resync = true;
}

// ---------------------------------------------------------------- adapters

sip_stream_parser::sip_stream_parser(const parser_options& opts, parser_counters& counters)
  : engine_(opts, counters) {}

void sip_stream_parser::deliver(direction dir, const uint8_t* data, size_t len,
                                uint64_t ts_ns, uint32_t seq, record_sink& out) {
  engine_.on_stream(dir, data, len, ts_ns, seq, out);
  state_ = engine_.state();
}

void sip_stream_parser::gap(direction dir, size_t len) {
  engine_.on_gap(dir, len);
  state_ = engine_.state();
}

void sip_stream_parser::finish(uint64_t /*ts_ns*/, record_sink& /*out*/) {
  // A header block that never completed is not reported: nothing pending.
  state_ = engine_.state();
}

sip_datagram_parser::sip_datagram_parser(const parser_options& opts, parser_counters& counters)
  : engine_(opts, counters) {}

void sip_datagram_parser::deliver(direction dir, const uint8_t* data, size_t len,
                                  uint64_t ts_ns, record_sink& out) {
  engine_.on_datagram(dir, data, len, ts_ns, out);
  state_ = engine_.state();
}


size_t sip_stream_parser::memory_bytes() const {
  return sizeof(*this) + engine_.memory_bytes();
}

size_t sip_datagram_parser::memory_bytes() const {
  return sizeof(*this) + engine_.memory_bytes();
}

} // namespace metaprobe
