// SPDX-License-Identifier: Apache-2.0
#include "core/channels.hpp"

#include <stdexcept>

namespace metaprobe {

std::optional<sink_group> parse_group(std::string_view name) {
  for (int i = 0; i < sink_group_count; ++i)
    if (sink_group_names[i] == name)
      return static_cast<sink_group>(i);
  return std::nullopt;
}

std::optional<channel> parse_channel(std::string_view name) {
  auto dot = name.find('.');
  if (dot == std::string_view::npos)
    return std::nullopt;
  auto g = parse_group(name.substr(0, dot));
  if (!g)
    return std::nullopt;
  auto k = name.substr(dot + 1);
  for (int i = 0; i < 2; ++i)
    if (sink_kind_names[i] == k)
      return channel{*g, static_cast<sink_kind>(i)};
  return std::nullopt;
}

sink_group group_of(const v1::Record& rec) {
  switch (rec.kind_case()) {
    case v1::Record::kClickstream:
    case v1::Record::kHttpReply:
    case v1::Record::kSslReply:
      return sink_group::clickstream;
    case v1::Record::kDns:
      return sink_group::dns;
    case v1::Record::kFullflow:
      return sink_group::fullflow;
    default:
      return sink_group::meta;
  }
}

std::string channel_endpoint(const std::string& base, const channel& ch) {
  if (base.rfind("tcp://", 0) == 0) {
    auto colon = base.rfind(':');
    if (colon == std::string::npos || colon < 6)
      throw std::invalid_argument("channel_endpoint: tcp endpoint needs a port: " + base);
    int port = std::stoi(base.substr(colon + 1));
    return base.substr(0, colon + 1) + std::to_string(port + ch.index());
  }
  return base + "-" + std::string(sink_group_names[static_cast<int>(ch.group)]) + "-" +
         std::string(sink_kind_names[static_cast<int>(ch.kind)]);
}

std::string channel_base(const config& cfg) {
  std::string v = cfg.str("channel_endpoint");
  if (v != "auto")
    return v;
  std::string dir = cfg.str("run_dir");
  if (dir.empty())
    dir = ".";
  while (dir.size() > 1 && dir.back() == '/')
    dir.pop_back();
  return "ipc://" + dir + "/channel";
}

} // namespace metaprobe
