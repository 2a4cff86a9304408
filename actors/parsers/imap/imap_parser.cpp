// SPDX-License-Identifier: Apache-2.0
#include "parsers/imap/imap_parser.hpp"

#include <algorithm>

#include "parsers/common/field_text.hpp"
#include "parsers/mail/mail_record.hpp"

namespace metaprobe {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// A literal announcement "{n}" or "{n+}" ending `part`: its size and where
// the '{' is. False when the part does not end with one.
bool trailing_literal(std::string_view part, uint64_t& n, size_t& open) {
  if (part.size() < 3 || part.back() != '}')
    return false;
  size_t i = part.size() - 1; // at '}'
  if (i > 0 && part[i - 1] == '+')
    --i;
  const size_t end = i;
  while (i > 0 && is_digit(part[i - 1]))
    --i;
  if (i == end || i == 0 || part[i - 1] != '{' || end - i > 12)
    return false;
  n = 0;
  for (size_t k = i; k < end; ++k)
    n = n * 10 + static_cast<uint64_t>(part[k] - '0');
  open = i - 1;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

} // namespace

bool imap_message_section(std::string_view part) {
  part = trim(part);
  // Drop a partial-fetch origin "<123>".
  if (!part.empty() && part.back() == '>') {
    const size_t lt = part.rfind('<');
    if (lt == std::string_view::npos)
      return false;
    part = part.substr(0, lt);
  }
  if (!part.empty() && part.back() == ']') {
    // The '[' that opens this section (sections may hold "(...)").
    const size_t open = part.rfind('[');
    if (open == std::string_view::npos)
      return false;
    size_t start = open;
    while (start > 0 && part[start - 1] != ' ' && part[start - 1] != '(')
      --start;
    const std::string_view name = part.substr(start, open - start);
    const std::string_view section = part.substr(open + 1, part.size() - open - 2);
    if (!mail::iequals(name, "BODY") && !mail::iequals(name, "BINARY"))
      return false;
    return section.empty() || mail::istarts_with(section, "HEADER");
  }
  const size_t sp = part.find_last_of(" (");
  const std::string_view item = sp == std::string_view::npos ? part : part.substr(sp + 1);
  return mail::iequals(item, "RFC822") || mail::iequals(item, "RFC822.HEADER");
}

protocol_entry imap_protocol_entry() {
  protocol_entry e;
  e.id = app_protocol::imap;
  e.name = "imap";
  e.tcp_ports = {143};
  e.probe = &imap_probe;
  e.make_stream = &make_imap_parser;
  return e;
}

bool imap_probe(const uint8_t* data, size_t len, direction /*dir*/) {
  const std::string_view s(reinterpret_cast<const char*>(data), std::min<size_t>(len, 16));
  return mail::istarts_with(s, "* OK") || mail::istarts_with(s, "* PREAUTH");
}

std::unique_ptr<stream_parser> make_imap_parser(const parser_options& opts,
                                                parser_counters& counters) {
  return std::make_unique<imap_parser>(opts, counters);
}

imap_parser::imap_parser(const parser_options& opts, parser_counters& counters)
  : opts_(opts), counters_(counters), sides_{side(opts.max_line, &counters.bytes_scanned),
                                               side(opts.max_line, &counters.bytes_scanned)},
    literal_lines_(opts.max_line, &counters.bytes_scanned), msg_(opts.max_field, opts.max_headers),
    auth_(opts.max_field) {}

void imap_parser::deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
                          uint32_t seq, record_sink& out) {
  if (data == nullptr || len == 0)
    return;
  if (state_ == parser_state::done || state_ == parser_state::violated)
    return;
  if (!roles_known_) {
    roles_known_ = true;
    // The server speaks first; '*' or '+' (never the start of a tag) from the
    // side the flow table calls the client swaps the roles.
    if (dir == direction::client_to_server && (data[0] == '*' || data[0] == '+'))
      server_dir_ = dir;
  }
  if (dir == server_dir_)
    server_bytes(data, len, ts_ns, seq, out);
  else
    client_bytes(data, len);
}

