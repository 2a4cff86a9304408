// SPDX-License-Identifier: Apache-2.0
#include "control/control_endpoints.hpp"

#include <cstdlib>

namespace metaprobe {

std::string process_id::name() const {
  switch (role) {
    case process_role::appliance:
      return "metaprobe";
    case process_role::capture:
      return "capture";
    case process_role::exporter:
      return "exporter " + ch.name() + "#" + std::to_string(instance);
  }
  return "?";
}

std::string process_id::binary() const {
  switch (role) {
    case process_role::appliance:
      return "metaprobe";
    case process_role::capture:
      return "metaprobe-capture";
    case process_role::exporter:
      return "metaprobe-exporter";
  }
  return "?";
}

int process_id::offset() const {
  switch (role) {
    case process_role::appliance:
      return 0;
    case process_role::capture:
      return 1;
    case process_role::exporter:
      return 2 + 64 * ch.index() + instance;
  }
  return 0;
}

std::optional<process_id> parse_process_id(const std::string& text) {
  if (text == "appliance")
    return process_id::appliance();
  if (text == "capture")
    return process_id::capture();
  const std::string prefix = "exporter:";
  if (text.rfind(prefix, 0) != 0)
    return std::nullopt;
  const auto colon = text.rfind(':');
  if (colon <= prefix.size())
    return std::nullopt;
  auto ch = parse_channel(std::string_view(text).substr(prefix.size(), colon - prefix.size()));
  const std::string number = text.substr(colon + 1);
  if (!ch || number.empty() || number.size() > 2 ||
      number.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  const int instance = std::stoi(number);
  if (instance >= max_channel_instances)
    return std::nullopt;
  return process_id::exporter(*ch, instance);
}

namespace {

uint16_t offset_port(uint16_t base, const process_id& who, const std::string& key) {
  long p = static_cast<long>(base) + who.offset();
  if (p > 65535)
    throw config_error("key '" + key + "': port " + std::to_string(base) + " + offset " +
                       std::to_string(who.offset()) + " of " + who.name() + " exceeds 65535");
  return static_cast<uint16_t>(p);
}

} // namespace

std::string control_base(const config& cfg) {
  std::string v = cfg.str("control_listen");
  if (v.empty() || v == "off")
    return {};
  if (v == "auto") {
    std::string dir = cfg.str("run_dir");
    if (dir.empty())
      dir = ".";
    while (dir.size() > 1 && dir.back() == '/')
      dir.pop_back();
    return "ipc://" + dir + "/control";
  }
  return v;
}

std::string control_endpoint(const std::string& base, const process_id& who) {
  if (base.empty())
    return {};
  if (base.rfind("tcp://", 0) == 0) {
    auto colon = base.rfind(':');
    auto port = static_cast<uint16_t>(std::strtol(base.c_str() + colon + 1, nullptr, 10));
    return base.substr(0, colon + 1) + std::to_string(offset_port(port, who, "control_listen"));
  }
  switch (who.role) {
    case process_role::appliance:
      return base;
    case process_role::capture:
      return base + "-capture";
    case process_role::exporter:
      return base + "-exporter-" + std::string(sink_group_names[static_cast<int>(who.ch.group)]) +
             "-" + std::string(sink_kind_names[static_cast<int>(who.ch.kind)]) + "-" +
             std::to_string(who.instance);
  }
  return base;
}

std::optional<endpoint> metrics_endpoint(const config& cfg, const process_id& who) {
  auto eps = cfg.endpoints("metrics_listen");
  if (eps.empty())
    return std::nullopt;
  endpoint e = eps.front();
  e.port = offset_port(e.port, who, "metrics_listen");
  return e;
}

} // namespace metaprobe
