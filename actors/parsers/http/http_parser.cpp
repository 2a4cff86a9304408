// SPDX-License-Identifier: Apache-2.0
#include "parsers/http/http_parser.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "parsers/common/field_text.hpp"
#include "parsers/websocket/ws_handshake.hpp"

namespace metaprobe {

using http::header_id;
using http::method_kind;

static_assert(http_counter_count <= parser_counters::max_extra,
              "the HTTP counters must fit parser_counters::extra");

protocol_entry http_protocol_entry() {
  protocol_entry e;
  e.id = app_protocol::http;
  e.name = "http";
  e.tcp_ports = {80, 8080, 8000, 8008, 8888, 3128, 3129, 81, 591};
  e.udp_ports = {1900};
  e.probe = &http_probe;
  e.make_stream = &make_http_parser;
  e.make_datagram = &make_http_datagram_parser;
  e.extra_counters = {
    "requests_extension_method", "h2_prefaces", "requests_no_version",
    "requests_bad_version", "requests_empty_target", "responses_no_status_line",
    "upgrades", "websocket_upgrades", "websocket_sip", "websocket_not_sip",
    "upgrade_hold_overflow", "ws_frames",
    "ws_messages", "ws_control_frames", "ws_oversize", "ws_compressed", "ws_damaged",
    "ws_protocol_errors", "ws_gap_failures",
  };
  return e;
}

bool http_probe(const uint8_t* data, size_t len, direction /*dir*/) {
  return http::looks_like_http(data, len);
}

std::unique_ptr<stream_parser> make_http_parser(const parser_options& opts,
                                                parser_counters& counters) {
  return std::make_unique<http_parser>(opts, counters);
}

std::unique_ptr<datagram_parser> make_http_datagram_parser(const parser_options& opts,
                                                           parser_counters& counters) {
  return std::make_unique<http_datagram_parser>(opts, counters);
}

http_datagram_parser::http_datagram_parser(const parser_options& opts,
                                           parser_counters& counters)
  : inner_(opts, counters) {}

void http_datagram_parser::deliver(direction dir, const uint8_t* data, size_t len,
                                   uint64_t ts_ns, record_sink& out) {
  inner_.deliver_datagram(dir, data, len, ts_ns, out);
  if (inner_.state() == parser_state::confirmed)
    state_ = parser_state::confirmed;
}

void http_parser::message::reset() {
  active = false;
  is_request = false;
  simple = false;
  seq = 0;
  method.clear();
  target.clear();
  version.clear();
  host.clear();
  user_agent.clear();
  referer.clear();
  cookie.clear();
  content_type.clear();
  location.clear();
  status = 0;
  has_length = false;
  content_length = 0;
  te_present = false;
  chunked = false;
  upgrade = false;
  upgrade_ws = false;
  ws_sip = false;
  cut = false;
  header_count = 0;
  header_bytes = 0;
  fold_target = nullptr;
}

http_parser::http_parser(const parser_options& opts, parser_counters& counters)
  : opts_(opts), counters_(counters) {}

void http_parser::deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
                          uint32_t seq, record_sink& out) {
  if (data == nullptr || len == 0)
    return;
  if (state_ == parser_state::done || state_ == parser_state::violated)
    return;
  if (ws_) {
    ws_->deliver(dir, data, len, ts_ns, out);
    ws_sync();
    return;
  }
  flush_simple_request(sides_[(static_cast<size_t>(dir) & 1) ^ 1], reverse(dir), ts_ns, out);
  process(sides_[static_cast<size_t>(dir) & 1], dir, data, len, ts_ns, seq, out);
}

void http_parser::deliver_datagram(direction dir, const uint8_t* data, size_t len,
                                   uint64_t ts_ns, record_sink& out) {
  datagram_mode_ = true;
  if (data == nullptr || len == 0)
    return;
  if (state_ != parser_state::confirmed)
    state_ = parser_state::probing; // every datagram gets its own chance
  side& s = sides_[static_cast<size_t>(dir) & 1];
  s.r = role::unknown;
  s.ph = phase::start_line;
  s.line.clear();
  s.line_cut = false;
  s.remaining = 0;
  s.resync_skipped = 0;
  s.msg.active = false;
  process(s, dir, data, len, ts_ns, 0, out);
  if (s.ph == phase::headers && s.msg.active) {
    if (!s.line.empty()) {
      std::string_view line = s.line;
      if (!s.line_cut && line.back() == '\r')
        line.remove_suffix(1);
      if (!line.empty())
        on_header_line(s, line);
    }
    finish_partial(s, dir, ts_ns, out);
  }
  s.line.clear();
  s.line_cut = false;
  s.ph = phase::ignore;
}

