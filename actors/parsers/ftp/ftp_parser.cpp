// SPDX-License-Identifier: Apache-2.0
#include "parsers/ftp/ftp_parser.hpp"

#include <algorithm>
#include <cstring>

#include "parsers/common/field_text.hpp"
#include "parsers/common/text_line.hpp"

namespace metaprobe {

using ftp::command_id;

protocol_entry ftp_protocol_entry() {
  protocol_entry e;
  e.id = app_protocol::ftp;
  e.name = "ftp";
  e.tcp_ports = {21};
  e.probe = &ftp_probe;
  e.make_stream = &make_ftp_parser;
  e.relays_unparsed_flows = true; // data connections: ordered after the PASV/PORT records
  return e;
}

bool ftp_probe(const uint8_t* data, size_t len, direction /*dir*/) {
  return ftp::looks_like_ftp(data, len);
}

std::unique_ptr<stream_parser> make_ftp_parser(const parser_options& opts,
                                               parser_counters& counters) {
  return std::make_unique<ftp_parser>(opts, counters);
}

ftp_parser::ftp_parser(const parser_options& opts, parser_counters& counters)
  : opts_(opts), counters_(counters) {}

void ftp_parser::violate() {
  if (state_ != parser_state::violated) {
    state_ = parser_state::violated;
    ++counters_.violations;
  }
}

void ftp_parser::set_text(std::string& dst, std::string_view v) {
  if (text::assign_utf8(dst, v, opts_.max_field))
    ++counters_.truncated_fields;
}

void ftp_parser::deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
                         uint32_t /*seq*/, record_sink& out) {
  side& s = sides_[static_cast<size_t>(dir) & 1];
  while (len > 0 && data && state_ != parser_state::violated && state_ != parser_state::done) {
    if (s.ph == phase::ignore)
      return;
    if (s.ph == phase::tls)
      process_tls(s, data, len);
    else
      process_clear(s, dir, data, len, ts_ns, out);
  }
}

void ftp_parser::process_clear(side& s, direction dir, const uint8_t*& data, size_t& len,
                               uint64_t ts_ns, record_sink& out) {
  // A TLS record where a line would start, after AUTH: the side is in TLS.
  if (s.line.empty() && !s.line_cut && auth_sent_ && data[0] >= 20 && data[0] <= 23) {
    s.ph = phase::tls;
    s.tls_hdr_len = 0;
    s.tls_remaining = 0;
    return;
  }
  const auto* nl = static_cast<const uint8_t*>(std::memchr(data, '\n', len));
  const size_t take = nl ? static_cast<size_t>(nl - data) : len;
  counters_.bytes_scanned += nl ? take + 1 : len;
  const size_t room = s.line.size() < opts_.max_line ? opts_.max_line - s.line.size() : 0;
  if (take > room) {
    if (!s.line_cut) {
      s.line_cut = true;
      ++counters_.limit_hits;
    }
    s.line.append(reinterpret_cast<const char*>(data), room);
  } else {
    s.line.append(reinterpret_cast<const char*>(data), take);
  }
  if (!nl) {
    data += len;
    len = 0;
    return;
  }
  data += take + 1;
  len -= take + 1;
  std::string_view line(s.line);
  if (!line.empty() && line.back() == '\r')
    line.remove_suffix(1);
  on_line(s, dir, line, ts_ns, out);
  s.line.clear();
  s.line_cut = false;
}

void ftp_parser::process_tls(side& s, const uint8_t*& data, size_t& len) {
  while (len > 0) {
    if (s.tls_remaining > 0) {
      const size_t n = std::min<size_t>(s.tls_remaining, len);
      s.tls_remaining -= static_cast<uint32_t>(n);
      data += n;
      len -= n;
      continue;
    }
    const uint8_t b = data[0];
    const size_t i = s.tls_hdr_len;
    const bool ok = (i == 0 && b >= 20 && b <= 23) || (i == 1 && b == 3) ||
                    (i == 2 && b <= 4) || i >= 3;
    if (!ok) {
      // Not a TLS record: clear text again; the header bytes start the line.
      s.ph = phase::clear;
      s.line.assign(reinterpret_cast<const char*>(s.tls_hdr.data()), s.tls_hdr_len);
      s.line_cut = false;
      s.tls_hdr_len = 0;
      return;
    }
    s.tls_hdr[s.tls_hdr_len++] = b;
    ++data;
    --len;
    if (s.tls_hdr_len == 5) {
      s.tls_remaining = static_cast<uint32_t>(s.tls_hdr[3]) << 8 | s.tls_hdr[4];
      s.tls_hdr_len = 0;
    }
  }
}

void ftp_parser::on_line(side& s, direction dir, std::string_view line, uint64_t ts_ns,
                         record_sink& out) {
  if (text::trim_ows(line).empty())
    return;
  ftp::reply_line r;
  ftp::command_line c;
  if (s.r == role::unknown) {
    if (ftp::parse_reply(line, r)) {
      s.r = role::server;
    } else if (ftp::parse_command(line, c)) {
      s.r = role::client;
    } else {
      if (state_ == parser_state::probing)
        violate();
      return;
    }
  }
  if (s.r == role::server) {
    if (s.multi_code != 0) {
      // Inside a multi-line reply: only "ddd " (or "ddd") with its code ends it.
      if (ftp::parse_reply(line, r) && r.code == s.multi_code && !r.more) {
        s.multi_code = 0;
        r.text = s.multi_text; // the first line says what the reply is
        on_reply(dir, r, ts_ns, out);
      }
      return;
    }
    if (!ftp::parse_reply(line, r)) {
      if (state_ == parser_state::probing)
        violate();
      return;
    }
    ++counters_.messages;
    state_ = parser_state::confirmed;
    if (r.more) {
      // Handled at its end line, with the first line's text.
      s.multi_code = r.code;
      s.multi_text.assign(r.text);
      return;
    }
    on_reply(dir, r, ts_ns, out);
    return;
  }
  if (!ftp::parse_command(line, c)) {
    if (state_ == parser_state::probing)
      violate();
    return;
  }
  ++counters_.messages;
  state_ = parser_state::confirmed;
  on_command(c);
}

