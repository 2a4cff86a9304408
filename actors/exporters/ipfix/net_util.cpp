// SPDX-License-Identifier: Apache-2.0
#include "exporters/ipfix/net_util.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace metaprobe::ipfix {

bool parse_host_port(std::string_view text, std::string& host, uint16_t& port, std::string& error) {
  std::string_view h, p;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      error = "expected [IPv6]:PORT";
      return false;
    }
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      error = "expected HOST:PORT";
      return false;
    }
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
    if (h.find(':') != std::string_view::npos) {
      error = "IPv6 addresses need brackets: [ADDR]:PORT";
      return false;
    }
  }
  if (h.empty()) {
    error = "empty host";
    return false;
  }
  if (p.empty() || p.size() > 5) {
    error = "bad port";
    return false;
  }
  uint32_t v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') {
      error = "bad port";
      return false;
    }
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v == 0 || v > 65535) {
    error = "port out of range";
    return false;
  }
  host.assign(h);
  port = static_cast<uint16_t>(v);
  return true;
}

socket_address resolve_endpoint(const std::string& host_port, int socktype) {
  std::string host, error;
  uint16_t port = 0;
  if (!parse_host_port(host_port, host, port, error))
    throw std::runtime_error("'" + host_port + "': " + error);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = socktype;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0 || !res)
    throw std::runtime_error("'" + host_port + "': cannot resolve host: " + gai_strerror(rc));
  socket_address out;
  std::memcpy(&out.addr, res->ai_addr, res->ai_addrlen);
  out.len = res->ai_addrlen;
  freeaddrinfo(res);
  return out;
}

std::string address_text(const sockaddr* sa, socklen_t len) {
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
    return "[" + std::string(host) + "]:" + std::to_string(port);
  }
  return "?";
}

void bind_to_device(int fd, const std::string& device, const std::string& what) {
  if (device.empty()) return;
  if (device.size() >= IFNAMSIZ)
    throw std::runtime_error(what + ": ipfix_dev '" + device + "': interface name too long");
  if (if_nametoindex(device.c_str()) == 0)
    throw std::runtime_error(what + ": ipfix_dev '" + device + "': no such network interface");
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, device.c_str(),
                 static_cast<socklen_t>(device.size())) != 0) {
    const int e = errno;
    std::string why = std::strerror(e);
    if (e == EPERM) why += " (binding to a device needs CAP_NET_RAW; run as root or leave ipfix_dev empty)";
    throw std::runtime_error(what + ": ipfix_dev '" + device + "': SO_BINDTODEVICE failed: " + why);
  }
}

} // namespace metaprobe::ipfix
