// SPDX-License-Identifier: Apache-2.0
#include "parsers/xmpp/xmpp_parser.hpp"

#include <algorithm>
#include <cstring>

#include "parsers/common/field_text.hpp"
#include "parsers/mail/sasl.hpp"

namespace metaprobe {

namespace {

constexpr uint32_t im_protocol_xmpp = 7;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view local_name(std::string_view n) {
  const size_t c = n.rfind(':');
  return c == std::string_view::npos ? n : n.substr(c + 1);
}

// The raw value of attribute `name` (exact qualified name) in a tag's
// attribute text; empty when absent.
std::string_view find_attr(std::string_view attrs, std::string_view name) {
  size_t i = 0;
  while (i < attrs.size()) {
    while (i < attrs.size() && (is_space(attrs[i]) || attrs[i] == '/'))
      ++i;
    const size_t ns = i;
    while (i < attrs.size() && attrs[i] != '=' && !is_space(attrs[i]))
      ++i;
    const std::string_view key = attrs.substr(ns, i - ns);
    while (i < attrs.size() && is_space(attrs[i]))
      ++i;
    if (i >= attrs.size() || attrs[i] != '=')
      return {};
    ++i;
    while (i < attrs.size() && is_space(attrs[i]))
      ++i;
    if (i >= attrs.size() || (attrs[i] != '\'' && attrs[i] != '"'))
      return {};
    const char q = attrs[i++];
    const size_t vs = i;
    while (i < attrs.size() && attrs[i] != q)
      ++i;
    const std::string_view value = attrs.substr(vs, i - vs);
    if (i < attrs.size())
      ++i;
    if (key == name)
      return value;
  }
  return {};
}

std::string attr(std::string_view attrs, std::string_view name) {
  return xml_unescape(find_attr(attrs, name));
}

void append_utf8_code(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

bool has_sasl_ns(std::string_view attrs) {
  return attr(attrs, "xmlns").find("xmpp-sasl") != std::string::npos;
}

} // namespace

std::string xml_unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] != '&') {
      out.push_back(s[i++]);
      continue;
    }
    const size_t semi = s.find(';', i);
    if (semi == std::string_view::npos || semi - i > 12) {
      out.push_back(s[i++]);
      continue;
    }
    const std::string_view ent = s.substr(i + 1, semi - i - 1);
    bool ok = true;
    if (ent == "lt") {
      out.push_back('<');
    } else if (ent == "gt") {
      out.push_back('>');
    } else if (ent == "amp") {
      out.push_back('&');
    } else if (ent == "quot") {
      out.push_back('"');
    } else if (ent == "apos") {
      out.push_back('\'');
    } else if (ent.size() >= 2 && ent[0] == '#') {
      uint32_t cp = 0;
      const bool hex = ent[1] == 'x' || ent[1] == 'X';
      const std::string_view digits = ent.substr(hex ? 2 : 1);
      ok = !digits.empty();
      for (char c : digits) {
        uint32_t d;
        if (c >= '0' && c <= '9')
          d = static_cast<uint32_t>(c - '0');
        else if (hex && c >= 'a' && c <= 'f')
          d = static_cast<uint32_t>(c - 'a' + 10);
        else if (hex && c >= 'A' && c <= 'F')
          d = static_cast<uint32_t>(c - 'A' + 10);
        else {
          ok = false;
          break;
        }
        cp = cp * (hex ? 16 : 10) + d;
        if (cp > 0x10ffff) {
          ok = false;
          break;
        }
      }
      if (ok && (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff)))
        ok = false;
      if (ok)
        append_utf8_code(out, cp);
    } else {
      ok = false;
    }
    if (!ok) {
      out.push_back(s[i++]);
      continue;
    }
    i = semi + 1;
  }
  return out;
}

protocol_entry xmpp_protocol_entry() {
  protocol_entry e;
  e.id = app_protocol::xmpp;
  e.name = "xmpp";
  e.tcp_ports = {5222};
  e.probe = &xmpp_probe;
  e.make_stream = &make_xmpp_parser;
  return e;
}

