// SPDX-License-Identifier: Apache-2.0
#pragma once
// What one process answers on its control endpoint: its status, its actors
// (core/actor_registry.hpp), its counters (core/stage_stats.hpp, named by
// stats_counters.hpp) and its effective configuration (values of keys
// whose name contains "secret" are replaced by "(set)").
//
// appliance_inspector answers for the appliance: its own part plus what
// its running children answer (asked in parallel, one deadline), merged;
// a child that does not answer is listed with state "unreachable" and the
// reason. STOP is handled by the appliance itself, never forwarded.
//
// Threading: answer() may run on the control thread and the /metrics
// thread at once; it only reads thread-safe state. The children callback
// must be thread-safe as well.

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "control/control_client.hpp"
#include "control/control_endpoints.hpp"
#include "control/control_server.hpp"
#include "core/stage_stats.hpp"

namespace metaprobe {

class process_inspector : public control_provider {
public:
  using config_list = std::vector<std::pair<std::string, std::string>>;
  // `stats` must outlive the inspector. `on_stop` runs for a STOP request
  // (may be empty: then STOP is refused).
  process_inspector(process_id who, std::string endpoint, stage_stats& stats, config_list cfg,
                    std::function<void()> on_stop = {});

  void answer(const v1::ControlRequest& req, v1::ControlReply& reply) override;
  void sample(std::chrono::steady_clock::time_point now) override;

  // Pieces (used by answer() and by appliance_inspector).
  void fill_status(v1::ProcessStatus& st) const;
  void fill_actors(v1::ControlReply& reply) const;
  // Counters whose stage passes `keep` (all when empty), plus this
  // process's own control counters; every one labelled process=<name>.
  void fill_counters(v1::ControlReply& reply,
                     const std::vector<std::string>& stages = {}) const;
  void fill_config(v1::ControlReply& reply) const;

  const process_id& who() const { return who_; }

private:
  process_id who_;
  std::string endpoint_;
  stage_stats& stats_;
  config_list config_;
  std::function<void()> on_stop_;
  std::chrono::steady_clock::time_point started_;
};

// The stages a request kind selects for its counters (empty: all).
std::vector<std::string> stages_of(v1::ControlRequest::Kind kind);

struct child_state {
  process_id who;
  int pid = 0;
  bool running = false;
  int exit_status = -1;
};

class appliance_inspector : public control_provider {
public:
  // `children` lists the appliance's children as they are now.
  appliance_inspector(process_inspector& self, std::string control_base, std::string secret,
                      std::function<std::vector<child_state>()> children,
                      std::chrono::milliseconds child_timeout);

  void answer(const v1::ControlRequest& req, v1::ControlReply& reply) override;
  void sample(std::chrono::steady_clock::time_point now) override { self_.sample(now); }
  // The children's endpoints are CURVE servers: ask them as a client.
  // Before the server starts.
  void set_curve_keys(curve_keys keys) { client_.set_curve_keys(std::move(keys)); }

private:
  process_inspector& self_;
  std::string base_;
  std::string secret_;
  std::function<std::vector<child_state>()> children_;
  std::chrono::milliseconds timeout_;
  control_client client_; // server thread only
};

} // namespace metaprobe
