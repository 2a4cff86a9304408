// SPDX-License-Identifier: Apache-2.0
#include "control/control_client.hpp"

#include <zmq.hpp>

namespace metaprobe {

control_client::control_client() : ctx_(std::make_unique<zmq::context_t>(1)) {
}

control_client::~control_client() = default;

control_result control_client::call(const std::string& endpoint, const v1::ControlRequest& req,
                                    std::chrono::milliseconds timeout) {
  return std::move(call_all({endpoint}, req, timeout).front());
}

std::vector<control_result> control_client::call_all(const std::vector<std::string>& endpoints,
                                                     const v1::ControlRequest& req,
                                                     std::chrono::milliseconds timeout) {
  std::vector<control_result> out(endpoints.size());
  std::vector<std::unique_ptr<zmq::socket_t>> socks(endpoints.size());
  const std::string bytes = req.SerializeAsString();
  size_t pending = 0;
  for (size_t i = 0; i < endpoints.size(); ++i) {
    try {
      auto s = std::make_unique<zmq::socket_t>(*ctx_, zmq::socket_type::req);
      s->set(zmq::sockopt::linger, 0);
      if (keys_.on())
        if (auto e = make_curve_client(s->handle(), keys_); !e.empty()) {
          out[i].error = e;
          continue;
        }
      s->connect(endpoints[i]);
      if (!s->send(zmq::buffer(bytes), zmq::send_flags::dontwait)) {
        out[i].error = "cannot send to " + endpoints[i];
        continue;
      }
      socks[i] = std::move(s);
      ++pending;
    } catch (const zmq::error_t& e) {
      out[i].error = "cannot connect to " + endpoints[i] + ": " + e.what();
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (pending > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      break;
    std::vector<zmq::pollitem_t> items;
    std::vector<size_t> which;
    for (size_t i = 0; i < socks.size(); ++i)
      if (socks[i]) {
        items.push_back({socks[i]->handle(), 0, ZMQ_POLLIN, 0});
        which.push_back(i);
      }
    try {
      zmq::poll(items.data(), items.size(), left);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR)
        continue;
      break;
    }
    for (size_t k = 0; k < items.size(); ++k) {
      if (!(items[k].revents & ZMQ_POLLIN))
        continue;
      size_t i = which[k];
      zmq::message_t msg;
      if (socks[i]->recv(msg, zmq::recv_flags::dontwait)) {
        if (out[i].reply.ParseFromArray(msg.data(), static_cast<int>(msg.size())))
          out[i].ok = true;
        else
          out[i].error = "malformed reply from " + endpoints[i];
      }
      socks[i].reset();
      --pending;
    }
  }
  for (size_t i = 0; i < socks.size(); ++i)
    if (socks[i])
      out[i].error = "no answer from " + endpoints[i] + " within " +
                     std::to_string(timeout.count()) + " ms";
  return out;
}

} // namespace metaprobe