bool xmpp_probe(const uint8_t* data, size_t len, direction /*dir*/) {
  std::string_view s(reinterpret_cast<const char*>(data), std::min<size_t>(len, 512));
  while (!s.empty() && is_space(s.front()))
    s.remove_prefix(1);
  if (s.compare(0, 14, "<stream:stream") == 0)
    return true;
  if (s.compare(0, 5, "<?xml") != 0)
    return false;
  return s.find("<stream:stream") != std::string_view::npos ||
         s.find("jabber") != std::string_view::npos || s.size() < 64;
}

std::unique_ptr<stream_parser> make_xmpp_parser(const parser_options& opts,
                                                parser_counters& counters) {
  return std::make_unique<xmpp_parser>(opts, counters);
}

xmpp_parser::xmpp_parser(const parser_options& opts, parser_counters& counters)
  : opts_(opts), counters_(counters) {}

void xmpp_parser::violate() {
  state_ = parser_state::violated;
  ++counters_.violations;
}

void xmpp_parser::deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
                          uint32_t /*seq*/, record_sink& out) {
  if (data == nullptr || len == 0)
    return;
  if (state_ == parser_state::done || state_ == parser_state::violated)
    return;
  side& s = sides_[static_cast<size_t>(dir) & 1];
  size_t pos = 0;
  if (s.skipping) {
    // Dropping the rest of an oversized tag.
    const void* gt = std::memchr(data, '>', len);
    if (gt == nullptr)
      return;
    pos = static_cast<size_t>(static_cast<const uint8_t*>(gt) - data) + 1;
    s.skipping = false;
  }
  s.buf.append(reinterpret_cast<const char*>(data + pos), len - pos);
  parse(s, dir, ts_ns, out);
  if (state_ != parser_state::violated && s.buf.size() > opts_.max_buffered) {
    // One unfinished tag longer than the buffer: skip it.
    ++counters_.limit_hits;
    if (state_ == parser_state::probing) {
      violate();
      return;
    }
    s.buf.clear();
    s.scan = 0;
    s.skipping = true;
  }
}

