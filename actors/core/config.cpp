// SPDX-License-Identifier: Apache-2.0
#include "core/config.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>

#include "core/list_text.hpp"

namespace metaprobe {

namespace {

constexpr size_t max_config_bytes = 16u << 20;
constexpr size_t max_reported_errors = 50;

// ---- text helpers ----


std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return r;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string r;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i)
      r += sep;
    r += v[i];
  }
  return r;
}

std::string num_text(double d) {
  if (std::floor(d) == d && std::fabs(d) < 1e15)
    return std::to_string(static_cast<int64_t>(d));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", d);
  return buf;
}

std::string size_text(int64_t v) {
  static const char* units[] = {"", "K", "M", "G", "T"};
  int u = 0;
  while (u < 4 && v != 0 && v % 1024 == 0) {
    v /= 1024;
    ++u;
  }
  return std::to_string(v) + units[u];
}

std::string hex_text(int64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// Printable rendering of a value in messages (control bytes as \xHH).
std::string shown(std::string_view s) {
  std::string r;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      r += buf;
    } else {
      r += static_cast<char>(c);
    }
  }
  if (r.size() > 200)
    r = r.substr(0, 200) + "...";
  return r;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// Schema key names an operator might have meant.
const std::vector<std::string>& key_candidates() {
  static const std::vector<std::string> candidates = [] {
    std::vector<std::string> c;
    for (const auto& k : config_schema()) {
      if (!k.pattern)
        c.push_back(k.name);
      else
        for (const auto& s : k.suffixes)
          c.push_back(k.name + "." + s);
    }
    return c;
  }();
  return candidates;
}

std::string suggestion(std::string_view key) {
  if (key.size() > 64) // no key is that long; spare the edit distances
    return {};
  std::string lk = lower(key);
  size_t best = std::numeric_limits<size_t>::max();
  std::string best_name;
  for (const auto& c : key_candidates()) {
    size_t d = edit_distance(lk, c);
    if (d < best) {
      best = d;
      best_name = c;
    }
  }
  size_t limit = std::max<size_t>(1, std::min<size_t>(3, key.size() / 3));
  if (best <= limit)
    return best_name;
  return {};
}

// ---- value parsers ----