void http_parser::process(side& s, direction dir, const uint8_t* data, size_t len,
                          uint64_t ts_ns, uint32_t seq, record_sink& out) {
  size_t pos = 0;
  if (s.ph == phase::resync && (!s.line.empty() || s.line_cut) &&
      segment_starts_message(s, data, len)) {
    // Senders start messages on segment boundaries: a start line glued to
    // the tail of a lost body is found here rather than at a line start.
    note_skipped(s, s.line.size());
    s.line.clear();
    s.line_cut = false;
  }
  while (pos < len) {
    if (state_ == parser_state::done || state_ == parser_state::violated) {
      // A CONNECT 2xx or a 101 ended the header block in this segment: the
      // rest is the new protocol's.
      hand_over_rest(dir, data + pos, len - pos, ts_ns, seq + static_cast<uint32_t>(pos));
      return;
    }
    if (ws_) {
      // The 101 that ended this segment's header block switched protocols.
      ws_->deliver(dir, data + pos, len - pos, ts_ns, out);
      ws_sync();
      return;
    }
    if (s.hold) {
      hold_bytes(s, dir, data + pos, len - pos, ts_ns, seq + static_cast<uint32_t>(pos), out);
      return;
    }
    switch (s.ph) {
    case phase::ignore:
    case phase::until_close:
      return;
    case phase::body:
    case phase::chunk_data: {
      const size_t take = static_cast<size_t>(std::min<uint64_t>(s.remaining, len - pos));
      pos += take;
      s.remaining -= take;
      if (s.remaining == 0)
        s.ph = s.ph == phase::body ? phase::start_line : phase::chunk_data_end;
      continue;
    }
    default:
      break;
    }

    // Line-oriented phases.
    if (s.ph == phase::start_line && s.line.empty() && !s.line_cut &&
        data[pos] != '\r' && data[pos] != '\n' && awaits_simple_response(s)) {
      // After an HTTP/0.9 request: a status line or the body to close.
      constexpr std::string_view status_start = "HTTP/";
      const size_t n = std::min(len - pos, status_start.size());
      if (std::memcmp(data + pos, status_start.data(), n) != 0) {
        start_simple_response(s);
        return;
      }
    }
    const auto* nl = static_cast<const uint8_t*>(std::memchr(data + pos, '\n', len - pos));
    counters_.bytes_scanned += nl ? static_cast<size_t>(nl - (data + pos)) + 1 : len - pos;
    if (nl == nullptr) {
      // Keep the start of an unfinished line, up to max_line.
      const size_t avail = len - pos;
      if (s.line.empty() && !s.line_cut)
        s.line_seq = seq + static_cast<uint32_t>(pos);
      if (s.ph == phase::resync)
        note_skipped(s, avail);
      if (!s.line_cut) {
        const size_t room = opts_.max_line > s.line.size() ? opts_.max_line - s.line.size() : 0;
        s.line.append(reinterpret_cast<const char*>(data + pos), std::min(room, avail));
        if (avail > room) {
          s.line_cut = true;
          if (s.ph != phase::resync)
            ++counters_.limit_hits;
          // A start line this long must at least begin like one.
          if (s.ph == phase::start_line && http::match_method_token(s.line) == 0 &&
              s.line.compare(0, 5, "HTTP/") != 0) {
            note_skipped(s, s.line.size());
            start_resync(s);
          }
        }
      }
      return;
    }

    const size_t end = static_cast<size_t>(nl - data);
    std::string_view line;
    bool cut;
    uint32_t line_seq;
    if (s.line.empty() && !s.line_cut) {
      line = std::string_view(reinterpret_cast<const char*>(data + pos), end - pos);
      line_seq = seq + static_cast<uint32_t>(pos);
      cut = line.size() > opts_.max_line;
      if (cut) {
        line = line.substr(0, opts_.max_line);
        if (s.ph != phase::resync)
          ++counters_.limit_hits;
      }
    } else {
      if (!s.line_cut) {
        const size_t room = opts_.max_line > s.line.size() ? opts_.max_line - s.line.size() : 0;
        const size_t n = end - pos;
        s.line.append(reinterpret_cast<const char*>(data + pos), std::min(room, n));
        if (n > room) {
          s.line_cut = true;
          if (s.ph != phase::resync)
            ++counters_.limit_hits;
        }
      }
      line = s.line;
      cut = s.line_cut;
      line_seq = s.line_seq;
    }
    if (!cut && !line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    pos = end + 1;
    on_line(s, dir, line, cut, line_seq, ts_ns, out);
    s.line.clear();
    s.line_cut = false;
  }
}

bool http_parser::segment_starts_message(const side& s, const uint8_t* data, size_t len) const {
  const std::string_view v(reinterpret_cast<const char*>(data), std::min<size_t>(len, 32));
  if (s.r != role::responder && http::starts_request(data, len))
    return true;
  return s.r != role::requester && v.size() >= 8 && v.compare(0, 7, "HTTP/1.") == 0;
}

void http_parser::on_line(side& s, direction dir, std::string_view line, bool cut,
                          uint32_t line_seq, uint64_t ts_ns, record_sink& out) {
  switch (s.ph) {
  case phase::start_line:
    if (line.empty())
      return; // stray CRLF between messages
    if (try_start_line(s, line, cut, line_seq))
      return;
    if (awaits_simple_response(s)) {
      start_simple_response(s);
      return;
    }
    start_resync(s);
    note_skipped(s, line.size() + 1);
    return;
  case phase::resync:
    if (!line.empty() && try_start_line(s, line, cut, line_seq))
      return;
    note_skipped(s, line.size() + 1);
    return;
  case phase::headers:
    if (line.empty()) {
      end_of_headers(s, dir, ts_ns, out);
      return;
    }
    s.msg.header_bytes += line.size() + 2;
    if (s.msg.header_bytes > opts_.max_buffered) {
      // A header block this large is not worth following: report what we
      // have and look for the next message.
      ++counters_.limit_hits;
      finish_partial(s, dir, ts_ns, out);
      start_resync(s);
      return;
    }
    on_header_line(s, line);
    return;
  case phase::chunk_size: {
    if (line.empty())
      return; // tolerate an extra CRLF
    uint64_t size = 0;
    if (cut || !http::parse_chunk_size(line, size)) {
      start_resync(s);
      return;
    }
    if (size == 0) {
      s.ph = phase::trailers;
    } else {
      s.remaining = size;
      s.ph = phase::chunk_data;
    }
    return;
  }
  case phase::chunk_data_end:
    if (line.empty()) {
      s.ph = phase::chunk_size;
      return;
    }
    start_resync(s);
    return;
  case phase::trailers:
    if (line.empty())
      s.ph = phase::start_line; // message complete
    return;
  default:
    return;
  }
}

bool http_parser::try_start_line(side& s, std::string_view line, bool cut, uint32_t line_seq) {
  message& m = s.msg;
  if (s.r != role::responder && !awaits_simple_response(s)) {
    http::request_line rl;
    // The lenient forms only where a start line is due, not in resync (text
    // of a lost body).
    if (http::parse_request_line(line, cut, rl) &&
        (!rl.lenient() || s.ph == phase::start_line)) {
      if (http::is_h2_preface(rl)) {
        count(h2_prefaces); // HTTP/2 with prior knowledge: not HTTP/1 from here
        state_ = parser_state::done;
        return true;
      }
      if (!http::is_known_method(rl.method))
        count(requests_extension_method);
      if (rl.no_version)
        count(requests_no_version);
      if (rl.bad_version)
        count(requests_bad_version);
      if (rl.empty_target)
        count(requests_empty_target);
      m.reset();
      m.active = true;
      m.is_request = true;
      m.simple = rl.no_version;
      m.seq = line_seq;
      set_field(m.method, rl.method, m);
      set_field(m.target, rl.target, m);
      set_field(m.version, rl.version, m); // as sent, so maybe no HTTP/x.y
      s.r = role::requester;
      s.ph = phase::headers;
      s.resync_skipped = 0;
      if (state_ == parser_state::probing)
        state_ = parser_state::confirmed;
      return true;
    }
  }
  if (s.r != role::requester && !cut) {
    http::status_line sl;
    if (http::parse_status_line(line, sl)) {
      m.reset();
      m.active = true;
      m.is_request = false;
      m.seq = line_seq;
      m.status = sl.code;
      m.version.assign(sl.version.data(), sl.version.size());
      s.r = role::responder;
      s.ph = phase::headers;
      s.resync_skipped = 0;
      if (state_ == parser_state::probing)
        state_ = parser_state::confirmed;
      return true;
    }
  }
  return false;
}

bool http_parser::awaits_simple_response(const side& s) const {
  return s.r != role::requester && !datagram_mode_ && pending_size_ > 0 &&
         pending_[pending_head_].simple;
}

void http_parser::start_simple_response(side& s) {
  // HTTP/0.9 (RFC 1945 §4.1): no status line, no headers; the body ends
  // with the connection.
  (void)pop_pending();
  count(responses_no_status_line);
  ++counters_.messages;
  s.r = role::responder;
  s.ph = phase::until_close;
  s.line.clear();
  s.line_cut = false;
  s.resync_skipped = 0;
}

void http_parser::flush_simple_request(side& s, direction dir, uint64_t ts_ns,
                                       record_sink& out) {
  // An HTTP/0.9 request waits for header fields only until the other side
  // answers: then it is complete (fields sent later are skipped).
  if (s.ph == phase::headers && s.msg.active && s.msg.is_request && s.msg.simple &&
      !s.hold && !datagram_mode_)
    end_of_headers(s, dir, ts_ns, out);
}

void http_parser::on_header_line(side& s, std::string_view line) {
  message& m = s.msg;
  if (line.front() == ' ' || line.front() == '\t') {
    // obs-fold: the line continues the previous field value.
    if (m.fold_target != nullptr) {
      const std::string_view more = http::trim_ows(line);
      if (!more.empty()) {
        std::string& dst = *m.fold_target;
        bool lost = false;
        if (!dst.empty()) {
          if (dst.size() < opts_.max_field)
            dst.push_back(' ');
          else
            lost = true;
        }
        lost = text::append_utf8(dst, more, opts_.max_field) || lost;
        if (lost && !m.cut) {
          m.cut = true;
          ++counters_.truncated_fields;
        }
      }
    }
    return;
  }
  m.fold_target = nullptr;
  ++m.header_count;
  const bool over = m.header_count > opts_.max_headers;
  if (m.header_count == opts_.max_headers + 1)
    ++counters_.limit_hits;
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0)
    return; // not a field line: ignore it, as browsers and tshark do
  const std::string_view name = http::trim_ows(line.substr(0, colon));
  const std::string_view value = http::trim_ows(line.substr(colon + 1));
  const header_id id = http::classify_header(name);
  switch (id) {
  case header_id::content_length: {
    uint64_t n = 0;
    if (!m.has_length && http::parse_content_length(value, n)) {
      m.has_length = true;
      m.content_length = n;
    }
    return;
  }
  case header_id::transfer_encoding:
    m.te_present = true;
    m.chunked = http::is_chunked(value);
    return;
  case header_id::upgrade:
    m.upgrade = true;
    m.upgrade_ws = m.upgrade_ws || websocket::list_has_token(value, "websocket");
    return;
  case header_id::sec_websocket_protocol:
    m.ws_sip = m.ws_sip || websocket::list_has_token(value, websocket::sip_subprotocol);
    return;
  default:
    break;
  }
  if (over)
    return;
  std::string* dst = nullptr;
  switch (id) {
  case header_id::host:
    dst = m.is_request && m.host.empty() ? &m.host : nullptr;
    break;
  case header_id::user_agent:
    dst = m.is_request && m.user_agent.empty() ? &m.user_agent : nullptr;
    break;
  case header_id::referer:
    dst = m.is_request && m.referer.empty() ? &m.referer : nullptr;
    break;
  case header_id::content_type:
    dst = !m.is_request && m.content_type.empty() ? &m.content_type : nullptr;
    break;
  case header_id::location:
    dst = !m.is_request && m.location.empty() ? &m.location : nullptr;
    break;
  case header_id::cookie:
    if (m.is_request) {
      // Several Cookie fields are one list (RFC 6265 §5.4).
      if (!m.cookie.empty() && !value.empty()) {
        if (m.cookie.size() + 2 <= opts_.max_field) {
          m.cookie.append("; ");
        } else if (!m.cut) {
          m.cut = true;
          ++counters_.truncated_fields;
        }
      }
      if (text::append_utf8(m.cookie, value, opts_.max_field) && !m.cut) {
        m.cut = true;
        ++counters_.truncated_fields;
      }
      m.fold_target = &m.cookie;
    }
    return;
  default:
    return;
  }
  if (dst != nullptr) {
    set_field(*dst, value, m);
    m.fold_target = dst;
  }
}