void xmpp_parser::parse(side& s, direction dir, uint64_t ts_ns, record_sink& out) {
  const std::string& b = s.buf;
  size_t pos = 0;
  // An unfinished markup at buf[0] was searched up to `resume` by the last
  // delivery: its search goes on from there (linear in the bytes seen).
  const size_t resume = s.scan;
  const char resume_quote = s.scan_quote;
  s.scan = 0;
  s.scan_quote = 0;
  // Where the search for a terminator of `n` bytes starts (`min` for markup
  // seen for the first time).
  const auto start = [&](size_t min, size_t n) {
    return pos == 0 && resume + 1 > min + n ? std::max(min, resume + 1 - n) : min;
  };
  // The markup at pos is not finished: remember how far it was searched.
  const auto unfinished = [&](size_t searched_from, char quote) {
    counters_.bytes_scanned += b.size() - std::min(searched_from, b.size());
    s.scan = b.size() - pos;
    s.scan_quote = quote;
  };
  while (pos < b.size()) {
    if (state_ == parser_state::done || state_ == parser_state::violated)
      break;
    if (b[pos] != '<') {
      const size_t lt = b.find('<', pos);
      size_t end = lt == std::string::npos ? b.size() : lt;
      counters_.bytes_scanned += end - pos;
      if (lt == std::string::npos) {
        // Keep a reference that may be cut ("&am" | "p;") for the next segment.
        const size_t amp = b.rfind('&');
        if (amp != std::string::npos && amp >= pos && b.size() - amp < 12 &&
            b.find(';', amp) == std::string::npos)
          end = amp;
      }
      const std::string_view text(b.data() + pos, end - pos);
      if (!s.seen_markup && state_ == parser_state::probing) {
        for (char c : text)
          if (!is_space(c)) {
            violate(); // not XML
            return;
          }
      }
      on_text(s, text);
      if (end == pos)
        break;
      pos = end;
      continue;
    }
    // Markup.
    if (b.compare(pos, 4, "<!--") == 0) {
      const size_t from = start(pos + 4, 3);
      const size_t e = b.find("-->", from);
      if (e == std::string::npos) {
        unfinished(from, 0);
        break;
      }
      counters_.bytes_scanned += e + 3 - from;
      pos = e + 3;
      continue;
    }
    if (b.compare(pos, 9, "<![CDATA[") == 0) {
      const size_t from = start(pos + 9, 3);
      const size_t e = b.find("]]>", from);
      if (e == std::string::npos) {
        unfinished(from, 0);
        break;
      }
      counters_.bytes_scanned += e + 3 - from;
      on_text(s, std::string_view(b.data() + pos + 9, e - pos - 9));
      pos = e + 3;
      continue;
    }
    if (b.compare(pos, 2, "<?") == 0) {
      const size_t from = start(pos + 2, 2);
      const size_t e = b.find("?>", from);
      if (e == std::string::npos) {
        unfinished(from, 0);
        break;
      }
      counters_.bytes_scanned += e + 2 - from;
      s.seen_markup = true;
      pos = e + 2;
      continue;
    }
    // A tag: find its '>' outside quoted attribute values.
    const bool resumed = pos == 0 && resume > 1;
    size_t i = resumed ? resume : pos + 1;
    char quote = resumed ? resume_quote : 0;
    const size_t from = i;
    for (; i < b.size(); ++i) {
      const char c = b[i];
      if (quote) {
        if (c == quote)
          quote = 0;
      } else if (c == '\'' || c == '"') {
        quote = c;
      } else if (c == '>') {
        break;
      }
    }
    if (i >= b.size()) { // incomplete tag
      unfinished(from, quote);
      break;
    }
    counters_.bytes_scanned += i + 1 - from;
    std::string_view tag(b.data() + pos + 1, i - pos - 1);
    pos = i + 1;
    s.seen_markup = true;
    if (!tag.empty() && tag.front() == '/') {
      tag.remove_prefix(1);
      while (!tag.empty() && is_space(tag.back()))
        tag.remove_suffix(1);
      on_end(s, dir, local_name(tag), ts_ns, out);
      continue;
    }
    bool empty = false;
    if (!tag.empty() && tag.back() == '/') {
      empty = true;
      tag.remove_suffix(1);
    }
    size_t n = 0;
    while (n < tag.size() && !is_space(tag[n]))
      ++n;
    const std::string_view qname = tag.substr(0, n);
    if (qname.empty()) {
      if (state_ == parser_state::probing) {
        violate();
        return;
      }
      continue;
    }
    on_start(s, dir, qname, tag.substr(n), empty, ts_ns, out);
  }
  s.buf.erase(0, std::min(pos, s.buf.size()));
}

void xmpp_parser::on_text(side& s, std::string_view text) {
  if (s.cap == capture::none || s.stack.size() != s.cap_depth)
    return;
  const size_t cap = 4 * opts_.max_field;
  const size_t room = cap > s.cap_text.size() ? cap - s.cap_text.size() : 0;
  if (text.size() > room)
    ++counters_.limit_hits;
  s.cap_text.append(text.data(), std::min(room, text.size()));
}

