// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the configuration file parser and the subscriber-map parser.
// The input is the file's bytes. The first byte picks the parser; for the
// config parser, lines after a NUL byte are also fed as --set overrides. Bad input must end in config_error, never in a crash, a
// logic_error (which would mean a getter or schema default is broken) or a
// silently half-built config.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/subscribers.hpp"

using namespace metaprobe;

namespace {

void fuzz_config(std::string_view text) {
  std::vector<std::string> overrides;
  size_t sep = text.find('\0');
  std::string_view file = text;
  if (sep != std::string_view::npos) {
    file = text.substr(0, sep);
    std::string_view rest = text.substr(sep + 1);
    while (!rest.empty() && overrides.size() < 16) {
      size_t nl = rest.find('\n');
      overrides.emplace_back(rest.substr(0, nl));
      rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    }
  }
  try {
    config c = config::parse(file, "fuzz.conf", overrides);
    // A config that loaded must answer every getter of its keys' types.
    for (const auto& [key, value] : c.effective()) {
      const key_spec* spec = find_key_spec(key);
      if (!spec)
        __builtin_trap();
      (void)c.str(key);
      (void)c.is_set(key);
      switch (spec->type) {
      case key_type::integer:
      case key_type::mask:
      case key_type::boolean: (void)c.integer(key); (void)c.flag(key); break;
      case key_type::duration: (void)c.seconds(key); break;
      case key_type::size: (void)c.size(key); break;
      case key_type::endpoints:
        for (const auto& e : c.endpoints(key))
          (void)e.text();
        break;
      case key_type::format: (void)c.fields(key); break;
      default: break;
      }
    }
  } catch (const config_error&) {
  }
}

void fuzz_subscribers(std::string_view text) {
  try {
    subscriber_map m = subscriber_map::parse(text, "fuzz.subs");
    ip_address a;
    a.family = 4;
    (void)m.login_for(a);
    (void)m.size();
  } catch (const config_error&) {
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1)
    fuzz_subscribers(text);
  else
    fuzz_config(text);
  return 0;
}
