// SPDX-License-Identifier: Apache-2.0
#pragma once
// A minimal HTTP/1.1 server for Prometheus scrapes: GET /metrics answers
// 200 with the text `render` returns (format 0.0.4); any other path 404,
// any other method 405, a request head over 8 KiB 431, garbage 400. One
// connection at a time on its own thread, each closed after the answer
// (Connection: close) and cut off after 2 s; the pipeline is never waited
// for (render reads snapshots).
//
// Threading: start()/stop() from the owner; render runs on the server
// thread. Errors: start() returns false with the reason (address in use,
// cannot resolve); I/O errors of a connection close that connection.

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

#include "core/config.hpp"

namespace metaprobe {

struct http_answer {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain; charset=utf-8";
};

// The answer to one complete request head (pure; public for tests).
http_answer metrics_http_answer(std::string_view request_head,
                                const std::function<std::string()>& render);

// The full HTTP/1.1 response bytes of an answer.
std::string http_response_bytes(const http_answer& a);

class metrics_server {
public:
  metrics_server(endpoint addr, std::function<std::string()> render);
  ~metrics_server();
  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;

  bool start(std::string& error);
  void stop();
  // The port actually bound (differs from the configured one when it was 0).
  uint16_t port() const { return port_; }

  static constexpr size_t max_request = 8192;

private:
  void serve();
  void serve_connection(int fd);

  endpoint addr_;
  std::function<std::string()> render_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

} // namespace metaprobe