void xmpp_parser::on_start(side& s, direction dir, std::string_view qname,
                           std::string_view attrs, bool empty, uint64_t ts_ns,
                           record_sink& out) {
  const std::string_view name = local_name(qname);
  if (name == "stream" && qname != "stream") {
    // (Re)start of a stream: nothing of the previous one stays open.
    s.stack.clear();
    s.stack.emplace_back("stream");
    s.cap = capture::none;
    s.in_iq_auth = false;
    if (state_ == parser_state::probing)
      state_ = parser_state::confirmed;
    ++counters_.messages;
    if (domain_.empty()) {
      const std::string to = attr(attrs, "to");
      if (!to.empty())
        set(domain_, to);
    }
    return;
  }
  if (state_ == parser_state::probing)
    state_ = parser_state::confirmed;
  const size_t depth_before = s.stack.size();
  if (!empty) {
    if (s.stack.size() >= max_depth)
      ++counters_.limit_hits;
    else
      s.stack.emplace_back(name);
  }
  if (depth_before <= 1) {
    // A stanza or another stream-level element.
    ++counters_.messages;
    s.iq_id.clear();
    s.iq_result = false;
    s.iq_set = false;
  }
  auto start_capture = [&](capture c) {
    if (empty || s.stack.size() <= depth_before)
      return; // nothing to read (or too deep to track)
    s.cap = c;
    s.cap_depth = s.stack.size();
    s.cap_text.clear();
  };
  if (name == "auth" && has_sasl_ns(attrs)) {
    mechanism_ = attr(attrs, "mechanism").substr(0, 64);
    auth_seen_ = true;
    auth_dir_ = dir;
    start_capture(capture::auth);
  } else if (name == "response" && has_sasl_ns(attrs)) {
    start_capture(capture::response);
  } else if (name == "success" && has_sasl_ns(attrs)) {
    if (auth_seen_)
      login_pending_ = true;
  } else if (name == "failure" && has_sasl_ns(attrs)) {
    if (auth_seen_) {
      emit_login(1, ts_ns, out);
      auth_seen_ = false;
    }
  } else if (name == "starttls") {
    starttls_ = true;
  } else if (name == "proceed") {
    if (starttls_) {
      if (login_pending_)
        emit_login(0, ts_ns, out);
      hand_over(handover_kind::starttls); // TLS from here on: re-detected
    }
  } else if (name == "iq") {
    s.iq_id = attr(attrs, "id").substr(0, 256);
    const std::string type = attr(attrs, "type");
    if (!legacy_id_.empty() && s.iq_id == legacy_id_ && dir != auth_dir_ &&
        (type == "result" || type == "error")) {
      legacy_id_.clear();
      emit_login(type == "result" ? 0 : 1, ts_ns, out);
      auth_seen_ = false;
    }
    s.iq_result = type == "result";
    s.iq_set = type == "set";
  } else if (name == "query" && s.iq_set && attr(attrs, "xmlns") == "jabber:iq:auth") {
    if (!empty) {
      s.in_iq_auth = true;
      s.iq_auth_depth = s.stack.size();
    }
  } else if (s.in_iq_auth && (name == "username" || name == "password" || name == "resource")) {
    start_capture(name == "username" ? capture::username
                  : name == "password" ? capture::password : capture::resource);
  } else if (name == "jid" && s.iq_result && s.stack.size() >= 2 &&
             s.stack[s.stack.size() - 2] == "bind") {
    start_capture(capture::jid);
  } else if (name == "message") {
    const std::string to = attr(attrs, "to");
    if (!to.empty()) {
      parsed_record rec;
      rec.ts_ns = ts_ns;
      rec.dir = dir;
      v1::Im* im = rec.record.mutable_im();
      im->set_im_login(login_);
      im->set_im_screen_name(screen_);
      im->set_im_protocol(im_protocol_xmpp);
      std::string recv;
      if (text::assign_utf8(recv, to, opts_.max_field))
        ++counters_.truncated_fields;
      im->set_im_receivers(std::move(recv));
      im->set_result_code(0);
      emit(std::move(rec), out);
    }
  }
}

void xmpp_parser::on_end(side& s, direction dir, std::string_view name, uint64_t ts_ns,
                         record_sink& out) {
  if (name == "stream") {
    s.stack.clear();
    s.cap = capture::none;
    s.in_iq_auth = false;
    return;
  }
  if (s.cap != capture::none && s.stack.size() == s.cap_depth && s.stack.back() == name)
    end_capture(s, ts_ns, out);
  if (s.in_iq_auth && name == "query" && s.stack.size() == s.iq_auth_depth &&
      s.stack.back() == name) {
    s.in_iq_auth = false;
    if (!login_.empty() || !passw_.empty()) {
      // A legacy authentication request: the iq answer says how it went.
      auth_seen_ = true;
      auth_dir_ = dir;
      legacy_id_ = s.iq_id;
      if (!resource_.empty() && !login_.empty()) {
        std::string jid = login_;
        if (!domain_.empty())
          jid += "@" + domain_;
        jid += "/" + resource_;
        set(screen_, jid);
      }
    }
  }
  // Pop up to the matching element (tolerates unclosed children).
  for (size_t i = s.stack.size(); i-- > 0;) {
    if (s.stack[i] == name) {
      s.stack.resize(i);
      break;
    }
  }
}

