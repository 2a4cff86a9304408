// SPDX-License-Identifier: Apache-2.0
#include "security/zap_handler.hpp"

#include <cerrno>

#include <zmq.h>

namespace metaprobe {

zap_handler::zap_handler(void* context, std::vector<std::string> allowed) : context_(context) {
  for (const auto& z85 : allowed) {
    uint8_t raw[32];
    if (z85.size() == 40 && zmq_z85_decode(raw, z85.c_str()))
      allowed_.emplace_back(reinterpret_cast<const char*>(raw), sizeof(raw));
  }
}

zap_handler::~zap_handler() {
  stop();
}

std::string zap_handler::start() {
  socket_ = zmq_socket(context_, ZMQ_REP);
  if (!socket_)
    return std::string("ZAP handler: ") + zmq_strerror(zmq_errno());
  int linger = 0;
  zmq_setsockopt(socket_, ZMQ_LINGER, &linger, sizeof(linger));
  if (zmq_bind(socket_, "inproc://zeromq.zap.01") != 0) {
    std::string e = std::string("ZAP handler: ") + zmq_strerror(zmq_errno());
    zmq_close(socket_);
    socket_ = nullptr;
    return e;
  }
  stop_ = false;
  thread_ = std::thread([this] { serve(); });
  return {};
}

void zap_handler::stop() {
  if (thread_.joinable()) {
    stop_ = true;
    thread_.join();
  }
  if (socket_) {
    zmq_close(socket_);
    socket_ = nullptr;
  }
}

std::vector<std::string> zap_handler::answer(const std::vector<std::string>& req) {
  // version, request id, domain, address, identity, mechanism, credentials...
  const std::string id = req.size() > 1 ? req[1] : std::string();
  bool ok = req.size() >= 7 && req[0] == "1.0" && req[5] == "CURVE";
  if (ok) {
    ok = false;
    for (const auto& k : allowed_)
      ok = ok || k == req[6];
  }
  (ok ? counters_.admitted : counters_.denied).fetch_add(1, std::memory_order_relaxed);
  return {"1.0", id, ok ? "200" : "400", ok ? "OK" : "client key not allowed", "", ""};
}

void zap_handler::serve() {
  while (!stop_.load()) {
    zmq_pollitem_t item{socket_, 0, ZMQ_POLLIN, 0};
    int rc = zmq_poll(&item, 1, 100);
    if (rc < 0) {
      if (zmq_errno() == ETERM)
        return;
      continue;
    }
    if (!(item.revents & ZMQ_POLLIN))
      continue;
    std::vector<std::string> frames;
    int more = 1;
    while (more) {
      zmq_msg_t msg;
      zmq_msg_init(&msg);
      if (zmq_msg_recv(&msg, socket_, 0) < 0) {
        zmq_msg_close(&msg);
        if (zmq_errno() == ETERM)
          return;
        break;
      }
      frames.emplace_back(static_cast<const char*>(zmq_msg_data(&msg)), zmq_msg_size(&msg));
      more = zmq_msg_more(&msg);
      zmq_msg_close(&msg);
    }
    const auto reply = answer(frames);
    for (size_t i = 0; i < reply.size(); ++i)
      zmq_send(socket_, reply[i].data(), reply[i].size(), i + 1 < reply.size() ? ZMQ_SNDMORE : 0);
  }
}

} // namespace metaprobe
