// SPDX-License-Identifier: Apache-2.0
#include "core/ipc_path.hpp"

#include <cerrno>
#include <cstring>

#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace metaprobe {

std::string ipc_file(const std::string& endpoint) {
  if (endpoint.compare(0, 6, "ipc://") != 0)
    return {};
  std::string path = endpoint.substr(6);
  if (path.empty() || path[0] == '@' || path == "*")
    return {};
  return path;
}

std::string ipc_path_problem(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0)
    return {}; // absent (or unreadable: bind reports it)
  if (!S_ISSOCK(st.st_mode))
    return path + " exists and is not a socket";
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path))
    return {}; // bind reports the over-long path
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return {};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  ::close(fd);
  if (rc == 0 || err == EAGAIN) // accepted, or a full backlog: someone listens
    return path + " is in use by a running process";
  return {}; // ECONNREFUSED: stale file
}

std::string tcp_port_problem(const std::string& endpoint) {
  if (endpoint.compare(0, 6, "tcp://") != 0)
    return {};
  const auto colon = endpoint.rfind(':');
  if (colon == std::string::npos || colon < 6)
    return {};
  std::string host = endpoint.substr(6, colon - 6);
  const std::string port = endpoint.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host == "*" ? nullptr : host.c_str(), port.c_str(), &hints, &res) != 0 || !res)
    return {};
  std::string problem;
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 && errno == EADDRINUSE)
      problem = "tcp port " + port + " on " + host + " is in use by another process";
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return problem;
}

ipc_file_id ipc_file_identity(const std::string& path) {
  ipc_file_id id;
  struct stat st {};
  if (!path.empty() && ::lstat(path.c_str(), &st) == 0) {
    id.path = path;
    id.dev = static_cast<uint64_t>(st.st_dev);
    id.ino = static_cast<uint64_t>(st.st_ino);
  }
  return id;
}

void ipc_file_remove(ipc_file_id& id) {
  if (id.path.empty())
    return;
  struct stat st {};
  if (::lstat(id.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
      static_cast<uint64_t>(st.st_dev) == id.dev && static_cast<uint64_t>(st.st_ino) == id.ino)
    ::unlink(id.path.c_str());
  id = {};
}

} // namespace metaprobe
