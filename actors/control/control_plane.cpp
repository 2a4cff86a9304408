// SPDX-License-Identifier: Apache-2.0
#include "control/control_plane.hpp"

#include <spdlog/spdlog.h>

#include "control/metrics_text.hpp"

namespace metaprobe {

bool start_control_plane(control_plane& cp, const config& cfg, const process_id& who,
                         stage_stats& stats, std::function<void()> on_stop,
                         std::function<std::vector<child_state>()> children, std::string& error) {
  const std::string base = control_base(cfg);
  std::string ctl_endpoint;
  std::optional<endpoint> metrics_addr;
  curve_keys keys;
  try {
    ctl_endpoint = control_endpoint(base, who);
    metrics_addr = metrics_endpoint(cfg, who);
    if (!ctl_endpoint.empty())
      keys = curve_keys_from_config(cfg);
  } catch (const config_error& e) {
    error = e.what();
    return false;
  }
  cp.self = std::make_unique<process_inspector>(who, ctl_endpoint, stats, cfg.effective(),
                                                std::move(on_stop));
  control_provider* provider = cp.self.get();
  if (children) {
    cp.aggregate = std::make_unique<appliance_inspector>(
      *cp.self, base, cfg.str("control_secret"), std::move(children),
      std::chrono::milliseconds(1000));
    cp.aggregate->set_curve_keys(keys);
    provider = cp.aggregate.get();
  }
  if (!ctl_endpoint.empty()) {
    cp.server = std::make_unique<control_server>(
      control_server_options{ctl_endpoint, cfg.str("control_secret"), keys}, *provider);
    std::string why;
    if (!cp.server->start(why)) {
      cp.server.reset();
      if (cfg.str("control_listen") != "auto") {
        error = why;
        return false;
      }
      spdlog::warn("{} (control_listen=auto): running without a control endpoint", why);
    } else {
      spdlog::info("control endpoint {}{}", ctl_endpoint, keys.on() ? " (CURVE)" : "");
    }
  }
  if (metrics_addr) {
    // Each process exposes its own counters (the appliance's own status
    // only, not its children's: scrape each process).
    process_inspector* self = cp.self.get();
    cp.metrics = std::make_unique<metrics_server>(*metrics_addr, [self] {
      v1::ControlReply r;
      self->fill_status(*r.add_processes());
      self->fill_actors(r);
      self->fill_counters(r);
      return render_prometheus(r);
    });
    if (!cp.metrics->start(error))
      return false;
    spdlog::info("metrics on http://{}/metrics", metrics_addr->text());
  }
  return true;
}

} // namespace metaprobe