std::optional<int64_t> parse_int(std::string_view s, bool allow_hex) {
  if (s.empty())
    return std::nullopt;
  int64_t v = 0;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (allow_hex && s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    uint64_t u = 0;
    auto r = std::from_chars(b + 2, e, u, 16);
    if (r.ec != std::errc{} || r.ptr != e || u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (*b == '+')
    ++b;
  if (b == e)
    return std::nullopt;
  auto r = std::from_chars(b, e, v, 10);
  if (r.ec != std::errc{} || r.ptr != e)
    return std::nullopt;
  return v;
}

std::optional<bool> parse_bool(std::string_view s) {
  std::string l = lower(s);
  if (l == "1" || l == "yes" || l == "true" || l == "on")
    return true;
  if (l == "0" || l == "no" || l == "false" || l == "off")
    return false;
  return std::nullopt;
}

std::optional<double> parse_duration(std::string_view s, double bare_unit) {
  size_t n = 0;
  while (n < s.size() && ((s[n] >= '0' && s[n] <= '9') || s[n] == '.'))
    ++n;
  if (n == 0)
    return std::nullopt;
  double v = 0;
  auto r = std::from_chars(s.data(), s.data() + n, v);
  if (r.ec != std::errc{} || r.ptr != s.data() + n || !std::isfinite(v))
    return std::nullopt;
  std::string unit = lower(trim_space(s.substr(n)));
  double mult;
  if (unit.empty())
    mult = bare_unit;
  else if (unit == "ms")
    mult = 0.001;
  else if (unit == "s" || unit == "sec")
    mult = 1;
  else if (unit == "m" || unit == "min")
    mult = 60;
  else if (unit == "h")
    mult = 3600;
  else
    return std::nullopt;
  double out = v * mult;
  if (!std::isfinite(out))
    return std::nullopt;
  return out;
}

std::optional<uint64_t> parse_size(std::string_view s) {
  size_t n = 0;
  while (n < s.size() && s[n] >= '0' && s[n] <= '9')
    ++n;
  if (n == 0)
    return std::nullopt;
  uint64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + n, v, 10);
  if (r.ec != std::errc{})
    return std::nullopt;
  std::string unit = lower(trim_space(s.substr(n)));
  int shift = 0;
  if (!unit.empty() && unit != "b") {
    switch (unit[0]) {
    case 'k': shift = 10; break;
    case 'm': shift = 20; break;
    case 'g': shift = 30; break;
    case 't': shift = 40; break;
    default: return std::nullopt;
    }
    std::string rest = unit.substr(1);
    if (!(rest.empty() || rest == "b" || rest == "ib"))
      return std::nullopt;
  }
  if (shift && v > (std::numeric_limits<uint64_t>::max() >> shift))
    return std::nullopt;
  return v << shift;
}

bool valid_hostname(std::string_view h) {
  if (h.empty() || h.size() > 253)
    return false;
  size_t label = 0;
  char prev = '.';
  for (char c : h) {
    if (c == '.') {
      if (label == 0 || prev == '-')
        return false;
      label = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_') {
      if (label == 0 && c == '-')
        return false;
      if (++label > 63)
        return false;
    } else {
      return false;
    }
    prev = c;
  }
  return prev != '-';
}

// Parses one `host:port`; returns an error text or "".
std::string parse_endpoint(std::string_view item, endpoint& out) {
  std::string bad = "bad address '" + shown(item) + "' (expected host:port)";
  std::string_view host, port;
  if (!item.empty() && item.front() == '[') {
    size_t close = item.find(']');
    if (close == std::string_view::npos || close + 1 >= item.size() || item[close + 1] != ':')
      return "bad address '" + shown(item) + "' (expected [IPv6]:port)";
    host = item.substr(1, close - 1);
    port = item.substr(close + 2);
    std::string h(host);
    unsigned char buf[16];
    if (inet_pton(AF_INET6, h.c_str(), buf) != 1)
      return "bad address '" + shown(item) + "' (not an IPv6 address in brackets)";
  } else {
    size_t colon = item.rfind(':');
    if (colon == std::string_view::npos)
      return bad;
    host = item.substr(0, colon);
    port = item.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return "bad address '" + shown(item) + "' (write IPv6 as [address]:port)";
    if (host.empty())
      return bad;
    bool numeric = std::all_of(host.begin(), host.end(),
                               [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
    std::string h(host);
    unsigned char buf[4];
    if (numeric) {
      if (inet_pton(AF_INET, h.c_str(), buf) != 1)
        return "bad address '" + shown(item) + "' (not an IPv4 address)";
    } else if (!valid_hostname(host)) {
      return "bad address '" + shown(item) + "' (not a valid hostname)";
    }
  }
  auto p = parse_int(port, false);
  if (!p || *p < 1 || *p > 65535)
    return "bad port in '" + shown(item) + "' (expected 1..65535)";
  out.host = std::string(host);
  out.port = static_cast<uint16_t>(*p);
  return {};
}

// Parses `text` as a value of `spec` into `v`; returns an error text or "".
std::string parse_value(const key_spec& spec, const std::string& text, config::value& v) {
  v.text = text;
  switch (spec.type) {
  case key_type::string:
  case key_type::path:
    break;
  case key_type::integer:
  case key_type::mask: {
    auto i = parse_int(text, spec.type == key_type::mask);
    if (!i || *i < spec.min || *i > spec.max) {
      if (spec.type == key_type::mask)
        return "expected an integer or 0x-hex mask " + std::to_string(spec.min) + ".." +
               hex_text(spec.max) + ", got '" + shown(text) + "'";
      return "expected an integer " + std::to_string(spec.min) + ".." + std::to_string(spec.max) +
             ", got '" + shown(text) + "'";
    }
    v.i = *i;
    v.b = *i != 0;
    break;
  }
  case key_type::boolean: {
    auto b = parse_bool(text);
    if (!b)
      return "expected a boolean (0/1, yes/no, true/false, on/off), got '" + shown(text) + "'";
    v.b = *b;
    v.i = *b ? 1 : 0;
    break;
  }
  case key_type::duration: {
    auto d = parse_duration(text, spec.bare_unit_s);
    if (!d || *d < spec.min_s || *d > spec.max_s) {
      std::string unit = spec.bare_unit_s == 60 ? "minutes" : "seconds";
      return "expected a duration " + num_text(spec.min_s) + ".." + num_text(spec.max_s) +
             " s (a bare number counts " + unit + "; or 500ms, 90s, 5m, 1h), got '" +
             shown(text) + "'";
    }
    v.d = *d;
    break;
  }
  case key_type::size: {
    auto u = parse_size(text);
    if (!u || *u < static_cast<uint64_t>(spec.min) || *u > static_cast<uint64_t>(spec.max))
      return "expected a size " + size_text(spec.min) + ".." + size_text(spec.max) +
             " bytes (e.g. 65536, 64K, 100M, 1G), got '" + shown(text) + "'";
    v.u = *u;
    break;
  }
  case key_type::endpoints: {
    v.eps.clear();
    std::string_view all = trim_space(text);
    if (all.empty())
      break;
    size_t start = 0;
    while (true) {
      size_t comma = all.find(',', start);
      std::string_view item =
          trim_space(all.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
      if (item.empty())
        return "empty address in list '" + shown(text) + "'";
      endpoint ep;
      std::string err = parse_endpoint(item, ep);
      if (!err.empty())
        return err;
      v.eps.push_back(std::move(ep));
      if (comma == std::string_view::npos)
        break;
      start = comma + 1;
    }
    break;
  }
  case key_type::enumeration: {
    std::string l = lower(text);
    if (std::find(spec.choices.begin(), spec.choices.end(), l) == spec.choices.end())
      return "expected one of " + join(spec.choices, ", ") + ", got '" + shown(text) + "'";
    v.text = l;
    break;
  }
  case key_type::format: {
    v.fields.clear();
    const auto& valid = text_format_fields(spec.format_kind);
    if (trim_space(text).empty())
      return "expected colon-separated fields (valid fields: " + join(valid, ", ") + ")";
    std::string_view all = trim_space(text);
    size_t start = 0;
    while (true) {
      size_t colon = all.find(':', start);
      std::string_view f =
          trim_space(all.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start));
      if (f.empty())
        return "empty field in format '" + shown(text) + "'";
      if (std::find(valid.begin(), valid.end(), f) == valid.end())
        return "unknown field '" + shown(f) + "' in format (valid fields: " + join(valid, ", ") +
               ")";
      v.fields.emplace_back(f);
      if (colon == std::string_view::npos)
        break;
      start = colon + 1;
    }
    break;
  }
  }
  if (spec.check) {
    std::string err = spec.check(text);
    if (!err.empty())
      return err;
  }
  return {};
}

// Collects problems; load fails if any.
struct error_list {
  std::vector<std::string> msgs;
  size_t dropped = 0;
  bool full() const { return msgs.size() >= max_reported_errors; }
  void add(std::string m) {
    if (!full())
      msgs.push_back(std::move(m));
    else
      ++dropped;
  }
  void throw_if_any() const {
    if (msgs.empty())
      return;
    std::string all = join(msgs, "\n");
    if (dropped)
      all += "\n... and " + std::to_string(dropped) + " more errors";
    throw config_error(all);
  }
};

bool valid_key_chars(std::string_view k) {
  if (k.empty())
    return false;
  return std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
  });
}

// Why `key` is not in the schema, for an error message.
std::string unknown_key_text(std::string_view key) {
  for (const auto& k : config_schema()) {
    if (!k.pattern)
      continue;
    if (key == k.name)
      return "needs a suffix: " + k.name + ".<" + (k.suffixes.empty() ? "name" : join(k.suffixes, "|")) + ">";
    if (key.size() > k.name.size() && key.compare(0, k.name.size(), k.name) == 0 &&
        key[k.name.size()] == '.') {
      std::string suffix(key.substr(k.name.size() + 1));
      return "unknown " + k.name + " suffix '" + shown(suffix) + "' (expected " +
             (k.suffixes.empty() ? std::string("lowercase letters, digits, '_' and '.'")
                                 : "one of " + join(k.suffixes, ", ")) +
             ")";
    }
  }
  std::string s = suggestion(key);
  if (!s.empty())
    return "unknown key (did you mean '" + s + "'?)";
  return "unknown key";
}

bool has_control_chars(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return (c < 0x20 && c != '\t') || c == 0x7f;
  });
}

} // namespace

