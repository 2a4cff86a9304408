// SPDX-License-Identifier: Apache-2.0
#pragma once
// Client side of the control endpoints: sends one ControlRequest and waits
// for the ControlReply with a deadline. Used by metaprobe-console and by
// the appliance to ask its children.
//
// Threading: one client per thread. Errors: a call that gets no answer in
// time, or an answer that does not parse, returns false with the reason;
// nothing throws. Every call uses a fresh REQ socket (linger 0), so a
// process that never answers leaves nothing behind. With CURVE keys set
// every socket is a CURVE client of server.pub (security/curve_keys.hpp).

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "metaprobe/v1/control.pb.h"
#include "security/curve_keys.hpp"

namespace zmq {
class context_t;
}

namespace metaprobe {

struct control_result {
  bool ok = false;          // an answer arrived and parsed (reply.ok() may still be false)
  std::string error;        // why not
  v1::ControlReply reply;
};

class control_client {
public:
  control_client();
  ~control_client();
  // CURVE for the calls from now on (off: plain ZeroMQ).
  void set_curve_keys(curve_keys keys) { keys_ = std::move(keys); }

  control_result call(const std::string& endpoint, const v1::ControlRequest& req,
                      std::chrono::milliseconds timeout);
  // The same request to several endpoints at once, one shared deadline;
  // results in the order of `endpoints`.
  std::vector<control_result> call_all(const std::vector<std::string>& endpoints,
                                       const v1::ControlRequest& req,
                                       std::chrono::milliseconds timeout);

private:
  std::unique_ptr<zmq::context_t> ctx_;
  curve_keys keys_;
};

} // namespace metaprobe
