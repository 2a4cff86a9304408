// SPDX-License-Identifier: Apache-2.0
#include "control/process_inspector.hpp"

#include <algorithm>

#include <unistd.h>

#include "control/stats_counters.hpp"

#ifndef METAPROBE_VERSION
#define METAPROBE_VERSION "unknown"
#endif

namespace metaprobe {

std::vector<std::string> stages_of(v1::ControlRequest::Kind kind) {
  switch (kind) {
    case v1::ControlRequest::FLOWS:
      return {"classifier", "parser"};
    case v1::ControlRequest::EXPORTERS:
      return {"publisher", "exporter"};
    default:
      return {};
  }
}

process_inspector::process_inspector(process_id who, std::string endpoint, stage_stats& stats,
                                     config_list cfg, std::function<void()> on_stop)
  : who_(std::move(who)), endpoint_(std::move(endpoint)), stats_(stats), config_(std::move(cfg)),
    on_stop_(std::move(on_stop)), started_(std::chrono::steady_clock::now()) {
  for (auto& [k, v] : config_)
    if (k.find("secret") != std::string::npos && !v.empty())
      v = "(set)";
}

void process_inspector::sample(std::chrono::steady_clock::time_point now) {
  stats_.actors().sample(now);
}

void process_inspector::fill_status(v1::ProcessStatus& st) const {
  st.set_process(who_.name());
  st.set_binary(who_.binary());
  st.set_version(METAPROBE_VERSION);
  st.set_pid(static_cast<uint32_t>(::getpid()));
  st.set_uptime_ms(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::steady_clock::now() - started_)
                                           .count()));
  st.set_state("running");
  st.set_endpoint(endpoint_);
  st.set_control_requests(control.requests.load(std::memory_order_relaxed));
  st.set_control_refused(control.refused.load(std::memory_order_relaxed));
  st.set_control_handshakes_denied(control.handshakes_denied.load(std::memory_order_relaxed));
}

void process_inspector::fill_actors(v1::ControlReply& reply) const {
  for (const auto& a : stats_.actors().snapshot()) {
    auto* out = reply.add_actors();
    out->set_process(who_.name());
    out->set_name(a.name);
    out->set_kind(a.kind);
    out->set_shard(a.shard);
    out->set_mailbox_depth(a.mailbox_depth);
    out->set_messages_in(a.messages_in);
    out->set_messages_out(a.messages_out);
    out->set_rate(a.rate);
    out->set_drops(a.drops);
    out->set_errors(a.errors);
    out->set_last_error(a.last_error);
    out->set_finished(a.finished);
  }
}

void process_inspector::fill_counters(v1::ControlReply& reply,
                                      const std::vector<std::string>& stages) const {
  for (auto& c : counters_from_stats(stats_.snapshot())) {
    const auto& stage = c.labels().at("stage");
    if (!stages.empty() && std::find(stages.begin(), stages.end(), stage) == stages.end())
      continue;
    (*c.mutable_labels())["process"] = who_.name();
    *reply.add_counters() = std::move(c);
  }
}

void process_inspector::fill_config(v1::ControlReply& reply) const {
  for (const auto& [k, v] : config_)
    (*reply.mutable_config())[k] = v;
}

void process_inspector::answer(const v1::ControlRequest& req, v1::ControlReply& reply) {
  fill_status(*reply.add_processes());
  switch (req.kind()) {
    case v1::ControlRequest::STATUS:
      break;
    case v1::ControlRequest::ACTORS:
      fill_actors(reply);
      break;
    case v1::ControlRequest::COUNTERS:
    case v1::ControlRequest::FLOWS:
    case v1::ControlRequest::EXPORTERS:
      fill_counters(reply, stages_of(req.kind()));
      break;
    case v1::ControlRequest::CONFIG:
      fill_config(reply);
      break;
    case v1::ControlRequest::STOP:
      if (on_stop_) {
        on_stop_();
      } else {
        reply.set_ok(false);
        reply.set_error("this process does not take STOP");
      }
      break;
    default:
      reply.set_ok(false);
      reply.set_error("unknown request kind " + std::to_string(static_cast<int>(req.kind())));
  }
}

appliance_inspector::appliance_inspector(process_inspector& self, std::string control_base,
                                         std::string secret,
                                         std::function<std::vector<child_state>()> children,
                                         std::chrono::milliseconds child_timeout)
  : self_(self), base_(std::move(control_base)), secret_(std::move(secret)),
    children_(std::move(children)), timeout_(child_timeout) {
}

void appliance_inspector::answer(const v1::ControlRequest& req, v1::ControlReply& reply) {
  self_.answer(req, reply);
  // the requests reach the appliance through this provider: its counters
  auto* own = reply.mutable_processes(0);
  own->set_control_requests(control.requests.load(std::memory_order_relaxed));
  own->set_control_refused(control.refused.load(std::memory_order_relaxed));
  own->set_control_handshakes_denied(control.handshakes_denied.load(std::memory_order_relaxed));
  if (!reply.ok() || req.kind() == v1::ControlRequest::STOP ||
      req.kind() == v1::ControlRequest::CONFIG)
    return; // children share the appliance's configuration; STOP stays here
  auto kids = children_();
  std::vector<std::string> endpoints;
  std::vector<size_t> asked;
  for (size_t i = 0; i < kids.size(); ++i) {
    if (kids[i].running && !base_.empty()) {
      endpoints.push_back(control_endpoint(base_, kids[i].who));
      asked.push_back(i);
    }
  }
  v1::ControlRequest fwd = req;
  fwd.set_secret(secret_);
  auto results = client_.call_all(endpoints, fwd, timeout_);
  std::vector<bool> answered(kids.size(), false);
  for (size_t k = 0; k < results.size(); ++k) {
    const auto& kid = kids[asked[k]];
    auto& r = results[k];
    if (!r.ok || !r.reply.ok()) {
      auto* st = reply.add_processes();
      st->set_process(kid.who.name());
      st->set_binary(kid.who.binary());
      st->set_pid(static_cast<uint32_t>(kid.pid));
      st->set_state("unreachable");
      st->set_endpoint(endpoints[k]);
      st->set_error(r.ok ? r.reply.error() : r.error);
      answered[asked[k]] = true;
      continue;
    }
    answered[asked[k]] = true;
    for (auto& p : *r.reply.mutable_processes())
      *reply.add_processes() = std::move(p);
    for (auto& a : *r.reply.mutable_actors())
      *reply.add_actors() = std::move(a);
    for (auto& c : *r.reply.mutable_counters())
      *reply.add_counters() = std::move(c);
  }
  for (size_t i = 0; i < kids.size(); ++i) {
    if (answered[i])
      continue;
    auto* st = reply.add_processes();
    st->set_process(kids[i].who.name());
    st->set_binary(kids[i].who.binary());
    st->set_pid(static_cast<uint32_t>(kids[i].pid));
    if (kids[i].running) {
      st->set_state("running");
      st->set_error("control endpoints are off");
    } else {
      st->set_state("exited");
      st->set_error("exit status " + std::to_string(kids[i].exit_status));
    }
  }
}

} // namespace metaprobe
