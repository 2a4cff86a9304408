// SPDX-License-Identifier: Apache-2.0
#include "core/decap_config.hpp"

#include <charconv>

#include "core/list_text.hpp"

namespace metaprobe {

namespace {

constexpr const char* names[decap_kind_count] = {
  "gre", "erspan", "vxlan", "vxlan_gpe", "geneve", "gtpu", "ip_in_ip", "l2tp", "teredo",
};

bool find_kind(std::string_view name, decap_kind& k) {
  for (size_t i = 0; i < decap_kind_count; ++i)
    if (name == names[i]) {
      k = static_cast<decap_kind>(i);
      return true;
    }
  return false;
}

std::string expected_kinds() {
  std::string s = "expected all, none or a comma list of";
  for (size_t i = 0; i < decap_kind_count; ++i)
    s += std::string(i ? ", " : " ") + names[i];
  return s;
}

} // namespace

const char* to_string(decap_kind k) {
  const auto i = static_cast<size_t>(k);
  return i < decap_kind_count ? names[i] : "unknown";
}

std::string parse_decap_kinds(std::string_view text, uint32_t* out) {
  const auto items = split_list(text);
  if (items.empty())
    return "empty; " + expected_kinds();
  uint32_t kinds = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    std::string_view item = items[i];
    if (item == "all" && i == 0) {
      kinds = decode_options::all_kinds;
      continue;
    }
    if (item == "none" && items.size() == 1)
      break;
    const bool remove = !item.empty() && item.front() == '-';
    if (remove)
      item.remove_prefix(1);
    decap_kind k;
    if (!find_kind(item, k))
      return "unknown decapsulation '" + std::string(items[i]) + "'; " + expected_kinds();
    const uint32_t bit = 1u << static_cast<unsigned>(k);
    kinds = remove ? kinds & ~bit : kinds | bit;
  }
  if (out)
    *out = kinds;
  return {};
}

std::string parse_vxlan_ports(std::string_view text, decode_options* out) {
  const auto items = split_list(text);
  if (items.size() > static_cast<size_t>(decode_options::max_vxlan_ports))
    return "at most " + std::to_string(decode_options::max_vxlan_ports) + " ports";
  decode_options o;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string_view item = items[i];
    unsigned v = 0;
    const auto r = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || r.ec != std::errc() || r.ptr != item.data() + item.size() || v == 0 ||
        v > 65535)
      return "'" + std::string(item) + "' is not a UDP port (1..65535)";
    o.vxlan_ports[i] = static_cast<uint16_t>(v);
  }
  if (out)
    std::copy(std::begin(o.vxlan_ports), std::end(o.vxlan_ports), out->vxlan_ports);
  return {};
}

} // namespace metaprobe
