// SPDX-License-Identifier: Apache-2.0
#pragma once
// The control endpoint of one process: a ZeroMQ REP socket served on its
// own thread. Each request is one serialised ControlRequest; each answer
// one ControlReply built by a control_provider (see process_inspector.hpp).
//
// Security: the endpoint should be loopback or ipc:// (the default); an
// ipc:// socket file is made owner-only (0600). With a secret set, a
// request whose `secret` differs (constant-time compare) is refused with
// ok = false, error "unauthorized" and counted in control_counters::refused.
// With CURVE keys (security/curve_keys.hpp) the socket is a CURVE server:
// only a client holding client.key completes a handshake (the ZAP handler
// of the server's context; refusals in control_counters::handshakes_denied),
// and requests, the secret included, travel encrypted.
// Requests larger than 64 KiB are dropped by ZeroMQ (the peer is
// disconnected).
//
// Threading: start() and stop() from the owner's thread; the provider's
// answer() and sample() run on the server thread. Errors: start() returns
// false with the reason (endpoint in use, cannot bind); the serving thread
// never throws.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "core/ipc_path.hpp"
#include "metaprobe/v1/control.pb.h"
#include "security/curve_keys.hpp"
#include "security/zap_handler.hpp"

namespace zmq {
class context_t;
class socket_t;
} // namespace zmq

namespace metaprobe {

struct control_counters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> refused{0};   // wrong/missing secret or malformed
  std::atomic<uint64_t> handshakes_denied{0}; // CURVE: client key not allowed (ZAP)
};

class control_provider {
public:
  virtual ~control_provider() = default;
  // Fills `reply` for an accepted request. Must be safe to call from the
  // server thread while the process runs (and from the /metrics thread).
  virtual void answer(const v1::ControlRequest& req, v1::ControlReply& reply) = 0;
  // About once a second on the server thread (rate sampling).
  virtual void sample(std::chrono::steady_clock::time_point) {}

  control_counters control;
};

struct control_server_options {
  std::string endpoint;   // ipc://PATH or tcp://HOST:PORT
  std::string secret;     // empty: no authentication
  curve_keys keys;        // off: plain ZeroMQ
};

class control_server {
public:
  control_server(control_server_options opts, control_provider& provider);
  ~control_server();
  control_server(const control_server&) = delete;
  control_server& operator=(const control_server&) = delete;

  // Binds and starts serving. Creates the parent folder of an ipc:// path.
  bool start(std::string& error);
  // Stops serving, closes the socket and removes its ipc:// file.
  void stop();

  // Handles one serialised request and returns the serialised reply (the
  // server thread's work; public for tests and fuzzing).
  std::string handle(const void* data, size_t len);

  const std::string& endpoint() const { return opts_.endpoint; }

private:
  void serve();
  // Creates the socket as a CURVE server; "" or why not.
  std::string make_curve_server_checked();

  control_server_options opts_;
  control_provider& provider_;
  std::unique_ptr<zmq::context_t> ctx_;
  std::unique_ptr<zap_handler> zap_;
  std::unique_ptr<zmq::socket_t> sock_;
  ipc_file_id ipc_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

// Constant-time comparison of two secrets (length leaks, content does not).
bool secrets_equal(const std::string& a, const std::string& b);

} // namespace metaprobe