void xmpp_parser::end_capture(side& s, uint64_t ts_ns, record_sink& out) {
  const capture c = s.cap;
  s.cap = capture::none;
  const std::string value = xml_unescape(s.cap_text);
  s.cap_text.clear();
  switch (c) {
  case capture::auth:
  case capture::response: {
    std::string_view v = value;
    while (!v.empty() && is_space(v.front()))
      v.remove_prefix(1);
    while (!v.empty() && is_space(v.back()))
      v.remove_suffix(1);
    if (v.empty() || v == "=")
      break;
    std::string dec;
    if (!sasl::base64_decode(v, dec, 4 * opts_.max_field))
      break;
    std::string mech = mechanism_;
    for (char& ch : mech)
      if (ch >= 'a' && ch <= 'z')
        ch = static_cast<char>(ch - 'a' + 'A');
    if (c == capture::auth && (mech == "PLAIN" || mech == "X-OAUTH2" || mech == "X-GOOGLE-TOKEN")) {
      sasl::plain_credentials cred;
      if (sasl::split_plain(dec, cred)) {
        set(login_, cred.authcid.empty() ? cred.authzid : cred.authcid);
        if (mech == "PLAIN")
          set(passw_, cred.passwd);
      }
    } else if (c == capture::auth && mech.compare(0, 6, "SCRAM-") == 0) {
      const std::string user = sasl::scram_username(dec);
      if (!user.empty())
        set(login_, user);
    } else if (c == capture::response && mech == "DIGEST-MD5") {
      const std::string user = sasl::digest_md5_username(dec);
      if (!user.empty())
        set(login_, user);
    }
    break;
  }
  case capture::username:
    set(login_, value);
    break;
  case capture::password:
    set(passw_, value);
    break;
  case capture::resource:
    set(resource_, value);
    break;
  case capture::jid:
    set(screen_, value);
    if (login_pending_)
      emit_login(0, ts_ns, out);
    break;
  case capture::none:
    break;
  }
}

void xmpp_parser::emit_login(uint32_t result, uint64_t ts_ns, record_sink& out) {
  login_pending_ = false;
  parsed_record rec;
  rec.ts_ns = ts_ns;
  rec.dir = auth_dir_;
  v1::Im* im = rec.record.mutable_im();
  im->set_im_login(login_);
  im->set_im_passw(passw_);
  im->set_im_screen_name(screen_);
  im->set_im_protocol(im_protocol_xmpp);
  im->set_result_code(result);
  emit(std::move(rec), out);
}

void xmpp_parser::emit(parsed_record&& rec, record_sink& out) {
  if (records_ >= opts_.max_records_per_flow) {
    ++counters_.limit_hits;
    return;
  }
  ++records_;
  ++counters_.records;
  out.push_back(std::move(rec));
}

void xmpp_parser::set(std::string& dst, std::string_view v) {
  if (text::assign_utf8(dst, v, opts_.max_field))
    ++counters_.truncated_fields;
}

void xmpp_parser::gap(direction dir, size_t /*len*/) {
  ++counters_.gaps;
  if (state_ == parser_state::done || state_ == parser_state::violated)
    return;
  side& s = sides_[static_cast<size_t>(dir) & 1];
  // The partial tag is lost; resume at the next '<'.
  s.buf.clear();
  s.scan = 0;
  s.skipping = false;
  s.cap = capture::none;
  s.cap_text.clear();
}

void xmpp_parser::finish(uint64_t ts_ns, record_sink& out) {
  if (state_ == parser_state::violated || state_ == parser_state::done)
    return;
  if (login_pending_)
    emit_login(0, ts_ns, out);
}


size_t xmpp_parser::memory_bytes() const {
  size_t n = sizeof(*this) + heap_bytes(mechanism_, login_, passw_, screen_, resource_, domain_) +
             heap_bytes(legacy_id_);
  for (const auto& s : sides_) {
    n += heap_bytes(s.buf, s.cap_text, s.iq_id) + heap_bytes(s.stack);
    for (const auto& e : s.stack)
      n += heap_bytes(e);
  }
  return n;
}

} // namespace metaprobe
