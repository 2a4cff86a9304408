// SPDX-License-Identifier: Apache-2.0
#include "parsers/pop3/pop3_parser.hpp"

#include <algorithm>

#include "parsers/common/field_text.hpp"
#include "parsers/mail/mail_record.hpp"
#include "parsers/mail/sasl.hpp"

namespace metaprobe {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

} // namespace

protocol_entry pop3_protocol_entry() {
  protocol_entry e;
  e.id = app_protocol::pop3;
  e.name = "pop3";
  e.tcp_ports = {110};
  e.probe = &pop3_probe;
  e.make_stream = &make_pop3_parser;
  return e;
}

bool pop3_probe(const uint8_t* data, size_t len, direction dir) {
  if (dir != direction::server_to_client || len < 4)
    return false;
  const std::string_view s(reinterpret_cast<const char*>(data), std::min<size_t>(len, 8));
  return s.compare(0, 3, "+OK") == 0 && (s[3] == ' ' || s[3] == '\r' || s[3] == '\n');
}

std::unique_ptr<stream_parser> make_pop3_parser(const parser_options& opts,
                                                parser_counters& counters) {
  return std::make_unique<pop3_parser>(opts, counters);
}

pop3_parser::pop3_parser(const parser_options& opts, parser_counters& counters)
  : opts_(opts), counters_(counters), lines_{mail::line_buffer(opts.max_line, &counters.bytes_scanned),
                                             mail::line_buffer(opts.max_line, &counters.bytes_scanned)},
    msg_(opts.max_field, opts.max_headers), auth_(opts.max_field) {}

void pop3_parser::deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
                          uint32_t seq, record_sink& out) {
  if (data == nullptr || len == 0)
    return;
  if (state_ == parser_state::done || state_ == parser_state::violated)
    return;
  if (!roles_known_) {
    roles_known_ = true;
    // The server speaks first; a status indicator from the side the flow
    // table calls the client swaps the roles.
    if (dir == direction::client_to_server && (data[0] == '+' || data[0] == '-'))
      server_dir_ = dir;
  }
  mail::line_buffer& lb = lines_[static_cast<size_t>(dir) & 1];
  size_t pos = 0;
  while (pos < len) {
    if (state_ == parser_state::done || state_ == parser_state::violated)
      return;
    const uint32_t line_seq =
        seq + static_cast<uint32_t>(pos) - static_cast<uint32_t>(lb.pending());
    bool complete = false;
    pos += lb.feed(data + pos, len - pos, complete);
    if (!complete) {
      if (lb.cut() && state_ == parser_state::probing && !in_multi_) {
        state_ = parser_state::violated;
        ++counters_.violations;
      }
      continue;
    }
    if (lb.cut())
      ++counters_.limit_hits;
    if (dir == server_dir_)
      server_line(lb.line(), lb.cut(), ts_ns, line_seq, out);
    else
      client_line(lb.line());
  }
}

void pop3_parser::client_line(std::string_view line) {
  if (in_auth_ && auth_.exhausted()) {
    in_auth_ = false; // the answer to AUTH was lost: back to commands
    ++counters_.limit_hits;
  }
  if (in_auth_) {
    // Inside an AUTH exchange every client line is a SASL response (RFC
    // 5034 §4); "*" cancels and leaves nothing more to send.
    if (!auth_.response(line))
      in_auth_ = false;
    return;
  }
  const size_t sp = line.find(' ');
  const std::string_view verb = line.substr(0, sp);
  const std::string_view rest =
      sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
  const std::string_view arg = trim(rest);
  if (mail::iequals(verb, "RETR") || mail::iequals(verb, "TOP")) {
    push(cmd::retr);
  } else if (mail::iequals(verb, "CAPA") ||
             ((mail::iequals(verb, "LIST") || mail::iequals(verb, "UIDL")) && arg.empty())) {
    push(cmd::multi);
  } else if (mail::iequals(verb, "USER")) {
    begin_attempt("USER", arg);
    push(cmd::user);
  } else if (mail::iequals(verb, "PASS")) {
    // RFC 1939 §7: the password is the rest of the line (it may hold
    // spaces); only the one space after the verb is dropped.
    if (text::assign_utf8(attempt_.password, rest, opts_.max_field))
      ++counters_.truncated_fields;
    if (attempt_.mechanism.empty())
      attempt_.mechanism = "USER"; // USER was lost (gap) or never sent
    push(cmd::pass);
  } else if (mail::iequals(verb, "APOP")) {
    begin_attempt("APOP", arg.substr(0, arg.find(' ')));
    push(cmd::apop);
  } else if (mail::iequals(verb, "AUTH")) {
    if (arg.empty()) {
      push(cmd::auth_list); // RFC 1734 style: list the mechanisms
    } else {
      const size_t s2 = arg.find(' ');
      auth_.start(arg.substr(0, s2));
      in_auth_ = true;
      if (s2 != std::string_view::npos && !auth_.response(arg.substr(s2 + 1)))
        in_auth_ = false;
      push(cmd::auth);
    }
  } else if (mail::iequals(verb, "STLS")) {
    push(cmd::stls);
  } else if (!verb.empty()) {
    push(cmd::single); // STAT, LIST n, DELE, NOOP, RSET, QUIT, ...
  }
}