void http_parser::set_field(std::string& dst, std::string_view value, message& m) {
  if (text::assign_utf8(dst, value, opts_.max_field)) {
    ++counters_.truncated_fields;
    m.cut = true;
  }
}

void http_parser::end_of_headers(side& s, direction dir, uint64_t ts_ns, record_sink& out) {
  message& m = s.msg;
  ++counters_.messages;
  if (datagram_mode_) {
    if (m.is_request)
      emit_request(s, dir, ts_ns, out);
    else
      emit_response(s, dir, ts_ns, out);
    s.ph = phase::ignore; // the rest of the datagram is the body
    return;
  }
  if (m.is_request) {
    const method_kind kind = http::classify_method(m.method);
    const bool chunked = m.chunked;
    const bool te_other = m.te_present && !m.chunked;
    const uint64_t length = m.has_length ? m.content_length : 0;
    const bool upgrade = m.upgrade;
    const bool simple = m.simple;
    emit_request(s, dir, ts_ns, out);
    // CONNECT, like an upgrade, may be followed by the tunnel's bytes
    // before the response (a client that does not wait).
    const bool switches = upgrade || kind == method_kind::connect;
    push_pending({kind, switches, simple});
    if (switches && !s.hold_off && !chunked && !te_other && length == 0) {
      // What follows may already be the new protocol: hold it until the
      // response says (RFC 9110 §7.8, §9.3.6).
      s.hold = true;
      s.held.clear();
      s.ph = phase::start_line;
      return;
    }
    if (chunked) {
      s.ph = phase::chunk_size;
    } else if (te_other) {
      start_resync(s); // RFC 9112 §6.3: cannot be framed
    } else if (length > 0) {
      s.remaining = length;
      s.ph = phase::body;
    } else {
      s.ph = phase::start_line;
    }
    return;
  }

  const uint32_t code = m.status;
  const bool chunked = m.chunked;
  const bool te_present = m.te_present;
  const bool has_length = m.has_length;
  const uint64_t length = m.content_length;
  const bool upgrade_ws = m.upgrade_ws;
  const bool ws_sip = m.ws_sip;
  emit_response(s, dir, ts_ns, out);
  if (code == 101) {
    // Another protocol takes the connection over (RFC 9110 §15.2.2).
    (void)pop_pending();
    count(upgrades);
    if (upgrade_ws) {
      count(websocket_upgrades);
      if (ws_sip) {
        start_websocket_sip(s, dir, ts_ns, out);
        return;
      }
      count(websocket_not_sip);
    }
    switch_protocols(dir, handover_kind::upgrade, ts_ns);
    return;
  }
  if (code < 200) {
    s.ph = phase::start_line; // interim response; the final one follows
    return;
  }
  const pending_request req = pop_pending();
  const method_kind kind = req.kind;
  if (kind == method_kind::connect && code < 300) {
    switch_protocols(dir, handover_kind::connect, ts_ns); // a tunnel
    return;
  }
  if (req.upgrade) {
    // The upgrade or CONNECT was refused: what the requester sent meanwhile is HTTP.
    side& rq = sides_[(static_cast<size_t>(dir) & 1) ^ 1];
    if (rq.hold)
      release_hold(rq, reverse(dir), ts_ns, out);
  }
  if (kind == method_kind::head || code == 204 || code == 304) {
    s.ph = phase::start_line;
  } else if (chunked) {
    s.ph = phase::chunk_size;
  } else if (te_present) {
    s.ph = phase::until_close;
  } else if (has_length) {
    s.remaining = length;
    s.ph = length > 0 ? phase::body : phase::start_line;
  } else {
    s.ph = phase::until_close;
  }
}

