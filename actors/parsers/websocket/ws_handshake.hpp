// SPDX-License-Identifier: Apache-2.0
#pragma once
// The header values of the WebSocket opening handshake (RFC 6455 §4, over
// an HTTP/1.1 Upgrade, RFC 9110 §7.8) that decide what a 101 Switching
// Protocols turns the flow into. Pure functions on one header value.

#include <string_view>

namespace metaprobe::websocket {

// Whether the comma-separated list `value` holds `token` (ASCII
// case-insensitive, optional whitespace around items, parameters after ';'
// or a protocol version after '/' ignored): Upgrade: "websocket",
// Sec-WebSocket-Protocol: "sip" (RFC 7118 §4.1). Subprotocol names are
// compared case-insensitively too, as servers (Kamailio, Asterisk) do.
bool list_has_token(std::string_view value, std::string_view token);

// The subprotocol of SIP over WebSocket (RFC 7118 §4.1).
constexpr std::string_view sip_subprotocol = "sip";

} // namespace metaprobe::websocket