void pop3_parser::server_line(std::string_view line, bool cut, uint64_t ts_ns, uint32_t seq,
                              record_sink& out) {
  if (in_multi_) {
    if (line == "." && !cut) {
      in_multi_ = false;
      if (in_message_) {
        in_message_ = false;
        emit_message(ts_ns, out);
      }
      return;
    }
    if (in_message_) {
      if (!line.empty() && line.front() == '.')
        line.remove_prefix(1);
      msg_.line(line, cut);
    }
    return;
  }
  const bool ok = line.size() >= 3 && line.compare(0, 3, "+OK") == 0;
  const bool err = line.size() >= 4 && line.compare(0, 4, "-ERR") == 0;
  const bool cont = !line.empty() && line.front() == '+' && !ok;
  if (!ok && !err && !cont) {
    if (state_ == parser_state::probing) {
      state_ = parser_state::violated;
      ++counters_.violations;
    }
    return;
  }
  if (state_ == parser_state::probing)
    state_ = parser_state::confirmed;
  ++counters_.messages;
  if (!greeted_ && pending_size_ == 0) {
    greeted_ = true;
    return;
  }
  greeted_ = true;
  if (cont) {
    // SASL challenge "+ base64": the client's next line answers it.
    if (pending_size_ > 0 && pending_[pending_head_] == cmd::auth &&
        auth_.attempt().result != sasl::outcome::cancelled) {
      std::string_view text = line.substr(1);
      if (!text.empty() && text.front() == ' ')
        text.remove_prefix(1);
      auth_.challenge(text);
      in_auth_ = true;
    }
    return;
  }
  cmd c;
  if (!pop(c))
    return; // answer to a command we did not see
  switch (c) {
  case cmd::user:
    if (!ok)
      end_attempt(attempt_, sasl::outcome::rejected);
    return; // +OK: the password comes next
  case cmd::pass:
  case cmd::apop:
    end_attempt(attempt_, ok ? sasl::outcome::accepted : sasl::outcome::rejected);
    return;
  case cmd::auth:
    in_auth_ = false;
    counters_.truncated_fields += auth_.truncated();
    end_attempt(auth_.attempt(), ok ? sasl::outcome::accepted
                                    : auth_.attempt().result == sasl::outcome::cancelled
                                        ? sasl::outcome::cancelled
                                        : sasl::outcome::rejected);
    auth_.start({});
    return;
  default:
    break;
  }
  if (!ok)
    return;
  switch (c) {
  case cmd::retr:
    in_multi_ = true;
    in_message_ = true;
    message_seq_ = seq;
    msg_.reset();
    break;
  case cmd::multi:
  case cmd::auth_list:
    in_multi_ = true;
    break;
  case cmd::stls:
    hand_over(handover_kind::starttls); // TLS from here on: re-detected
    break;
  default:
    break;
  }
}

void pop3_parser::begin_attempt(std::string_view mechanism, std::string_view user) {
  attempt_ = sasl::login_attempt{};
  attempt_.mechanism.assign(mechanism);
  if (text::assign_utf8(attempt_.user, user, opts_.max_field))
    ++counters_.truncated_fields;
}

void pop3_parser::end_attempt(sasl::login_attempt& a, sasl::outcome result) {
  a.result = result;
  last_login_ = a;
  ++logins_;
  if (result == sasl::outcome::accepted && !a.user.empty())
    account_ = a.user;
  a = sasl::login_attempt{};
}

void pop3_parser::emit_message(uint64_t ts_ns, record_sink& out) {
  mail::emit_received(msg_, mail::protocol::pop3, account_, server_dir_, ts_ns, message_seq_,
                      opts_.max_records_per_flow, records_, counters_, out);
}

void pop3_parser::push(cmd c) {
  if (pending_size_ == pending_cap) {
    ++counters_.limit_hits;
    pending_head_ = (pending_head_ + 1) % pending_cap;
    --pending_size_;
  }
  pending_[(pending_head_ + pending_size_) % pending_cap] = c;
  ++pending_size_;
}

bool pop3_parser::pop(cmd& c) {
  if (pending_size_ == 0)
    return false;
  c = pending_[pending_head_];
  pending_head_ = (pending_head_ + 1) % pending_cap;
  --pending_size_;
  return true;
}

void pop3_parser::gap(direction dir, size_t /*len*/) {
  ++counters_.gaps;
  if (state_ == parser_state::done || state_ == parser_state::violated)
    return;
  lines_[static_cast<size_t>(dir) & 1].clear();
}

void pop3_parser::finish(uint64_t ts_ns, record_sink& out) {
  if (state_ == parser_state::violated)
    return;
  if (state_ != parser_state::done && in_message_) {
    // The flow ended inside a message: report what was read.
    mail::line_buffer& lb = lines_[static_cast<size_t>(server_dir_) & 1];
    if (lb.pending() > 0)
      msg_.line(lb.partial(), lb.cut());
    in_message_ = false;
    in_multi_ = false;
    emit_message(ts_ns, out);
  }
  lines_[0].clear();
  lines_[1].clear();
}


size_t pop3_parser::memory_bytes() const {
  return sizeof(*this) + lines_[0].memory_bytes() + lines_[1].memory_bytes() +
         msg_.memory_bytes() + heap_bytes(account_) +
         heap_bytes(attempt_.mechanism, attempt_.user, attempt_.password) +
         heap_bytes(last_login_.mechanism, last_login_.user, last_login_.password);
}

} // namespace metaprobe
