// SPDX-License-Identifier: Apache-2.0
#pragma once
// Subscriber map: gives the LOGIN of a subscriber address. Loaded from the
// file named by `subscribers_file`, one `ip login` pair per line:
//
//   # comment
//   10.0.0.1      alice
//   2001:db8::10  bob      # trailing comment
//
// Addresses match exactly (no prefixes); an IPv4 address never matches an
// IPv6 one. Logins are 1..256 bytes without whitespace or control
// characters (`#` after whitespace starts a comment). A bad line, or an address listed twice, is a config_error
// naming the file and line.
//
// Threading: immutable after load(); login_for() is safe from any thread.
// Lookup is one hash-map probe.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/config.hpp"
#include "core/packet.hpp"

namespace metaprobe {

// "10.0.0.1" or "2001:db8::1" (no brackets, no zone); nullopt if neither.
std::optional<ip_address> parse_ip_address(std::string_view text);
// Text form of an address: dotted quad or RFC 5952 IPv6; "" when unset.
std::string ip_address_text(const ip_address& a);

class subscriber_map {
public:
  static constexpr size_t max_login = 256;

  subscriber_map() = default;
  // Throws config_error ("cannot open subscribers file ..." or
  // "subs.txt:3: ...").
  static subscriber_map load(const std::string& path);
  // Same with the file's text given; `source` names it in errors.
  static subscriber_map parse(std::string_view text, const std::string& source);

  // Adds or replaces one entry (tests, programmatic use).
  void add(const ip_address& addr, std::string login);
  // The login of `addr`, or an empty view. Valid while the map lives.
  std::string_view login_for(const ip_address& addr) const;
  size_t size() const { return map_.size(); }

private:
  // Hash and equality over the family and the bytes in use (an IPv4
  // address's unused bytes never matter).
  struct key_hash {
    size_t operator()(const ip_address& a) const noexcept;
  };
  struct key_eq {
    bool operator()(const ip_address& a, const ip_address& b) const noexcept;
  };
  std::unordered_map<ip_address, std::string, key_hash, key_eq> map_;
};

} // namespace metaprobe