std::string endpoint::text() const {
  if (host.find(':') != std::string::npos)
    return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::string_view key_type_name(key_type t) {
  switch (t) {
  case key_type::string: return "string";
  case key_type::integer: return "integer";
  case key_type::boolean: return "boolean";
  case key_type::mask: return "mask";
  case key_type::duration: return "duration";
  case key_type::size: return "size";
  case key_type::endpoints: return "endpoints";
  case key_type::path: return "path";
  case key_type::enumeration: return "enum";
  case key_type::format: return "format";
  }
  return "?";
}

config config::load(const std::string& path, const std::vector<std::string>& overrides) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f)
    throw config_error("cannot open config file '" + path + "': " + std::strerror(errno));
  std::string text;
  char buf[65536];
  while (true) {
    size_t n = std::fread(buf, 1, sizeof buf, f);
    text.append(buf, n);
    if (text.size() > max_config_bytes) {
      std::fclose(f);
      throw config_error("cannot read config file '" + path + "': larger than " +
                         size_text(static_cast<int64_t>(max_config_bytes)) + " bytes");
    }
    if (n < sizeof buf)
      break;
  }
  int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (err)
    throw config_error("cannot read config file '" + path + "': " + std::strerror(err));
  return parse(text, path, overrides);
}

config config::from_overrides(const std::vector<std::string>& overrides) {
  return parse({}, {}, overrides);
}

