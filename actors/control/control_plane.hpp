// SPDX-License-Identifier: Apache-2.0
#pragma once
// Start-up of what one process serves for inspection, as its configuration
// says: the control endpoint (control_listen, control_secret) and /metrics
// (metrics_listen), with the addresses of control_endpoints.hpp. The
// service mains only call start_control_plane() and let it go out of
// scope (or stop()) at the end.
//
// Errors: an endpoint given explicitly that cannot be bound fails start-up
// (false with the reason). With control_listen=auto a bind failure (e.g.
// an ipc path over 107 bytes, a read-only run_dir) is logged as a warning
// and the process runs without a control endpoint.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "control/control_endpoints.hpp"
#include "control/metrics_server.hpp"
#include "control/process_inspector.hpp"

namespace metaprobe {

struct control_plane {
  std::unique_ptr<process_inspector> self;
  std::unique_ptr<appliance_inspector> aggregate; // the appliance only
  std::unique_ptr<control_server> server;
  std::unique_ptr<metrics_server> metrics;

  void stop() {
    if (server)
      server->stop();
    if (metrics)
      metrics->stop();
  }
  ~control_plane() { stop(); }
};

// `on_stop` serves STOP requests; `children` (appliance only, else empty)
// lists the children to ask.
bool start_control_plane(control_plane& cp, const config& cfg, const process_id& who,
                         stage_stats& stats, std::function<void()> on_stop,
                         std::function<std::vector<child_state>()> children, std::string& error);

} // namespace metaprobe