void http_parser::emit_request(side& s, direction dir, uint64_t ts_ns, record_sink& out) {
  message& m = s.msg;
  m.active = false;
  if (http::is_notification(m.method))
    return; // UPnP eventing, not a page request
  if (flow_host_.empty() && !m.host.empty())
    flow_host_ = m.host;
  parsed_record rec;
  rec.ts_ns = ts_ns;
  rec.dir = dir;
  rec.tcp_seq = m.seq;
  v1::Clickstream* c = rec.record.mutable_clickstream();
  c->set_host_type(1);
  c->set_method(http::method_code(m.method));
  c->set_method_name(std::move(m.method));
  c->set_path(std::move(m.target));
  c->set_http_version(std::move(m.version));
  c->set_hostname(std::move(m.host));
  c->set_user_agent(std::move(m.user_agent));
  c->set_referer(std::move(m.referer));
  c->set_cookie(std::move(m.cookie));
  c->set_tcp_sequence(m.seq);
  emit(std::move(rec), out);
}

void http_parser::emit_response(side& s, direction dir, uint64_t ts_ns, record_sink& out) {
  message& m = s.msg;
  m.active = false;
  if (!opts_.http_parse_reply)
    return;
  parsed_record rec;
  rec.ts_ns = ts_ns;
  rec.dir = dir;
  rec.tcp_seq = m.seq;
  v1::HttpReply* r = rec.record.mutable_http_reply();
  r->set_result_code(m.status);
  r->set_content_length(m.has_length ? m.content_length : 0);
  r->set_content_type(std::move(m.content_type));
  r->set_location(std::move(m.location));
  emit(std::move(rec), out);
}