config config::parse(std::string_view text, const std::string& source,
                     const std::vector<std::string>& overrides) {
  config c;
  // Defaults; a bad default is a bug in the schema, not an operator error.
  for (const auto& spec : config_schema()) {
    value v;
    std::string err = parse_value(spec, spec.default_value, v);
    if (!err.empty())
      throw std::logic_error("config schema: default of '" + spec.name + "': " + err);
    v.origin = "default";
    if (!spec.pattern)
      c.values_[spec.name] = v;
    else if (spec.suffixes.empty())
      c.pattern_defaults_[spec.name] = v;
    else
      for (const auto& s : spec.suffixes)
        c.values_[spec.name + "." + s] = v;
  }

  error_list errors;
  std::map<std::string, size_t> first_line; // key -> line in the file

  auto apply = [&](const std::string& origin, const std::string& key, const std::string& val) {
    const key_spec* spec = find_key_spec(key);
    if (!spec) {
      if (errors.full())
        errors.add({}); // only counted
      else
        errors.add(origin + ": key '" + shown(key) + "': " + unknown_key_text(key));
      return;
    }
    if (has_control_chars(val)) {
      errors.add(origin + ": key '" + key + "': control character in value '" + shown(val) + "'");
      return;
    }
    value v;
    std::string err = parse_value(*spec, val, v);
    if (!err.empty()) {
      errors.add(origin + ": key '" + key + "': " + err);
      return;
    }
    v.origin = origin;
    v.set = true;
    c.values_[key] = std::move(v);
  };

  // ---- the file ----
  size_t line_no = 0;
  size_t pos = 0;
  if (text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0)
    pos = 3;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line =
        text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    std::string origin = source + ":" + std::to_string(line_no);

    line = trim_space(line);
    if (line.empty() || line.front() == '#')
      continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      errors.add(origin + ": expected key=value, got '" + shown(line) + "'");
      continue;
    }
    std::string key(trim_space(line.substr(0, eq)));
    if (!valid_key_chars(key)) {
      errors.add(origin + ": bad key name '" + shown(key) +
                 "' (letters, digits, '_', '.' and '-' only)");
      continue;
    }
    std::string_view rest = trim_space(line.substr(eq + 1));
    std::string val;
    if (!rest.empty() && (rest.front() == '"' || rest.front() == '\'')) {
      char q = rest.front();
      size_t close = rest.find(q, 1);
      if (close == std::string_view::npos) {
        errors.add(origin + ": key '" + key + "': unterminated quote in value");
        continue;
      }
      std::string_view after = trim_space(rest.substr(close + 1));
      if (!after.empty() && after.front() != '#') {
        errors.add(origin + ": key '" + key + "': unexpected text after quoted value: '" +
                   shown(after) + "'");
        continue;
      }
      val = std::string(rest.substr(1, close - 1));
    } else {
      size_t cut = std::string_view::npos;
      for (size_t i = 0; i < rest.size(); ++i) {
        if (rest[i] == '#' && (i == 0 || rest[i - 1] == ' ' || rest[i - 1] == '\t')) {
          cut = i;
          break;
        }
      }
      val = std::string(trim_space(rest.substr(0, cut)));
    }
    auto [it, inserted] = first_line.emplace(key, line_no);
    if (!inserted) {
      errors.add(origin + ": key '" + key + "': set twice (first on line " +
                 std::to_string(it->second) + "); remove one");
      continue;
    }
    apply(origin, key, val);
  }

  // ---- --set overrides: always win ----
  for (const auto& o : overrides) {
    std::string origin = "--set " + shown(o);
    size_t eq = o.find('=');
    std::string key = eq == std::string::npos ? std::string{} : std::string(trim_space(std::string_view(o).substr(0, eq)));
    if (eq == std::string::npos || !valid_key_chars(key)) {
      errors.add(origin + ": expected key=value");
      continue;
    }
    std::string_view val = trim_space(std::string_view(o).substr(eq + 1));
    if (val.size() >= 2 && (val.front() == '"' || val.front() == '\'') && val.back() == val.front())
      val = val.substr(1, val.size() - 2);
    // The file must still be valid on its own: an override does not hide
    // a file error for the same key.
    apply(origin, key, std::string(val));
  }

  // ---- cross-key rules ----
  if (errors.msgs.empty()) {
    for (const char* kind : {"url", "ssl", "sip", "dns"}) {
      std::string save = std::string("ajb_save_") + kind;
      std::string path = std::string("ajb_") + kind + "_path";
      if (c.values_[save].i != 0 && c.values_[path].text.empty()) {
        const value& pv = c.values_[path];
        errors.add((pv.set ? pv.origin : c.values_[save].origin) + ": key '" + path +
                   "': must not be empty when " + save + " is on");
      }
    }
  }

  // Records and control requests (with the secret) must not cross a
  // network in clear: tcp:// off loopback needs CURVE or an explicit yes.
  if (errors.msgs.empty() && c.values_["curve_keys"].text.empty() &&
      !c.values_["allow_plaintext_tcp"].b) {
    for (const char* key : {"channel_endpoint", "control_listen"}) {
      const value& v = c.values_[key];
      if (v.text.rfind("tcp://", 0) != 0)
        continue;
      std::string host = v.text.substr(6, v.text.rfind(':') - 6);
      if (!loopback_host(host))
        errors.add((v.set ? v.origin : std::string("default")) + ": key '" + key + "': " +
                   v.text + " is not a loopback address and would carry " +
                   (std::string(key) == "channel_endpoint" ? "records" : "control requests") +
                   " in clear: set curve_keys (keys from metaprobe-keygen DIR) or, on a "
                   "trusted network only, allow_plaintext_tcp=1");
    }
  }

  errors.throw_if_any();
  return c;
}

