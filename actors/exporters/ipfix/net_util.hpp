// SPDX-License-Identifier: Apache-2.0
#pragma once
// Socket helpers shared by the IPFIX sinks and metaprobe-receiver.
// Errors are thrown as std::runtime_error with the endpoint and the reason.

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace metaprobe::ipfix {

// "1.2.3.4:4739", "[2001:db8::1]:4739", "collector.example:4739".
// Returns false (and sets `error`) when the text is not host:port.
bool parse_host_port(std::string_view text, std::string& host, uint16_t& port, std::string& error);

struct socket_address {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family() const { return addr.ss_family; }
};

// Resolves host:port (numeric or by name) for `socktype` (SOCK_DGRAM /
// SOCK_STREAM). Throws std::runtime_error.
socket_address resolve_endpoint(const std::string& host_port, int socktype);

// "1.2.3.4:4739" / "[::1]:4739".
std::string address_text(const sockaddr* sa, socklen_t len);

// SO_BINDTODEVICE; throws with a clear reason (unknown device, needs
// CAP_NET_RAW).
void bind_to_device(int fd, const std::string& device, const std::string& what);

} // namespace metaprobe::ipfix
