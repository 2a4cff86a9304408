// SPDX-License-Identifier: Apache-2.0
#pragma once
// The `decap` and `vxlan_ports` configuration keys: which tunnels the
// decoder opens (core/packet.hpp decode_options, capture/decoder.hpp).
//   decap = all | none | a comma list of kind names (to_string(decap_kind)):
//           gre, erspan, vxlan, vxlan_gpe, geneve, gtpu, ip_in_ip, l2tp,
//           teredo; "all" may be followed by "-kind" items that remove one.
//   vxlan_ports = comma list of extra UDP destination ports carrying VXLAN
//           (4789 always does), at most decode_options::max_vxlan_ports.
// Each parser returns an empty string on success (and fills *out when it is
// not null) or the reason the value is wrong.

#include <string>
#include <string_view>

#include "core/packet.hpp"

namespace metaprobe {

// "gre", "erspan", ...: the name in configuration and in decap.<name> counters.
const char* to_string(decap_kind k);

std::string parse_decap_kinds(std::string_view text, uint32_t* out);
std::string parse_vxlan_ports(std::string_view text, decode_options* out);

} // namespace metaprobe