bool loopback_host(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1")
    return true;
  // 127.0.0.0/8, dotted quad
  if (host.rfind("127.", 0) != 0)
    return false;
  int dots = 0;
  for (char ch : host) {
    if (ch == '.')
      ++dots;
    else if (ch < '0' || ch > '9')
      return false;
  }
  return dots == 3;
}

const config::value& config::lookup(const std::string& key, const key_spec** spec) const {
  const key_spec* s = find_key_spec(key);
  if (!s)
    throw std::logic_error("config: unknown key '" + key + "'");
  if (spec)
    *spec = s;
  auto it = values_.find(key);
  if (it != values_.end())
    return it->second;
  auto pd = pattern_defaults_.find(s->name);
  if (pd != pattern_defaults_.end())
    return pd->second;
  throw std::logic_error("config: no value for key '" + key + "'");
}

namespace {
[[noreturn]] void wrong_type(const std::string& key, const key_spec& s, std::string_view want) {
  throw std::logic_error("config: key '" + key + "' is a " + std::string(key_type_name(s.type)) +
                         ", not a " + std::string(want));
}
} // namespace

std::string config::str(const std::string& key) const { return lookup(key, nullptr).text; }

int64_t config::integer(const std::string& key) const {
  const key_spec* s = nullptr;
  const value& v = lookup(key, &s);
  if (s->type == key_type::size)
    return v.u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
               ? std::numeric_limits<int64_t>::max()
               : static_cast<int64_t>(v.u);
  if (s->type != key_type::integer && s->type != key_type::mask && s->type != key_type::boolean)
    wrong_type(key, *s, "integer");
  return v.i;
}