void imap_parser::server_bytes(const uint8_t* data, size_t len, uint64_t ts_ns, uint32_t seq,
                               record_sink& out) {
  side& s = sides_[static_cast<size_t>(server_dir_) & 1];
  size_t pos = 0;
  while (pos < len) {
    if (state_ == parser_state::done || state_ == parser_state::violated)
      return;
    if (s.literal_left > 0) {
      const size_t take = static_cast<size_t>(std::min<uint64_t>(s.literal_left, len - pos));
      if (literal_msg_) {
        size_t used = 0;
        while (used < take) {
          bool complete = false;
          used += literal_lines_.feed(data + pos + used, take - used, complete);
          if (complete) {
            if (literal_lines_.cut())
              ++counters_.limit_hits;
            msg_.line(literal_lines_.line(), literal_lines_.cut());
          }
        }
      }
      pos += take;
      s.literal_left -= take;
      if (s.literal_left == 0 && literal_msg_) {
        if (literal_lines_.pending() > 0)
          msg_.line(literal_lines_.partial(), literal_lines_.cut());
        literal_lines_.clear();
        literal_msg_ = false;
      }
      continue;
    }
    const uint32_t line_seq =
        seq + static_cast<uint32_t>(pos) - static_cast<uint32_t>(s.lines.pending());
    bool complete = false;
    pos += s.lines.feed(data + pos, len - pos, complete);
    if (!complete) {
      if (s.lines.cut() && state_ == parser_state::probing)
        violate();
      continue;
    }
    if (s.lines.cut())
      ++counters_.limit_hits;
    server_part(s.lines.line(), s.lines.cut(), ts_ns, line_seq, out);
  }
}

void imap_parser::server_part(std::string_view part, bool cut, uint64_t ts_ns, uint32_t seq,
                              record_sink& out) {
  side& s = sides_[static_cast<size_t>(server_dir_) & 1];
  if (!s.in_command) {
    // A new response.
    resp_fetch_ = false;
    resp_has_msg_ = false;
    resp_seq_ = seq;
    if (part.size() >= 2 && part[0] == '*' && part[1] == ' ') {
      const std::string_view rest = part.substr(2);
      const size_t sp = rest.find(' ');
      if (sp != std::string_view::npos && sp > 0 && is_digit(rest[0])) {
        const std::string_view what = rest.substr(sp + 1);
        resp_fetch_ = mail::istarts_with(what, "FETCH ") || mail::istarts_with(what, "FETCH(");
      }
      if (state_ == parser_state::probing)
        state_ = parser_state::confirmed;
      ++counters_.messages;
    } else if (!part.empty() && part[0] == '+') {
      // Continuation request: a SASL challenge while AUTHENTICATE runs, else
      // the go-ahead for a synchronizing literal.
      if (state_ == parser_state::probing)
        state_ = parser_state::confirmed;
      ++counters_.messages;
      if (login_sasl_ && !login_tag_.empty() &&
          auth_.attempt().result != sasl::outcome::cancelled) {
        std::string_view text = part.substr(1);
        if (!text.empty() && text.front() == ' ')
          text.remove_prefix(1);
        auth_.challenge(text);
        in_auth_ = true;
      }
      return;
    } else {
      const size_t sp = part.find(' ');
      const std::string_view tag = part.substr(0, sp);
      const std::string_view rest =
          sp == std::string_view::npos ? std::string_view() : trim(part.substr(sp + 1));
      const bool ok = mail::istarts_with(rest, "OK");
      const bool status = ok || mail::istarts_with(rest, "NO") || mail::istarts_with(rest, "BAD");
      if (!status || tag.empty()) {
        if (state_ == parser_state::probing)
          violate();
        return;
      }
      if (state_ == parser_state::probing)
        state_ = parser_state::confirmed;
      ++counters_.messages;
      if (!login_tag_.empty() && tag == login_tag_)
        end_login(ok);
      if (ok && !starttls_tag_.empty() && tag == starttls_tag_) {
        hand_over(handover_kind::starttls); // TLS from here on: re-detected
        return;
      }
    }
  }
  uint64_t n = 0;
  size_t open = 0;
  if (!cut && trailing_literal(part, n, open)) {
    s.in_command = true;
    s.literal_left = n;
    literal_msg_ = false;
    if (resp_fetch_ && imap_message_section(part.substr(0, open))) {
      if (!resp_has_msg_)
        msg_.reset();
      resp_has_msg_ = true;
      literal_msg_ = n > 0;
      literal_lines_.clear();
    }
    return;
  }
  s.in_command = false;
  if (resp_fetch_ && resp_has_msg_) {
    resp_has_msg_ = false;
    emit_message(ts_ns, out);
  }
}

