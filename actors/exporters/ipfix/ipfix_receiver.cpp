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
#include "exporters/ipfix/record_format.hpp"

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
  if (!opened_.count(session) && !decoder_.domains(session).empty()) {
    opened_.insert(session);
    if (session_cb_) session_cb_(session_event::opened, session);
  }
}

void ipfix_receiver::close_session(uint64_t session) {
  decoder_.end_session(session);
  if (opened_.count(session) && session_cb_) session_cb_(session_event::closed, session);
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
      close_session(session);
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
    const uint64_t session = conns[i]->session;
    conns.erase(conns.begin() + static_cast<std::ptrdiff_t>(i));
    close_session(session);
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

namespace {

void json_key(std::string& out, const char* key) {
  if (out.back() != '{') out += ',';
  out += '"';
  out += key;
  out += "\":";
}

void json_num(std::string& out, const char* key, uint64_t v) {
  json_key(out, key);
  out += std::to_string(v);
}

void json_str(std::string& out, const char* key, const std::string& v) {
  json_key(out, key);
  append_json_string(out, reinterpret_cast<const uint8_t*>(v.data()), v.size());
}

void append_exporter_json(std::string& out, const std::string& name, const domain_report& d) {
  json_str(out, "exporter", name);
  json_num(out, "session", d.session);
  json_num(out, "domain", d.domain);
  json_num(out, "messages", d.messages);
  json_num(out, "records", d.records);
  json_key(out, "records_per_template");
  out += '{';
  for (const auto& [tid, n] : d.records_per_template) json_num(out, std::to_string(tid).c_str(), n);
  out += '}';
  json_num(out, "decode_errors", d.decode_errors);
  json_num(out, "sequence_gaps", d.gaps);
  json_num(out, "records_lost", d.lost);
  json_num(out, "template_records", d.template_records);
  json_num(out, "sets_without_template", d.sets_without_template);
  json_num(out, "records_without_template", d.records_without_template);
  json_num(out, "first_sequence", d.first_sequence);
  json_num(out, "first_message_templates", d.first_message_templates);
  json_key(out, "first_template_sequence");
  out += d.templates_seen ? std::to_string(d.first_template_sequence) : "null";
  json_num(out, "next_sequence", d.next_sequence);
}

std::string exporter_text(const std::string& name, const domain_report& d) {
  std::string out = "exporter " + name + " domain " + std::to_string(d.domain) + ": " +
                    std::to_string(d.messages) + " message(s), " + std::to_string(d.records) +
                    " record(s) (";
  bool first = true;
  for (const auto& [tid, n] : d.records_per_template) {
    if (!first) out += ", ";
    first = false;
    out += "template " + std::to_string(tid) + ": " + std::to_string(n);
  }
  out += "), " + std::to_string(d.decode_errors) + " decode error(s), " + std::to_string(d.gaps) +
         " gap(s), " + std::to_string(d.lost) + " lost, " + std::to_string(d.template_records) +
         " template record(s), " + std::to_string(d.sets_without_template) +
         " set(s) without template (" + std::to_string(d.records_without_template) +
         " record(s)), sequence " + std::to_string(d.first_sequence) + ".." +
         std::to_string(d.next_sequence) + ", first message " +
         std::to_string(d.first_message_templates) + " template record(s), templates from ";
  out += d.templates_seen ? "sequence " + std::to_string(d.first_template_sequence) : "nowhere";
  return out;
}

} // namespace

std::string format_session_event(const ipfix_receiver& rx, ipfix_receiver::session_event ev,
                                 uint64_t session, output_format fmt) {
  std::string out;
  const char* what = ev == ipfix_receiver::session_event::opened ? "opened" : "closed";
  for (const domain_report& d : rx.decoder().domains(session)) {
    if (fmt == output_format::json) {
      out += '{';
      json_str(out, "event", what);
      append_exporter_json(out, rx.session_name(session), d);
      out += "}\n";
    } else {
      out += std::string("session ") + what + ": " + exporter_text(rx.session_name(session), d) + '\n';
    }
  }
  return out;
}

std::string format_summary(const ipfix_receiver& rx, output_format fmt) {
  const decoder_stats& s = rx.decoder().stats();
  std::string out;
  if (fmt == output_format::json) {
    out = "{\"summary\":{";
    json_num(out, "messages", s.messages);
    json_num(out, "records_printed", rx.records());
    json_num(out, "data_records", s.data_records);
    json_num(out, "options_records", s.options_records);
    json_num(out, "decode_errors", s.decode_errors);
    json_num(out, "framing_errors", rx.framing_errors());
    json_num(out, "sequence_gaps", s.sequence_gaps);
    json_num(out, "records_lost", s.records_lost);
    json_num(out, "sets_without_template", s.sets_without_template);
    json_num(out, "records_without_template", s.records_without_template);
    json_num(out, "limit_drops", s.limit_drops);
    json_key(out, "records_per_kind");
    out += '{';
    for (const auto& [kind, n] : s.records_per_kind) json_num(out, kind.c_str(), n);
    out += '}';
    json_key(out, "exporters");
    out += '[';
    bool first = true;
    for (const domain_report& d : rx.decoder().domains()) {
      if (!first) out += ',';
      first = false;
      out += '{';
      append_exporter_json(out, rx.session_name(d.session), d);
      out += '}';
    }
    out += "]}}\n";
    return out;
  }
  out = std::to_string(s.messages) + " message(s), " + std::to_string(rx.records()) +
        " record(s) printed, " + std::to_string(s.data_records) + " data + " +
        std::to_string(s.options_records) + " options record(s) decoded, " +
        std::to_string(s.decode_errors) + " decode error(s), " + std::to_string(rx.framing_errors()) +
        " framing error(s), " + std::to_string(s.sequence_gaps) + " sequence gap(s) (" +
        std::to_string(s.records_lost) + " record(s) lost), " +
        std::to_string(s.sets_without_template) + " set(s) without template (" +
        std::to_string(s.records_without_template) + " record(s))\n";
  for (const auto& [kind, n] : s.records_per_kind)
    out += "  records " + kind + ": " + std::to_string(n) + '\n';
  for (const domain_report& d : rx.decoder().domains())
    out += "  " + exporter_text(rx.session_name(d.session), d) + '\n';
  return out;
}

} // namespace metaprobe::ipfix
