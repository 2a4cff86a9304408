// SPDX-License-Identifier: Apache-2.0
#pragma once
// metaprobe configuration: one file of `key=value` lines plus `--set
// key=value` overrides from the command line, checked against one schema
// (config_schema.cpp) that lists every key with its type, range, default and
// documentation. config/metaprobe.conf and docs/configuration.md describe
// the same keys for operators.
//
// File syntax:
//   - one `key = value` per line; whitespace around key and value is trimmed
//   - `#` starts a comment at the beginning of a line or after whitespace
//     (`a=b#c` keeps `b#c`); blank lines are ignored
//   - a value may be quoted with "..." or '...' (keeps spaces and `#`)
//   - a key set twice in one file is an error naming both lines; --set
//     overrides always win over the file
//   - pattern keys carry a dotted suffix: `exporter_instances.dns=2`
//
// Errors: load()/from_overrides() validate everything before returning and
// throw config_error whose what() names the origin, the key and what was
// expected, e.g.
//   metaprobe.conf:12: key 'workers': expected an integer 1..64, got 'abc'
//   --set workers=abc: key 'workers': expected an integer 1..64, got 'abc'
// Several problems are reported together, one per line. Nothing is returned
// half-configured. Services exit with code 2 on config_error.
//
// Getters: asking for a key the schema does not know, or with the getter of
// another type, is a programming error and throws std::logic_error.
//
// Threading: a loaded config is immutable; const methods are safe to call
// from several threads.

#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace metaprobe {

// A configuration problem an operator must fix (bad file, bad value).
class config_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// One `host:port` of an endpoint list. `host` is an IPv4 address, an IPv6
// address (without brackets) or a hostname.
struct endpoint {
  std::string host;
  uint16_t port = 0;
  // "1.2.3.4:4739", "[2001:db8::1]:4739", "collector.example:4739"
  std::string text() const;
  bool operator==(const endpoint& o) const { return host == o.host && port == o.port; }
  bool operator!=(const endpoint& o) const { return !(*this == o); }
};

enum class key_type : uint8_t {
  string,      // free text
  integer,     // decimal integer within [min, max]
  boolean,     // 0/1/yes/no/true/false/on/off
  mask,        // decimal or 0x-hex integer within [min, max] (dbg_log_mask)
  duration,    // seconds: 30, 1.5, 500ms, 90s, 5m, 1h; bare numbers count
               // in `bare_unit_s` seconds (60 for ajb_dns_ftimeout)
  size,        // bytes with optional K/M/G/T suffix (powers of 1024)
  endpoints,   // comma-separated host:port list, may be empty
  path,        // file system path, may be empty
  enumeration, // one of `choices`
  format,      // colon-separated text-export field names of `format_kind`
};

std::string_view key_type_name(key_type t);

struct key_spec {
  std::string name;      // pattern keys: the part before the dot
  key_type type = key_type::string;
  std::string default_value;
  std::string doc;       // one line
  std::string section;   // heading in metaprobe.conf / configuration.md
  int64_t min = 0;       // integer, mask, size
  int64_t max = 0;
  double min_s = 0;      // duration bounds, seconds
  double max_s = 0;
  double bare_unit_s = 1; // duration: seconds per unit-less number
  std::vector<std::string> choices; // enumeration
  std::string format_kind;          // format: "url", "ssl", "sip", "dns"
  bool pattern = false;             // key is `name.<suffix>`
  std::vector<std::string> suffixes; // allowed suffixes; empty = any [a-z0-9_]+
  // Extra validation of the (unquoted) text; returns an error text or "".
  std::function<std::string(const std::string&)> check;
};

// Every key metaprobe knows, in documentation order.
const std::vector<key_spec>& config_schema();

// The schema entry for `key` ("workers", "exporter_instances.dns"), or
// nullptr when unknown (including a pattern key with a bad suffix).
const key_spec* find_key_spec(std::string_view key);

// True for a loopback host: 127.0.0.0/8 (dotted), ::1 (bracketed or not),
// localhost. Anything else (0.0.0.0, hostnames) may reach the network.
bool loopback_host(std::string_view host);

// Field names the text export accepts in `ajb_save_<kind>_format`, kind one
// of "url", "ssl", "sip", "dns". Unknown kind: empty list.
const std::vector<std::string>& text_format_fields(std::string_view kind);

class config {
public:
  // Reads `path`, applies `overrides` ("key=value" from --set, which win
  // over the file) and validates everything. Throws config_error.
  static config load(const std::string& path,
                     const std::vector<std::string>& overrides = {});
  // Defaults plus overrides, no file. Throws config_error.
  static config from_overrides(const std::vector<std::string>& overrides = {});
  // Like load(), with the file's text given; `source` names it in errors.
  // Used by load(), tests and the fuzz target.
  static config parse(std::string_view text, const std::string& source,
                      const std::vector<std::string>& overrides = {});

  // The value as text (after trimming and unquoting); any key type.
  std::string str(const std::string& key) const;
  // integer and mask keys; boolean keys give 0/1, size keys their bytes.
  int64_t integer(const std::string& key) const;
  // boolean keys; integer and mask keys give value != 0.
  bool flag(const std::string& key) const;
  // duration keys, in seconds.
  double seconds(const std::string& key) const;
  // size keys, in bytes.
  uint64_t size(const std::string& key) const;
  // endpoints keys; empty when the value is empty.
  std::vector<endpoint> endpoints(const std::string& key) const;
  // format keys: the field names in order.
  std::vector<std::string> fields(const std::string& key) const;
  // True when the file or an override set the key (even to its default).
  bool is_set(const std::string& key) const;
  // Where the value came from: "metaprobe.conf:12", "--set", "default".
  std::string origin(const std::string& key) const;
  // Every key with its value, sorted by key. Pattern keys appear once per
  // allowed suffix (or per set instance when any suffix is allowed).
  std::vector<std::pair<std::string, std::string>> effective() const;

  struct value {
    std::string text;
    std::string origin; // "file:line", "--set" or "default"
    bool set = false;
    int64_t i = 0;
    double d = 0;
    uint64_t u = 0;
    bool b = false;
    std::vector<endpoint> eps;
    std::vector<std::string> fields;
  };

private:
  config() = default;
  const value& lookup(const std::string& key, const key_spec** spec) const;

  std::map<std::string, value> values_;
  // Defaults of pattern keys whose suffix is free (any instance).
  std::map<std::string, value> pattern_defaults_;
};

} // namespace metaprobe
