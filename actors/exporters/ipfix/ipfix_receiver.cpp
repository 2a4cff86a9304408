// SPDX-License-Identifier: Apache-2.0
#include "exporters/ipfix/ipfix_receiver.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "exporters/ipfix/net_util.hpp"

namespace metaprobe::ipfix {

namespace {
using clock_type = std::chrono::steady_clock;
// UDP peers get a session each up to this many; later peers share one.
constexpr size_t max_udp_peers = 1024;
constexpr uint64_t overflow_session = 0;

socket_address resolve_passive(const std::string& host_port, int socktype) {
  std::string host, error;
  uint16_t port = 0;
  // port 0 is allowed for listening (tests): parse by hand around it
  const size_t colon = host_port.rfind(':');
  if (colon != std::string::npos && host_port.substr(colon + 1) == "0") {
    std::string with_port = host_port.substr(0, colon) + ":1";
    if (!parse_host_port(with_port, host, port, error))
      throw std::runtime_error("--listen '" + host_port + "': " + error);
    port = 0;
  } else if (!parse_host_port(host_port, host, port, error)) {
    throw std::runtime_error("--listen '" + host_port + "': " + error);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = socktype;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0 || !res)
    throw std::runtime_error("--listen '" + host_port + "': cannot resolve: " + gai_strerror(rc));
  socket_address out;
  std::memcpy(&out.addr, res->ai_addr, res->ai_addrlen);
  out.len = res->ai_addrlen;
  freeaddrinfo(res);
  return out;
}

std::string bound_address(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  return address_text(reinterpret_cast<sockaddr*>(&ss), len);
}
} // namespace

struct ipfix_receiver::connection {
  int fd = -1;
  uint64_t session = 0;
  ipfix_stream_reader reader;
};

ipfix_receiver::ipfix_receiver(receiver_options opts, record_callback cb)
  : opts_(std::move(opts)), cb_(std::move(cb)) {
  deliver_ = [this](const decoded_record& r) {
    if (r.options && !opts_.include_options) return;
    if (done()) return;
    ++records_;
    if (cb_) cb_(r);
  };
  const size_t colon = opts_.listen.find(':');
  if (colon == std::string::npos)
    throw std::runtime_error("--listen '" + opts_.listen + "': expected udp:HOST:PORT, tcp:HOST:PORT or file:PATH");
  mode_ = opts_.listen.substr(0, colon);
  target_ = opts_.listen.substr(colon + 1);
  if (mode_ == "file") {
    fd_ = ::open(target_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error("--listen file:" + target_ + ": " + std::strerror(errno));
    return;
  }
  int type;
  if (mode_ == "udp")
    type = SOCK_DGRAM;
  else if (mode_ == "tcp")
    type = SOCK_STREAM;
  else
    throw std::runtime_error("--listen '" + opts_.listen + "': unknown transport '" + mode_ +
                             "' (expected udp, tcp or file)");
  socket_address sa = resolve_passive(target_, type);
  fd_ = ::socket(sa.family(), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("--listen " + opts_.listen + ": socket: " + std::strerror(errno));
  int one = 1;
  setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (type == SOCK_DGRAM) {
    int rcvbuf = 8 << 20;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf); // best effort
  }
  if (::bind(fd_, reinterpret_cast<const sockaddr*>(&sa.addr), sa.len) != 0) {
    const int e = errno;
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("--listen " + opts_.listen + ": bind: " + std::strerror(e));
  }
  if (type == SOCK_STREAM && ::listen(fd_, 64) != 0) {
    const int e = errno;
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("--listen " + opts_.listen + ": listen: " + std::strerror(e));
  }
  local_ = bound_address(fd_);
}

ipfix_receiver::~ipfix_receiver() {
  if (fd_ >= 0) ::close(fd_);
}

std::string ipfix_receiver::session_name(uint64_t session) const {
  auto it = session_names_.find(session);
  return it == session_names_.end() ? "session " + std::to_string(session) : it->second;
}

void ipfix_receiver::on_message(uint64_t session, const uint8_t* data, size_t len) {
  decoder_.decode(session, data, len, deliver_);
}

ipfix_receiver::stop_reason ipfix_receiver::run(const std::atomic<bool>& stop) {
  if (mode_ == "file") return run_file(stop);
  if (mode_ == "udp") return run_udp(stop);
  return run_tcp(stop);
}

ipfix_receiver::stop_reason ipfix_receiver::run_file(const std::atomic<bool>& stop) {
  const uint64_t session = next_session_++;
  session_names_[session] = "file:" + target_;
  ipfix_stream_reader reader;
  std::vector<uint8_t> buf(1 << 16);
  for (;;) {
    if (stop.load()) return stop_reason::stopped;
    if (done()) return stop_reason::count;
    const ssize_t n = ::read(fd_, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      ++framing_errors_;
      return stop_reason::error;
    }
    if (n == 0) {
      if (reader.buffered()) ++framing_errors_; // truncated last message
      return done() ? stop_reason::count : stop_reason::end_of_file;
    }
    if (!reader.feed(buf.data(), static_cast<size_t>(n),
                     [&](const uint8_t* d, size_t l) { on_message(session, d, l); })) {
      ++framing_errors_;
      return stop_reason::error;
    }
  }
}

ipfix_receiver::stop_reason ipfix_receiver::run_udp(const std::atomic<bool>& stop) {
  std::vector<uint8_t> buf(65536);
  auto last_data = clock_type::now();
  for (;;) {
    if (stop.load()) return stop_reason::stopped;
    if (done()) return stop_reason::count;
    if (opts_.idle_exit_s > 0 &&
        std::chrono::duration<double>(clock_type::now() - last_data).count() >= opts_.idle_exit_s)
      return stop_reason::idle;
    pollfd pfd{fd_, POLLIN, 0};
    const int r = ::poll(&pfd, 1, 200);
    if (r <= 0) continue;
    for (int burst = 0; burst < 1024; ++burst) {
      sockaddr_storage peer{};
      socklen_t plen = sizeof peer;
      const ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&peer), &plen);
      if (n < 0) break;
      last_data = clock_type::now();
      const std::string name = "udp:" + address_text(reinterpret_cast<sockaddr*>(&peer), plen);
      auto it = udp_sessions_.find(name);
      uint64_t session = overflow_session;
      if (it != udp_sessions_.end()) {
        session = it->second;
      } else if (udp_sessions_.size() < max_udp_peers) {
        it = udp_sessions_.emplace(name, next_session_++).first;
        session = it->second;
        session_names_[session] = name;
      } else {
        session_names_[session] = "udp:(other peers)";
      }
      on_message(session, buf.data(), static_cast<size_t>(n));
      if (done()) return stop_reason::count;
    }
  }
}