bool config::flag(const std::string& key) const {
  const key_spec* s = nullptr;
  const value& v = lookup(key, &s);
  if (s->type != key_type::integer && s->type != key_type::mask && s->type != key_type::boolean)
    wrong_type(key, *s, "boolean");
  return v.b;
}

double config::seconds(const std::string& key) const {
  const key_spec* s = nullptr;
  const value& v = lookup(key, &s);
  if (s->type != key_type::duration)
    wrong_type(key, *s, "duration");
  return v.d;
}

uint64_t config::size(const std::string& key) const {
  const key_spec* s = nullptr;
  const value& v = lookup(key, &s);
  if (s->type != key_type::size)
    wrong_type(key, *s, "size");
  return v.u;
}

std::vector<endpoint> config::endpoints(const std::string& key) const {
  const key_spec* s = nullptr;
  const value& v = lookup(key, &s);
  if (s->type != key_type::endpoints)
    wrong_type(key, *s, "endpoint list");
  return v.eps;
}

std::vector<std::string> config::fields(const std::string& key) const {
  const key_spec* s = nullptr;
  const value& v = lookup(key, &s);
  if (s->type != key_type::format)
    wrong_type(key, *s, "format");
  return v.fields;
}

bool config::is_set(const std::string& key) const { return lookup(key, nullptr).set; }

std::string config::origin(const std::string& key) const { return lookup(key, nullptr).origin; }

std::vector<std::pair<std::string, std::string>> config::effective() const {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(values_.size());
  for (const auto& [k, v] : values_)
    out.emplace_back(k, v.text);
  // values_ is a std::map: already sorted by key.
  return out;
}

} // namespace metaprobe
