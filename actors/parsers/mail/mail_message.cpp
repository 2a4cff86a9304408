// SPDX-License-Identifier: Apache-2.0
#include "parsers/mail/mail_message.hpp"

#include "parsers/common/field_text.hpp"
#include "parsers/common/heap_bytes.hpp"

namespace metaprobe::mail {

namespace {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool is_field_name_char(char c) {
  // RFC 5322 ftext: printable US-ASCII except ':'.
  return c > 32 && c < 127 && c != ':';
}

} // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i]))
      return false;
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string mime_parameter(std::string_view value, std::string_view name) {
  size_t pos = value.find(';');
  while (pos != std::string_view::npos && pos < value.size()) {
    ++pos;
    while (pos < value.size() && (value[pos] == ' ' || value[pos] == '\t'))
      ++pos;
    const size_t eq = value.find('=', pos);
    if (eq == std::string_view::npos)
      return {};
    const std::string_view key = trim(value.substr(pos, eq - pos));
    size_t v = eq + 1;
    while (v < value.size() && (value[v] == ' ' || value[v] == '\t'))
      ++v;
    std::string out;
    if (v < value.size() && value[v] == '"') {
      ++v;
      while (v < value.size() && value[v] != '"') {
        if (value[v] == '\\' && v + 1 < value.size())
          ++v;
        out.push_back(value[v]);
        ++v;
      }
      if (v < value.size())
        ++v;
    } else {
      while (v < value.size() && value[v] != ';' && value[v] != ' ' && value[v] != '\t')
        out.push_back(value[v++]);
    }
    if (iequals(key, name) || (istarts_with(key, name) && key.size() > name.size() &&
                               key[name.size()] == '*'))
      return out;
    pos = value.find(';', v);
  }
  return {};
}

message_reader::message_reader(size_t max_field, size_t max_headers)
  : max_field_(max_field), max_headers_(max_headers) {}

void message_reader::reset() {
  f_ = message_fields{};
  zone_ = zone::top_headers;
  cur_ = field_id::none;
  cur_value_.clear();
  cur_cut_ = false;
  header_count_ = 0;
  block_ctype_.clear();
  block_cdisp_.clear();
  for (auto& b : boundaries_)
    b.clear();
  depth_ = 0;
}

void message_reader::line(std::string_view l, bool cut) {
  if (cut && zone_ != zone::body)
    cur_cut_ = true;
  if (zone_ == zone::body)
    body_line(l);
  else
    header_line(l);
}

void message_reader::end() {
  if (zone_ != zone::body)
    commit_field();
}

void message_reader::header_line(std::string_view l) {
  if (l.empty()) {
    end_of_header_block();
    return;
  }
  const size_t value_cap = 2 * max_field_ + 64; // raw bytes kept per field
  if (l.front() == ' ' || l.front() == '\t') {
    // Continuation (folding): the CRLF goes, the white space stays.
    if (cur_ != field_id::none) {
      if (cur_value_.size() + l.size() > value_cap)
        cur_cut_ = true;
      else
        cur_value_.append(l.data(), l.size());
    }
    return;
  }
  commit_field();
  size_t colon = 0;
  while (colon < l.size() && is_field_name_char(l[colon]))
    ++colon;
  // Obsolete syntax allows white space before the colon.
  size_t c = colon;
  while (c < l.size() && (l[c] == ' ' || l[c] == '\t'))
    ++c;
  if (colon == 0 || c >= l.size() || l[c] != ':') {
    // Not a header field: the body starts here (no separating empty line).
    end_of_header_block();
    body_line(l);
    return;
  }
  ++header_count_;
  if (header_count_ > max_headers_) {
    if (header_count_ == max_headers_ + 1)
      ++limit_hits_;
    return;
  }
  if (zone_ == zone::top_headers)
    f_.headers_seen = true;
  const std::string_view name = l.substr(0, colon);
  field_id id = field_id::none;
  if (zone_ == zone::top_headers) {
    if (iequals(name, "from"))
      id = field_id::from;
    else if (iequals(name, "to"))
      id = field_id::to;
    else if (iequals(name, "cc"))
      id = field_id::cc;
    else if (iequals(name, "subject"))
      id = field_id::subject;
    else if (iequals(name, "reply-to"))
      id = field_id::reply_to;
  }
  if (id == field_id::none) {
    if (iequals(name, "content-type"))
      id = field_id::content_type;
    else if (iequals(name, "content-disposition"))
      id = field_id::content_disposition;
  }
  cur_ = id;
  cur_value_.clear();
  if (id != field_id::none) {
    const std::string_view v = l.substr(c + 1);
    if (v.size() > value_cap)
      cur_cut_ = true;
    cur_value_.assign(v.data(), v.size() > value_cap ? value_cap : v.size());
  }
}

void message_reader::commit_field() {
  if (cur_ == field_id::none) {
    cur_cut_ = false;
    return;
  }
  const std::string_view v = trim(cur_value_);
  std::string* dst = nullptr;
  bool join = false;
  switch (cur_) {
  case field_id::from: dst = f_.from.empty() ? &f_.from : nullptr; break;
  case field_id::to: dst = &f_.to; join = true; break;
  case field_id::cc: dst = &f_.cc; join = true; break;
  case field_id::subject: dst = f_.subject.empty() ? &f_.subject : nullptr; break;
  case field_id::reply_to: dst = f_.reply_to.empty() ? &f_.reply_to : nullptr; break;
  case field_id::content_type:
  case field_id::content_disposition:
    note_part_field(cur_, v);
    break;
  case field_id::none: break;
  }
  if (dst != nullptr && !v.empty()) {
    bool lost = cur_cut_;
    if (join && !dst->empty()) {
      if (dst->size() + 2 <= max_field_)
        dst->append(", ");
      else
        lost = true;
    }
    lost = text::append_utf8(*dst, v, max_field_) || lost;
    if (lost)
      ++truncated_;
  }
  cur_ = field_id::none;
  cur_value_.clear();
  cur_cut_ = false;
}

void message_reader::note_part_field(field_id id, std::string_view value) {
  if (id == field_id::content_type)
    block_ctype_.assign(value.substr(0, 1024));
  else
    block_cdisp_.assign(value.substr(0, 1024));
}

void message_reader::end_of_header_block() {
  commit_field();
  // Attachment signs of the block just read (message or part).
  if (!block_cdisp_.empty()) {
    const std::string_view d = block_cdisp_;
    if (istarts_with(d, "attachment") || !mime_parameter(d, "filename").empty())
      f_.attachment = true;
  }
  if (!block_ctype_.empty()) {
    const std::string_view t = block_ctype_;
    if (!mime_parameter(t, "name").empty())
      f_.attachment = true;
    if (istarts_with(t, "multipart/")) {
      std::string b = mime_parameter(t, "boundary");
      if (!b.empty() && b.size() <= 200) {
        if (depth_ < max_depth)
          boundaries_[depth_++] = std::move(b);
        else
          ++limit_hits_;
      }
    }
  }
  block_ctype_.clear();
  block_cdisp_.clear();
  header_count_ = 0;
  zone_ = zone::body;
}

void message_reader::body_line(std::string_view l) {
  if (depth_ == 0 || l.size() < 3 || l[0] != '-' || l[1] != '-')
    return;
  std::string_view rest = l.substr(2);
  // Transport padding (white space) after a boundary is allowed.
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t'))
    rest.remove_suffix(1);
  for (size_t i = depth_; i-- > 0;) {
    const std::string& b = boundaries_[i];
    if (rest.size() < b.size() || rest.compare(0, b.size(), b) != 0)
      continue;
    const std::string_view tail = rest.substr(b.size());
    if (tail.empty()) {
      depth_ = i + 1; // inner multiparts that never closed end here
      zone_ = zone::part_headers;
      header_count_ = 0;
      return;
    }
    if (tail == "--") {
      depth_ = i; // close delimiter
      return;
    }
  }
}

size_t message_reader::memory_bytes() const {
  size_t n = heap_bytes(cur_value_, block_ctype_, block_cdisp_) +
             heap_bytes(f_.from, f_.to, f_.cc, f_.subject, f_.reply_to);
  for (const auto& b : boundaries_)
    n += heap_bytes(b);
  return n;
}

} // namespace metaprobe::mail
