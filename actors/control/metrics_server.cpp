// SPDX-License-Identifier: Apache-2.0
#include "control/metrics_server.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace metaprobe {

namespace {

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    default:
      return "Internal Server Error";
  }
}

} // namespace

http_answer metrics_http_answer(std::string_view head,
                                const std::function<std::string()>& render) {
  http_answer a;
  auto eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  auto sp1 = line.find(' ');
  auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      line.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0) {
    a.status = 400;
    a.body = "bad request\n";
    return a;
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  auto q = target.find('?');
  std::string_view path = target.substr(0, q);
  if (path != "/metrics") {
    a.status = 404;
    a.body = "not found: only /metrics is served\n";
    return a;
  }
  if (method != "GET" && method != "HEAD") {
    a.status = 405;
    a.body = "method not allowed\n";
    return a;
  }
  a.content_type = "text/plain; version=0.0.4; charset=utf-8";
  a.body = render();
  if (method == "HEAD")
    a.body.clear();
  return a;
}

std::string http_response_bytes(const http_answer& a) {
  std::string out = "HTTP/1.1 " + std::to_string(a.status) + " " + reason(a.status) + "\r\n";
  out += "Content-Type: " + a.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(a.body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  out += a.body;
  return out;
}

metrics_server::metrics_server(endpoint addr, std::function<std::string()> render)
  : addr_(std::move(addr)), render_(std::move(render)) {
}

metrics_server::~metrics_server() {
  stop();
}

bool metrics_server::start(std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  std::string port = std::to_string(addr_.port);
  int rc = ::getaddrinfo(addr_.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    error = "metrics_listen " + addr_.text() + ": " + ::gai_strerror(rc);
    return false;
  }
  int fd = -1;
  std::string why = "no address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 16) == 0)
      break;
    why = std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  if (fd < 0) {
    error = "cannot listen for metrics on " + addr_.text() + ": " + why;
    return false;
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
    port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  fd_ = fd;
  stop_ = false;
  thread_ = std::thread([this] { serve(); });
  return true;
}

void metrics_server::stop() {
  if (thread_.joinable()) {
    stop_ = true;
    thread_.join();
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void metrics_server::serve() {
  while (!stop_.load()) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0)
      continue;
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0)
      continue;
    serve_connection(c);
    ::close(c);
  }
}

void metrics_server::serve_connection(int fd) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::seconds(2);
  auto left_ms = [&] {
    return static_cast<int>(
      std::max<long>(0, std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - clock::now())
                          .count()));
  };
  std::string head;
  char buf[2048];
  http_answer a;
  bool complete = false;
  while (!stop_.load()) {
    if (head.find("\r\n\r\n") != std::string::npos) {
      complete = true;
      break;
    }
    if (head.size() > max_request) {
      a.status = 431;
      a.body = "request too large\n";
      break;
    }
    int ms = left_ms();
    if (ms == 0)
      return;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, ms) <= 0)
      return;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
      return;
    head.append(buf, static_cast<size_t>(n));
  }
  if (complete)
    a = metrics_http_answer(head, render_);
  else if (a.status == 200)
    return;
  std::string out = http_response_bytes(a);
  size_t off = 0;
  while (off < out.size() && !stop_.load()) {
    ssize_t n = ::send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      return;
    int ms = left_ms();
    if (ms == 0)
      return;
    pollfd p{fd, POLLOUT, 0};
    ::poll(&p, 1, ms);
  }
  // Half-close and read what the client still sends (briefly), so that
  // unread request bytes do not turn the close into a reset that could
  // discard the answer on the client's side.
  ::shutdown(fd, SHUT_WR);
  for (int i = 0; i < 4; ++i) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 25) <= 0 || ::recv(fd, buf, sizeof buf, 0) <= 0)
      break;
  }
}

} // namespace metaprobe
