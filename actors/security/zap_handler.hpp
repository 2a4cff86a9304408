// SPDX-License-Identifier: Apache-2.0
#pragma once
// ZeroMQ authentication (ZAP, RFC 27) for the CURVE servers of one ZeroMQ
// context: admits a handshake only when the client's public key is one of
// `allowed` (Z85) and counts the others. One handler per context, started
// before any CURVE socket of the context binds (libzmq 4.3 admits every
// client when no handler is there) and stopped before the context ends.
//
// Threading: start()/stop() from the owner's thread; the handler answers
// on its own thread; the counters may be read from any thread.

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace metaprobe {

struct zap_counters {
  std::atomic<uint64_t> admitted{0};
  std::atomic<uint64_t> denied{0};
};

class zap_handler {
public:
  // `context` is the void* of the zmq context; not owned.
  zap_handler(void* context, std::vector<std::string> allowed);
  ~zap_handler();
  zap_handler(const zap_handler&) = delete;
  zap_handler& operator=(const zap_handler&) = delete;

  // Binds inproc://zeromq.zap.01 and starts answering. "" or why not.
  std::string start();
  void stop();

  // Decides one ZAP request (its frames) and returns the reply frames
  // (public for tests). Counts the decision.
  std::vector<std::string> answer(const std::vector<std::string>& request);

  const zap_counters& counters() const { return counters_; }

private:
  void serve();

  void* context_;
  std::vector<std::string> allowed_; // 32-byte binary keys
  void* socket_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  zap_counters counters_;
};

} // namespace metaprobe