bool http_parser::emit(parsed_record&& rec, record_sink& out) {
  if (records_ >= opts_.max_records_per_flow) {
    ++counters_.limit_hits;
    return false;
  }
  ++records_;
  ++counters_.records;
  out.push_back(std::move(rec));
  return true;
}

void http_parser::finish_partial(side& s, direction dir, uint64_t ts_ns, record_sink& out) {
  if (!s.msg.active)
    return;
  ++counters_.messages;
  if (s.msg.is_request)
    emit_request(s, dir, ts_ns, out);
  else
    emit_response(s, dir, ts_ns, out);
}

void http_parser::start_resync(side& s) {
  s.ph = phase::resync;
  s.msg.active = false;
  s.msg.fold_target = nullptr;
  s.remaining = 0;
  s.resync_skipped = 0;
}

void http_parser::note_skipped(side& s, size_t n) {
  s.resync_skipped += n;
  if (state_ == parser_state::probing && s.resync_skipped > opts_.max_buffered) {
    state_ = parser_state::violated;
    ++counters_.violations;
  }
}

void http_parser::gap(direction dir, size_t len) {
  ++counters_.gaps;
  if (state_ == parser_state::done || state_ == parser_state::violated)
    return;
  if (ws_) {
    ws_->gap(dir, len);
    ws_sync();
    return;
  }
  side& s = sides_[static_cast<size_t>(dir) & 1];
  if (s.hold) {
    // Held bytes with a hole: neither HTTP nor the new protocol can use them.
    s.hold = false;
    s.held.clear();
    s.line.clear();
    s.line_cut = false;
    start_resync(s);
    return;
  }
  switch (s.ph) {
  case phase::body:
  case phase::chunk_data:
    if (len < s.remaining) {
      s.remaining -= len;
    } else if (len == s.remaining) {
      s.remaining = 0;
      s.ph = s.ph == phase::body ? phase::start_line : phase::chunk_data_end;
    } else {
      start_resync(s); // the gap swallowed a message boundary
    }
    return;
  case phase::until_close:
  case phase::ignore:
    return;
  default:
    // Inside a line or a header block: the partial message is lost.
    s.line.clear();
    s.line_cut = false;
    start_resync(s);
    return;
  }
}