void ftp_parser::on_command(const ftp::command_line& c) {
  pending p;
  p.id = c.id;
  switch (c.id) {
  case command_id::user:
    set_text(user_, c.arg);
    password_.clear();
    break;
  case command_id::pass:
    set_text(password_, c.arg);
    break;
  case command_id::host:
    set_text(server_name_, c.arg);
    host_sent_ = true;
    break;
  case command_id::auth:
    auth_sent_ = true;
    break;
  case command_id::port:
    ftp::parse_port_arg(c.arg, p.ep);
    break;
  case command_id::eprt:
    ftp::parse_eprt_arg(c.arg, p.ep);
    break;
  default:
    break;
  }
  if (pending_size_ == pending_cap) {
    ++counters_.limit_hits; // the oldest command will get no reply
    pending_head_ = (pending_head_ + 1) % pending_cap;
    --pending_size_;
  }
  pending_[(pending_head_ + pending_size_) % pending_cap] = p;
  ++pending_size_;
}

void ftp_parser::on_reply(direction dir, const ftp::reply_line& r, uint64_t ts_ns,
                          record_sink& out) {
  if (r.code < 200)
    return; // preliminary: the command is still pending
  if (pending_size_ == 0) {
    if (r.code == 220 && !greeting_seen_ && !host_sent_) {
      set_text(server_name_, r.text);
      greeting_seen_ = true;
    }
    return;
  }
  const pending p = pending_[pending_head_];
  pending_head_ = (pending_head_ + 1) % pending_cap;
  --pending_size_;
  const bool ok = r.code >= 200 && r.code < 300;
  switch (p.id) {
  case command_id::user:
    if (r.code == 230 || r.code >= 400)
      emit(dir, mode_, r.code, ts_ns, out);
    break;
  case command_id::pass:
    emit(dir, mode_, r.code, ts_ns, out);
    break;
  case command_id::port:
  case command_id::eprt:
  case command_id::lprt:
    if (ok) {
      mode_ = 0;
      data_endpoint_ = p.ep;
      data_endpoint_mode_ = 0;
    }
    emit(dir, 0, r.code, ts_ns, out, ok ? expectation_of(p.ep, 0) : expected_connection{});
    break;
  case command_id::pasv:
  case command_id::epsv:
  case command_id::lpsv: {
    expected_connection expect;
    if (ok) {
      mode_ = 1;
      ftp::endpoint ep;
      if (p.id == command_id::pasv ? ftp::parse_227(r.text, ep) : ftp::parse_229(r.text, ep)) {
        data_endpoint_ = ep;
        data_endpoint_mode_ = 1;
        expect = expectation_of(ep, 1);
      }
    }
    emit(dir, 1, r.code, ts_ns, out, expect);
    break;
  }
  default:
    break;
  }
}

expected_connection ftp_parser::expectation_of(const ftp::endpoint& ep, uint8_t mode) {
  expected_connection e;
  if (!ep.valid || ep.port == 0)
    return e;
  if (ep.family == 4 || ep.family == 6) {
    e.server.family = ep.family;
    std::copy_n(ep.addr.begin(), ep.family == 6 ? 16 : 4, e.server.bytes.begin());
  } // family 0 (EPSV): the record's destination, the control flow's server
  e.server_port = ep.port;
  e.mode = mode;
  return e;
}

void ftp_parser::emit(direction server_dir, uint32_t mode, uint32_t code, uint64_t ts_ns,
                      record_sink& out, const expected_connection& expect) {
  if (records_ >= opts_.max_records_per_flow) {
    ++counters_.limit_hits;
    return;
  }
  parsed_record pr;
  auto* f = pr.record.mutable_ftp();
  f->set_server_name(server_name_);
  f->set_user(user_);
  f->set_password(password_);
  f->set_mode(mode);
  f->set_result_code(code);
  pr.ts_ns = ts_ns;
  pr.dir = reverse(server_dir); // the client's record
  pr.expect = expect;           // its destination is the FTP server
  out.push_back(std::move(pr));
  ++records_;
  ++counters_.records;
}

void ftp_parser::gap(direction dir, size_t len) {
  side& s = sides_[static_cast<size_t>(dir) & 1];
  ++counters_.gaps;
  if (s.ph == phase::tls) {
    if (s.tls_hdr_len == 0 && s.tls_remaining >= len) {
      s.tls_remaining -= static_cast<uint32_t>(len);
      return;
    }
    s.ph = phase::ignore;
    if (sides_[0].ph == phase::ignore && sides_[1].ph == phase::ignore)
      state_ = parser_state::done;
    return;
  }
  if (s.ph == phase::ignore)
    return;
  s.line.clear();
  s.line_cut = false;
  s.multi_code = 0;
  s.multi_text.clear();
  // Lost commands or replies: the pairing is unknown from here.
  pending_head_ = 0;
  pending_size_ = 0;
}

void ftp_parser::finish(uint64_t /*ts_ns*/, record_sink& /*out*/) {
  // A login whose reply never came is not reported (no RESULT_CODE).
}


size_t ftp_parser::memory_bytes() const {
  return sizeof(*this) + heap_bytes(sides_[0].line, sides_[0].multi_text) +
         heap_bytes(sides_[1].line, sides_[1].multi_text) +
         heap_bytes(server_name_, user_, password_);
}

} // namespace metaprobe