void imap_parser::client_bytes(const uint8_t* data, size_t len) {
  side& s = sides_[static_cast<size_t>(reverse(server_dir_)) & 1];
  size_t pos = 0;
  while (pos < len) {
    if (s.literal_left > 0) {
      const size_t take = static_cast<size_t>(std::min<uint64_t>(s.literal_left, len - pos));
      if (literal_capture_ && literal_arg_.size() < opts_.max_field)
        literal_arg_.append(reinterpret_cast<const char*>(data + pos),
                            std::min(take, opts_.max_field - literal_arg_.size()));
      pos += take;
      s.literal_left -= take;
      if (s.literal_left == 0 && literal_capture_) {
        literal_capture_ = false;
        if (args_.size() < max_args)
          args_.push_back(std::move(literal_arg_));
        literal_arg_.clear();
      }
      continue;
    }
    bool complete = false;
    pos += s.lines.feed(data + pos, len - pos, complete);
    if (!complete)
      continue;
    if (s.lines.cut())
      ++counters_.limit_hits;
    client_part(s.lines.line());
  }
}

void imap_parser::client_part(std::string_view part) {
  side& s = sides_[static_cast<size_t>(reverse(server_dir_)) & 1];
  if (in_auth_ && !s.in_command && auth_.exhausted()) {
    in_auth_ = false; // the tagged answer was lost: back to commands
    ++counters_.limit_hits;
  }
  if (in_auth_ && !s.in_command) {
    // Between AUTHENTICATE and its tagged answer every client line is a
    // SASL response (RFC 3501 §6.2.2); "*" cancels.
    if (!auth_.response(part))
      in_auth_ = false;
    return;
  }
  uint64_t n = 0;
  size_t open = 0;
  const bool literal = trailing_literal(part, n, open);
  const std::string_view text = literal ? part.substr(0, open) : part;
  // Tokens: atoms and quoted strings.
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ')
      ++i;
    if (i >= text.size())
      break;
    std::string tok;
    if (text[i] == '"') {
      ++i;
      while (i < text.size() && text[i] != '"') {
        if (text[i] == '\\' && i + 1 < text.size())
          ++i;
        if (tok.size() < opts_.max_field)
          tok.push_back(text[i]);
        ++i;
      }
      ++i;
    } else {
      while (i < text.size() && text[i] != ' ') {
        if (tok.size() < opts_.max_field)
          tok.push_back(text[i]);
        ++i;
      }
    }
    if (args_.size() < max_args)
      args_.push_back(std::move(tok));
  }
  if (literal) {
    s.in_command = true;
    s.literal_left = n;
    // Every literal keeps its argument slot (so LOGIN's password never
    // moves into the user name); at most max_field bytes of it are kept.
    literal_capture_ = n > 0;
    literal_arg_.clear();
    if (n == 0 && args_.size() < max_args)
      args_.emplace_back();
    return;
  }
  s.in_command = false;
  client_command();
  args_.clear();
}