void http_parser::finish(uint64_t ts_ns, record_sink& out) {
  if (state_ == parser_state::violated)
    return;
  for (size_t i = 0; i < 2; ++i) {
    side& s = sides_[i];
    const auto dir = static_cast<direction>(i);
    if (s.hold && state_ != parser_state::done && !ws_)
      release_hold(s, dir, ts_ns, out); // no response came: the bytes are HTTP
    if (state_ != parser_state::done && !ws_ && s.ph == phase::headers && s.msg.active) {
      // The flow ended inside a header block: report what was there.
      if (!s.line.empty()) {
        std::string_view line = s.line;
        if (!s.line_cut && line.back() == '\r')
          line.remove_suffix(1);
        if (!line.empty())
          on_header_line(s, line);
      }
      finish_partial(s, dir, ts_ns, out);
    }
    s.line.clear();
    s.line_cut = false;
    s.ph = phase::ignore;
  }
}

void http_parser::push_pending(pending_request k) {
  if (pending_size_ == pending_cap) {
    // No responses seen for a long time (one-sided capture): forget the oldest.
    ++counters_.limit_hits;
    pending_head_ = (pending_head_ + 1) % pending_cap;
    --pending_size_;
  }
  pending_[(pending_head_ + pending_size_) % pending_cap] = k;
  ++pending_size_;
}

