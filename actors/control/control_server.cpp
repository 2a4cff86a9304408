// SPDX-License-Identifier: Apache-2.0
#include "control/control_server.hpp"

#include <filesystem>

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <zmq.hpp>

namespace metaprobe {

bool secrets_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

control_server::control_server(control_server_options opts, control_provider& provider)
  : opts_(std::move(opts)), provider_(provider) {
}

control_server::~control_server() {
  stop();
}

bool control_server::start(std::string& error) {
  const std::string path = ipc_file(opts_.endpoint);
  if (!path.empty()) {
    std::error_code ec;
    auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty())
      std::filesystem::create_directories(parent, ec);
    std::string problem = ipc_path_problem(path);
    if (!problem.empty()) {
      error = "cannot bind control endpoint " + opts_.endpoint + ": " + problem;
      return false;
    }
  }
  ctx_ = std::make_unique<zmq::context_t>(1);
  if (opts_.keys.on()) {
    zap_ = std::make_unique<zap_handler>(ctx_->handle(),
                                         std::vector<std::string>{opts_.keys.client_public});
    std::string e = zap_->start();
    if (e.empty())
      e = make_curve_server_checked();
    if (!e.empty()) {
      error = "control endpoint " + opts_.endpoint + ": " + e;
      sock_.reset();
      zap_.reset();
      ctx_.reset();
      return false;
    }
  } else {
    sock_ = std::make_unique<zmq::socket_t>(*ctx_, zmq::socket_type::rep);
  }
  sock_->set(zmq::sockopt::linger, 0);
  sock_->set(zmq::sockopt::maxmsgsize, int64_t(64 * 1024));
  try {
    sock_->bind(opts_.endpoint);
  } catch (const zmq::error_t& e) {
    error = "cannot bind control endpoint " + opts_.endpoint + ": " + e.what();
    sock_.reset();
    zap_.reset();
    ctx_.reset();
    return false;
  }
  if (!path.empty()) {
    ::chmod(path.c_str(), S_IRUSR | S_IWUSR);
    ipc_ = ipc_file_identity(path);
  }
  stop_ = false;
  thread_ = std::thread([this] { serve(); });
  return true;
}

void control_server::stop() {
  if (thread_.joinable()) {
    stop_ = true;
    thread_.join();
  }
  sock_.reset();
  zap_.reset();
  ctx_.reset();
  ipc_file_remove(ipc_);
}

std::string control_server::make_curve_server_checked() {
  sock_ = std::make_unique<zmq::socket_t>(*ctx_, zmq::socket_type::rep);
  return make_curve_server(sock_->handle(), opts_.keys);
}

std::string control_server::handle(const void* data, size_t len) {
  v1::ControlRequest req;
  v1::ControlReply reply;
  provider_.control.requests.fetch_add(1, std::memory_order_relaxed);
  if (!req.ParseFromArray(data, static_cast<int>(len))) {
    provider_.control.refused.fetch_add(1, std::memory_order_relaxed);
    reply.set_ok(false);
    reply.set_error("malformed request");
  } else if (!opts_.secret.empty() && !secrets_equal(req.secret(), opts_.secret)) {
    provider_.control.refused.fetch_add(1, std::memory_order_relaxed);
    reply.set_ok(false);
    reply.set_error("unauthorized");
  } else {
    reply.set_ok(true);
    try {
      provider_.answer(req, reply);
    } catch (const std::exception& e) {
      reply.Clear();
      reply.set_ok(false);
      reply.set_error(std::string("internal error: ") + e.what());
    }
  }
  return reply.SerializeAsString();
}

void control_server::serve() {
  auto next_sample = std::chrono::steady_clock::now();
  while (!stop_.load()) {
    auto now = std::chrono::steady_clock::now();
    if (now >= next_sample) {
      provider_.sample(now);
      next_sample = now + std::chrono::seconds(1);
    }
    if (zap_)
      provider_.control.handshakes_denied.store(zap_->counters().denied.load(),
                                                std::memory_order_relaxed);
    zmq::pollitem_t items[] = {{sock_->handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 1, std::chrono::milliseconds(100));
      if (!(items[0].revents & ZMQ_POLLIN))
        continue;
      zmq::message_t msg;
      if (!sock_->recv(msg, zmq::recv_flags::dontwait))
        continue;
      std::string out = handle(msg.data(), msg.size());
      sock_->send(zmq::buffer(out), zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR)
        continue;
      if (e.num() == ETERM)
        return;
      spdlog::warn("control endpoint {}: {}", opts_.endpoint, e.what());
    }
  }
}

} // namespace metaprobe