ipfix_receiver::stop_reason ipfix_receiver::run_tcp(const std::atomic<bool>& stop) {
  std::vector<std::unique_ptr<connection>> conns;
  std::vector<uint8_t> buf(1 << 16);
  auto last_data = clock_type::now();
  auto close_conn = [&](size_t i) {
    ::close(conns[i]->fd);
    conns.erase(conns.begin() + static_cast<std::ptrdiff_t>(i));
  };
  for (;;) {
    if (stop.load()) break;
    if (done()) break;
    if (opts_.idle_exit_s > 0 &&
        std::chrono::duration<double>(clock_type::now() - last_data).count() >= opts_.idle_exit_s) {
      for (auto& c : conns) ::close(c->fd);
      return stop_reason::idle;
    }
    std::vector<pollfd> pfds;
    pfds.push_back({fd_, POLLIN, 0});
    for (auto& c : conns) pfds.push_back({c->fd, POLLIN, 0});
    const int r = ::poll(pfds.data(), pfds.size(), 200);
    if (r <= 0) continue;
    if (pfds[0].revents & POLLIN) {
      for (;;) {
        sockaddr_storage peer{};
        socklen_t plen = sizeof peer;
        const int cfd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) break;
        if (conns.size() >= opts_.max_tcp_connections) {
          ::close(cfd);
          continue;
        }
        auto c = std::make_unique<connection>();
        c->fd = cfd;
        c->session = next_session_++;
        session_names_[c->session] =
          "tcp:" + address_text(reinterpret_cast<sockaddr*>(&peer), plen) + " #" + std::to_string(c->session);
        conns.push_back(std::move(c));
        last_data = clock_type::now();
      }
    }
    // connections polled this round are conns[0 .. pfds.size()-2]
    for (size_t i = pfds.size() - 1; i >= 1; --i) {
      if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      connection& c = *conns[i - 1];
      bool closed = false;
      for (int rounds = 0; rounds < 64; ++rounds) {
        const ssize_t n = ::recv(c.fd, buf.data(), buf.size(), 0);
        if (n == 0) {
          closed = true;
          break;
        }
        if (n < 0) {
          if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) closed = true;
          break;
        }
        last_data = clock_type::now();
        if (!c.reader.feed(buf.data(), static_cast<size_t>(n),
                           [&](const uint8_t* d, size_t l) { on_message(c.session, d, l); })) {
          ++framing_errors_;
          closed = true;
          break;
        }
      }
      if (closed) {
        if (c.reader.buffered()) ++framing_errors_;
        close_conn(i - 1);
      }
    }
  }
  for (auto& c : conns) ::close(c->fd);
  return stop.load() ? stop_reason::stopped : stop_reason::count;
}

} // namespace metaprobe::ipfix