http_parser::pending_request http_parser::pop_pending() {
  if (pending_size_ == 0)
    return {}; // request not seen (capture started late)
  const pending_request k = pending_[pending_head_];
  pending_head_ = (pending_head_ + 1) % pending_cap;
  --pending_size_;
  return k;
}

void http_parser::hold_bytes(side& s, direction dir, const uint8_t* data, size_t len,
                             uint64_t ts_ns, uint32_t seq, record_sink& out) {
  if (s.held.empty())
    s.held_seq = seq;
  if (s.held.size() + len <= opts_.max_buffered) {
    s.held.append(reinterpret_cast<const char*>(data), len);
    return;
  }
  // No response for this long (a one-sided capture, a server that never
  // answers): parse as HTTP what was held and what came, and hold no more
  // on this side.
  count(upgrade_hold_overflow);
  ++counters_.limit_hits;
  s.hold_off = true;
  release_hold(s, dir, ts_ns, out);
  if (state_ == parser_state::done || state_ == parser_state::violated)
    return;
  process(s, dir, data, len, ts_ns, seq, out);
}

void http_parser::release_hold(side& s, direction dir, uint64_t ts_ns, record_sink& out) {
  s.hold = false;
  std::string held = std::move(s.held);
  s.held.clear();
  if (!held.empty())
    process(s, dir, reinterpret_cast<const uint8_t*>(held.data()), held.size(), ts_ns,
            s.held_seq, out);
}

void http_parser::switch_protocols(direction responder, handover_kind kind, uint64_t ts_ns) {
  stream_handover& h = hand_over(kind);
  side& rq = sides_[(static_cast<size_t>(responder) & 1) ^ 1];
  if (rq.hold && !rq.held.empty()) {
    stream_piece p;
    p.dir = reverse(responder);
    p.seq = rq.held_seq;
    p.ts_ns = ts_ns;
    p.bytes = std::move(rq.held);
    h.pending.push_back(std::move(p));
  }
  rq.hold = false;
  rq.held.clear();
}

void http_parser::start_websocket_sip(side& responder, direction dir, uint64_t ts_ns,
                                      record_sink& out) {
  count(websocket_sip);
  ws_ = std::make_unique<sip_ws_session>(opts_, counters_);
  side& rq = sides_[(static_cast<size_t>(dir) & 1) ^ 1];
  responder.ph = phase::ignore;
  rq.ph = phase::ignore;
  rq.hold = false;
  const std::string held = std::move(rq.held);
  rq.held.clear();
  rq.held.shrink_to_fit();
  if (!held.empty())
    ws_->deliver(reverse(dir), reinterpret_cast<const uint8_t*>(held.data()), held.size(),
                 ts_ns, out);
  ws_sync();
}

void http_parser::ws_sync() {
  const websocket::counters c = ws_->take_counters();
  counters_.extra[ws_frames] += c.frames;
  counters_.extra[ws_messages] += c.messages;
  counters_.extra[ws_control_frames] += c.control_frames;
  counters_.extra[ws_oversize] += c.oversize;
  counters_.extra[ws_compressed] += c.compressed;
  counters_.extra[ws_damaged] += c.damaged;
  counters_.extra[ws_protocol_errors] += c.protocol_errors;
  counters_.extra[ws_gap_failures] += c.gap_failures;
  counters_.limit_hits += c.oversize; // the max_buffered bound was hit
  if (ws_->over())
    state_ = parser_state::done;
}


size_t http_parser::memory_bytes() const {
  size_t n = sizeof(*this) + heap_bytes(flow_host_);
  for (const auto& s : sides_) {
    const auto& m = s.msg;
    n += heap_bytes(s.line, s.held) +
         heap_bytes(m.method, m.target, m.version, m.host, m.user_agent, m.referer, m.cookie,
                    m.content_type, m.location);
  }
  if (ws_)
    n += ws_->memory_bytes();
  return n;
}

size_t http_datagram_parser::memory_bytes() const {
  return inner_.memory_bytes();
}

} // namespace metaprobe