void imap_parser::client_command() {
  if (args_.size() < 2)
    return;
  const std::string& tag = args_[0];
  std::string_view command = args_[1];
  size_t first = 2;
  if (mail::iequals(command, "UID") && args_.size() > 2) {
    command = args_[2];
    first = 3;
  }
  if (mail::iequals(command, "LOGIN") && args_.size() > first) {
    attempt_ = sasl::login_attempt{};
    attempt_.mechanism = "LOGIN";
    if (text::assign_utf8(attempt_.user, args_[first], opts_.max_field))
      ++counters_.truncated_fields;
    if (args_.size() > first + 1 &&
        text::assign_utf8(attempt_.password, args_[first + 1], opts_.max_field))
      ++counters_.truncated_fields;
    login_tag_ = tag.substr(0, 64);
    login_sasl_ = false;
  } else if (mail::iequals(command, "AUTHENTICATE") && args_.size() > first) {
    auth_.start(args_[first]);
    in_auth_ = true;
    // SASL-IR (RFC 4959): the initial response as a second argument.
    if (args_.size() > first + 1 && !auth_.response(args_[first + 1]))
      in_auth_ = false;
    login_tag_ = tag.substr(0, 64);
    login_sasl_ = true;
  } else if (mail::iequals(command, "STARTTLS")) {
    starttls_tag_ = tag.substr(0, 64);
  }
}

void imap_parser::emit_message(uint64_t ts_ns, record_sink& out) {
  mail::emit_received(msg_, mail::protocol::imap, account_, server_dir_, ts_ns, resp_seq_,
                      opts_.max_records_per_flow, records_, counters_, out);
}

void imap_parser::end_login(bool ok) {
  sasl::login_attempt& a = login_sasl_ ? auth_.attempt() : attempt_;
  if (login_sasl_)
    counters_.truncated_fields += auth_.truncated();
  if (ok)
    a.result = sasl::outcome::accepted;
  else if (a.result != sasl::outcome::cancelled)
    a.result = sasl::outcome::rejected;
  last_login_ = a;
  ++logins_;
  if (ok && !a.user.empty())
    account_ = a.user;
  a = sasl::login_attempt{};
  auth_.start({});
  in_auth_ = false;
  login_tag_.clear();
  login_sasl_ = false;
}

void imap_parser::violate() {
  state_ = parser_state::violated;
  ++counters_.violations;
}

void imap_parser::gap(direction dir, size_t len) {
  ++counters_.gaps;
  if (state_ == parser_state::done || state_ == parser_state::violated)
    return;
  side& s = sides_[static_cast<size_t>(dir) & 1];
  s.lines.clear();
  if (s.literal_left > 0) {
    s.literal_left = len < s.literal_left ? s.literal_left - len : 0;
    if (dir == server_dir_ && literal_msg_) {
      literal_lines_.clear();
      if (s.literal_left == 0)
        literal_msg_ = false;
    }
    if (dir != server_dir_ && s.literal_left == 0) {
      literal_capture_ = false;
      literal_arg_.clear();
    }
    return;
  }
  if (dir != server_dir_) {
    args_.clear();
    s.in_command = false;
  }
}

void imap_parser::finish(uint64_t ts_ns, record_sink& out) {
  if (state_ == parser_state::violated)
    return;
  if (state_ != parser_state::done && resp_fetch_ && resp_has_msg_) {
    if (literal_msg_ && literal_lines_.pending() > 0)
      msg_.line(literal_lines_.partial(), literal_lines_.cut());
    resp_has_msg_ = false;
    literal_msg_ = false;
    emit_message(ts_ns, out);
  }
  sides_[0].lines.clear();
  sides_[1].lines.clear();
}


size_t imap_parser::memory_bytes() const {
  size_t n = sizeof(*this) + sides_[0].lines.memory_bytes() + sides_[1].lines.memory_bytes() +
             literal_lines_.memory_bytes() + msg_.memory_bytes() + heap_bytes(args_) +
             heap_bytes(literal_arg_, login_tag_, starttls_tag_, account_) +
             heap_bytes(attempt_.mechanism, attempt_.user, attempt_.password) +
             heap_bytes(last_login_.mechanism, last_login_.user, last_login_.password);
  for (const auto& a : args_)
    n += heap_bytes(a);
  return n;
}

} // namespace metaprobe
