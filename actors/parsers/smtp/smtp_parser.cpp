// SPDX-License-Identifier: Apache-2.0
#include "parsers/smtp/smtp_parser.hpp"

#include <algorithm>

#include "parsers/common/field_text.hpp"
#include "parsers/mail/mail_record.hpp"

namespace metaprobe {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "NNN", "NNN text" or "NNN-text": the reply code, 0 when not a reply line.
uint32_t reply_code(std::string_view line, bool& more) {
  more = false;
  if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]))
    return 0;
  if (line[0] < '1' || line[0] > '5')
    return 0;
  if (line.size() > 3) {
    if (line[3] == '-')
      more = true;
    else if (line[3] != ' ' && line[3] != '\t')
      return 0;
  }
  return static_cast<uint32_t>((line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0'));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// The path of "FROM:<path> params" / "TO:<path> params" (after the colon).
std::string_view path_of(std::string_view arg) {
  arg = trim(arg);
  if (!arg.empty() && arg.front() == '<') {
    const size_t close = arg.find('>');
    return close == std::string_view::npos ? arg.substr(1) : arg.substr(1, close - 1);
  }
  const size_t sp = arg.find_first_of(" \t");
  return sp == std::string_view::npos ? arg : arg.substr(0, sp);
}

bool parse_u64(std::string_view s, uint64_t& v) {
  if (s.empty() || s.size() > 18)
    return false;
  v = 0;
  for (char c : s) {
    if (!is_digit(c))
      return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

} // namespace

protocol_entry smtp_protocol_entry() {
  protocol_entry e;
  e.id = app_protocol::smtp;
  e.name = "smtp";
  e.tcp_ports = {25, 587, 2525};
  e.probe = &smtp_probe;
  e.make_stream = &make_smtp_parser;
  return e;
}

bool smtp_probe(const uint8_t* data, size_t len, direction /*dir*/) {
  const std::string_view s(reinterpret_cast<const char*>(data), std::min<size_t>(len, 512));
  if (mail::istarts_with(s, "EHLO ") || mail::istarts_with(s, "HELO "))
    return true;
  if (s.size() < 8 || s.compare(0, 3, "220") != 0 || (s[3] != ' ' && s[3] != '-'))
    return false;
  const std::string_view line = s.substr(0, s.find('\n'));
  for (size_t i = 0; i + 4 <= line.size(); ++i)
    if (mail::iequals(line.substr(i, 4), "SMTP"))
      return true;
  return false;
}

std::unique_ptr<stream_parser> make_smtp_parser(const parser_options& opts,
                                                parser_counters& counters) {
  return std::make_unique<smtp_parser>(opts, counters);
}

smtp_parser::smtp_parser(const parser_options& opts, parser_counters& counters)
  : opts_(opts), counters_(counters), lines_{mail::line_buffer(opts.max_line, &counters.bytes_scanned),
                                             mail::line_buffer(opts.max_line, &counters.bytes_scanned)},
    msg_(opts.max_field, opts.max_headers) {}

void smtp_parser::deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
                          uint32_t seq, record_sink& out) {
  if (data == nullptr || len == 0)
    return;
  if (state_ == parser_state::done || state_ == parser_state::violated)
    return;
  if (!roles_known_) {
    // The server speaks first; a reply code (commands never start with a
    // digit) from the side the flow table calls the client swaps the roles.
    roles_known_ = true;
    if (dir == direction::client_to_server && is_digit(static_cast<char>(data[0])))
      server_dir_ = dir;
  }
  if (dir == server_dir_)
    server_bytes(data, len, ts_ns, out);
  else
    client_bytes(data, len, ts_ns, seq, out);
}

void smtp_parser::client_bytes(const uint8_t* data, size_t len, uint64_t ts_ns, uint32_t seq,
                               record_sink& out) {
  mail::line_buffer& lb = lines_[static_cast<size_t>(reverse(server_dir_)) & 1];
  size_t pos = 0;
  while (pos < len) {
    if (state_ == parser_state::done || state_ == parser_state::violated)
      return;
    if (phase_ == client_phase::bdat) {
      // BDAT chunk bytes: lines of the message, not dot-stuffed.
      const size_t take = static_cast<size_t>(std::min<uint64_t>(bdat_left_, len - pos));
      size_t used = 0;
      while (used < take) {
        bool complete = false;
        used += lb.feed(data + pos + used, take - used, complete);
        if (complete)
          msg_.line(lb.line(), lb.cut());
      }
      pos += take;
      bdat_left_ -= take;
      if (bdat_left_ == 0) {
        phase_ = client_phase::command;
        if (bdat_last_ && txn_.active) {
          bdat_last_ = false;
          if (lb.pending() > 0)
            msg_.line(lb.partial(), lb.cut());
          lb.clear();
          take_headers(txn_);
        }
      }
      continue;
    }
    const uint32_t line_seq =
        seq + static_cast<uint32_t>(pos) - static_cast<uint32_t>(lb.pending());
    bool complete = false;
    pos += lb.feed(data + pos, len - pos, complete);
    if (!complete) {
      if (lb.cut() && state_ == parser_state::probing)
        violate(); // no SMTP command is that long
      continue;
    }
    if (lb.cut())
      ++counters_.limit_hits;
    if (phase_ == client_phase::data)
      data_line(lb.line(), lb.cut());
    else
      client_line(lb.line(), line_seq, ts_ns, out);
  }
}

void smtp_parser::client_line(std::string_view line, uint32_t seq, uint64_t ts_ns,
                              record_sink& out) {
  if (phase_ == client_phase::auth)
    return; // SASL continuation; the final reply ends the exchange
  const size_t sp = line.find(' ');
  const std::string_view verb = line.substr(0, sp);
  const std::string_view arg =
      sp == std::string_view::npos ? std::string_view() : trim(line.substr(sp + 1));
  if (mail::iequals(verb, "EHLO") || mail::iequals(verb, "HELO")) {
    confirm();
    push(cmd::helo);
  } else if (mail::iequals(verb, "MAIL") && mail::istarts_with(arg, "FROM:")) {
    confirm();
    end_transaction(ts_ns, out);
    txn_ = transaction{};
    txn_.active = true;
    txn_.seq = seq;
    append_field(txn_.sender, path_of(arg.substr(5)), false);
    ++counters_.messages;
    push(cmd::mail);
  } else if (mail::iequals(verb, "RCPT") && mail::istarts_with(arg, "TO:")) {
    confirm();
    if (txn_.active)
      append_field(txn_.receivers, path_of(arg.substr(3)), true);
    push(cmd::rcpt);
  } else if (mail::iequals(verb, "DATA") && arg.empty()) {
    confirm();
    push(cmd::data);
    phase_ = client_phase::data;
    msg_.reset();
    txn_.data_seen = true;
  } else if (mail::iequals(verb, "BDAT")) {
    confirm();
    const size_t s2 = arg.find_first_of(" \t");
    uint64_t n = 0;
    if (!parse_u64(arg.substr(0, s2), n))
      return;
    const bool last = s2 != std::string_view::npos && mail::iequals(trim(arg.substr(s2)), "LAST");
    if (!txn_.data_seen) {
      msg_.reset();
      txn_.data_seen = true;
    }
    push(last ? cmd::bdat_last : cmd::bdat);
    if (last)
      txn_.awaiting_final = true;
    if (n > 0) {
      bdat_left_ = n;
      bdat_last_ = last;
      phase_ = client_phase::bdat;
    } else if (last && txn_.active) {
      take_headers(txn_);
    }
  } else if (mail::iequals(verb, "STARTTLS")) {
    confirm();
    push(cmd::starttls);
  } else if (mail::iequals(verb, "AUTH")) {
    confirm();
    push(cmd::auth);
    phase_ = client_phase::auth;
  } else if (mail::iequals(verb, "RSET") || mail::iequals(verb, "QUIT")) {
    confirm();
    end_transaction(ts_ns, out);
    push(cmd::other);
  } else if (mail::iequals(verb, "NOOP") || mail::iequals(verb, "VRFY") ||
             mail::iequals(verb, "EXPN") || mail::iequals(verb, "HELP") ||
             mail::iequals(verb, "ETRN") || mail::iequals(verb, "TURN") ||
             mail::iequals(verb, "ATRN") || mail::iequals(verb, "XCLIENT")) {
    push(cmd::other);
  } else if (state_ == parser_state::probing && !line.empty()) {
    violate();
  }
}

void smtp_parser::data_line(std::string_view line, bool cut) {
  if (line == "." && !cut) {
    phase_ = client_phase::command;
    push(cmd::data_end);
    if (txn_.active) {
      txn_.awaiting_final = true;
      take_headers(txn_);
    }
    return;
  }
  if (!line.empty() && line.front() == '.')
    line.remove_prefix(1); // dot-stuffing
  msg_.line(line, cut);
}

void smtp_parser::server_bytes(const uint8_t* data, size_t len, uint64_t ts_ns,
                               record_sink& out) {
  mail::line_buffer& lb = lines_[static_cast<size_t>(server_dir_) & 1];
  size_t pos = 0;
  while (pos < len) {
    if (state_ == parser_state::done || state_ == parser_state::violated)
      return;
    bool complete = false;
    pos += lb.feed(data + pos, len - pos, complete);
    if (!complete) {
      if (lb.cut() && state_ == parser_state::probing)
        violate();
      continue;
    }
    if (lb.cut())
      ++counters_.limit_hits;
    server_line(lb.line(), ts_ns, out);
  }
}

void smtp_parser::server_line(std::string_view line, uint64_t ts_ns, record_sink& out) {
  bool more = false;
  const uint32_t code = reply_code(line, more);
  if (code == 0) {
    if (state_ == parser_state::probing)
      violate();
    return; // not a reply line: skipped
  }
  if (!greeted_ && !in_multiline_ && pending_size_ == 0) {
    // The greeting's first line names the server.
    greeted_ = true;
    if (code == 220) {
      confirm();
      const std::string_view text = trim(line.substr(std::min<size_t>(4, line.size())));
      const std::string_view host = text.substr(0, text.find_first_of(" \t"));
      servers_.clear();
      if (text::append_utf8(servers_, host, opts_.max_field))
        ++counters_.truncated_fields;
    }
    in_multiline_ = more;
    if (!more)
      ++counters_.messages;
    return;
  }
  greeted_ = true;
  in_multiline_ = more;
  if (more)
    return;
  ++counters_.messages;
  on_reply(code, ts_ns, out);
}

void smtp_parser::on_reply(uint32_t code, uint64_t ts_ns, record_sink& out) {
  if (pending_size_ > 0 && pending_[pending_head_] == cmd::auth && code == 334)
    return; // SASL challenge: the exchange goes on
  cmd c;
  if (!pop(c))
    return; // reply to a command we did not see (capture started late)
  confirm();
  switch (c) {
  case cmd::mail:
    if (txn_.active) {
      txn_.result = code;
      if (code >= 400)
        txn_.failed = true;
    }
    break;
  case cmd::rcpt:
    if (txn_.active && !txn_.failed)
      txn_.result = code;
    break;
  case cmd::data:
    if (txn_.active)
      txn_.result = code;
    if (code != 354) {
      // DATA rejected: the client sends no message.
      if (phase_ == client_phase::data)
        phase_ = client_phase::command;
      if (txn_.active) {
        txn_.failed = true;
        end_transaction(ts_ns, out);
      }
    }
    break;
  case cmd::bdat:
    if (txn_.active && code >= 400) {
      txn_.result = code;
      txn_.failed = true;
    }
    break;
  case cmd::data_end:
  case cmd::bdat_last:
    // The oldest transaction waiting for its final reply gets it.
    if (closing_.active) {
      closing_.result = code;
      emit_transaction(closing_, ts_ns, out);
    } else if (txn_.active) {
      txn_.result = code;
      txn_.awaiting_final = false;
      end_transaction(ts_ns, out);
    }
    break;
  case cmd::starttls:
    if (code == 220) {
      emit_transaction(closing_, ts_ns, out);
      emit_transaction(txn_, ts_ns, out);
      hand_over(handover_kind::starttls); // TLS from here on: re-detected
    }
    break;
  case cmd::auth:
    if (phase_ == client_phase::auth)
      phase_ = client_phase::command;
    break;
  case cmd::helo:
  case cmd::other:
    break;
  }
}

void smtp_parser::take_headers(transaction& t) {
  if (t.headers_taken || !t.data_seen)
    return;
  t.headers_taken = true;
  msg_.end();
  const mail::message_fields& m = msg_.fields();
  t.from = m.from;
  t.cc = m.cc;
  t.subject = m.subject;
  t.reply = m.reply_to;
  t.attachment = m.attachment;
  counters_.limit_hits += msg_.limit_hits();
  counters_.truncated_fields += msg_.truncated();
  msg_.reset();
}

void smtp_parser::end_transaction(uint64_t ts_ns, record_sink& out) {
  if (!txn_.active)
    return;
  if (txn_.awaiting_final) {
    // Data sent, final reply still to come: keep it for that reply.
    if (closing_.active)
      emit_transaction(closing_, ts_ns, out);
    closing_ = std::move(txn_);
    txn_ = transaction{};
    return;
  }
  emit_transaction(txn_, ts_ns, out);
}

void smtp_parser::emit_transaction(transaction& t, uint64_t ts_ns, record_sink& out) {
  if (!t.active)
    return;
  t.active = false;
  take_headers(t);
  mail::record_fields f;
  f.ev = mail::event::send;
  f.proto = mail::protocol::smtp;
  f.servers = servers_;
  // The envelope names sender and recipients; the header From stands in
  // for a null reverse-path.
  f.sender = !t.sender.empty() ? std::move(t.sender) : std::move(t.from);
  f.receiver = std::move(t.receivers);
  f.cc = std::move(t.cc);
  f.subject = std::move(t.subject);
  f.reply = std::move(t.reply);
  f.attachment = t.attachment;
  f.result_code = t.result;
  if (t.cut)
    ++counters_.truncated_fields;
  if (records_ >= opts_.max_records_per_flow) {
    ++counters_.limit_hits;
    return;
  }
  ++records_;
  ++counters_.records;
  out.push_back(mail::make_record(std::move(f), reverse(server_dir_), ts_ns, t.seq));
}

void smtp_parser::append_field(std::string& dst, std::string_view v, bool join) {
  if (v.empty())
    return;
  if (join && !dst.empty()) {
    if (dst.size() + 2 > opts_.max_field) {
      txn_.cut = true;
      return;
    }
    dst.append(", ");
  }
  if (text::append_utf8(dst, v, opts_.max_field))
    txn_.cut = true;
}

void smtp_parser::push(cmd c) {
  if (pending_size_ == pending_cap) {
    ++counters_.limit_hits; // replies not seen for a long time: forget the oldest
    pending_head_ = (pending_head_ + 1) % pending_cap;
    --pending_size_;
  }
  pending_[(pending_head_ + pending_size_) % pending_cap] = c;
  ++pending_size_;
}

bool smtp_parser::pop(cmd& c) {
  if (pending_size_ == 0)
    return false;
  c = pending_[pending_head_];
  pending_head_ = (pending_head_ + 1) % pending_cap;
  --pending_size_;
  return true;
}

void smtp_parser::violate() {
  state_ = parser_state::violated;
  ++counters_.violations;
}

void smtp_parser::confirm() {
  if (state_ == parser_state::probing)
    state_ = parser_state::confirmed;
}

void smtp_parser::gap(direction dir, size_t len) {
  ++counters_.gaps;
  if (state_ == parser_state::done || state_ == parser_state::violated)
    return;
  lines_[static_cast<size_t>(dir) & 1].clear();
  if (dir == server_dir_) {
    in_multiline_ = false;
    return;
  }
  if (phase_ == client_phase::bdat) {
    if (len < bdat_left_) {
      bdat_left_ -= len;
      return;
    }
    bdat_left_ = 0;
    phase_ = client_phase::command;
  }
  // Inside DATA the message goes on; its header fields may be incomplete.
}

void smtp_parser::finish(uint64_t ts_ns, record_sink& out) {
  if (state_ == parser_state::violated)
    return;
  if (state_ != parser_state::done && phase_ == client_phase::data) {
    mail::line_buffer& lb = lines_[static_cast<size_t>(reverse(server_dir_)) & 1];
    if (lb.pending() > 0)
      msg_.line(lb.partial(), lb.cut());
  }
  emit_transaction(closing_, ts_ns, out);
  emit_transaction(txn_, ts_ns, out);
  lines_[0].clear();
  lines_[1].clear();
}


size_t smtp_parser::memory_bytes() const {
  size_t n = sizeof(*this) + lines_[0].memory_bytes() + lines_[1].memory_bytes() +
             msg_.memory_bytes() + heap_bytes(servers_);
  for (const transaction* t : {&txn_, &closing_})
    n += heap_bytes(t->sender, t->receivers, t->from, t->cc, t->subject, t->reply);
  return n;
}

} // namespace metaprobe
