// SPDX-License-Identifier: Apache-2.0
#include "exporters/ipfix/ipfix_sinks.hpp"

#include <algorithm>
#include <stdexcept>

#include "core/config.hpp"
#include "exporters/ipfix/ipfix_file_sink.hpp"
#include "exporters/ipfix/ipfix_tcp_sink.hpp"
#include "exporters/ipfix/ipfix_udp_sink.hpp"

namespace metaprobe {

std::vector<std::string> ipfix_kinds_for_group(std::string_view group) {
  if (group == "clickstream") return {"clickstream", "http_reply", "ssl_reply"};
  if (group == "meta") return {"sip", "ftp", "im", "mail", "raw"};
  if (group == "dns") return {"dns"};
  if (group == "fullflow") return {"fullflow"};
  return {};
}

uint32_t ipfix_kind_mask(const ipfix_sink_config& cfg) {
  std::vector<std::string> kinds = cfg.kinds;
  if (kinds.empty()) {
    kinds = ipfix_kinds_for_group(cfg.group);
    if (kinds.empty())
      throw std::invalid_argument("IPFIX sink group '" + cfg.group +
                                  "': unknown (expected clickstream, meta, dns or fullflow)");
  }
  uint32_t mask = 0;
  for (const std::string& k : kinds) {
    ipfix::template_kind tk;
    if (!ipfix::parse_template_kind(k, tk))
      throw std::invalid_argument("IPFIX sink group '" + cfg.group + "': unknown record kind '" + k +
                                  "'");
    mask |= ipfix::kind_bit(tk);
  }
  return mask;
}

std::vector<std::unique_ptr<sink>> make_ipfix_sinks(const ipfix_sink_config& cfg) {
  ipfix_kind_mask(cfg); // validates group / kinds
  if (cfg.mtu < ipfix::ipfix_encoder::min_message_size || cfg.mtu > 65535)
    throw std::invalid_argument("IPFIX mtu " + std::to_string(cfg.mtu) + ": expected 256..65535");
  if (cfg.stream_message_size < ipfix::ipfix_encoder::min_message_size || cfg.stream_message_size > 65535)
    throw std::invalid_argument("IPFIX stream message size " + std::to_string(cfg.stream_message_size) +
                                ": expected 256..65535");
  std::vector<std::unique_ptr<sink>> out;
  for (const std::string& c : cfg.udp_collectors)
    out.push_back(std::make_unique<ipfix::ipfix_udp_sink>(cfg, c));
  for (const std::string& c : cfg.tcp_collectors)
    out.push_back(std::make_unique<ipfix::ipfix_tcp_sink>(cfg, c));
  if (!cfg.file_path.empty()) out.push_back(std::make_unique<ipfix::ipfix_file_sink>(cfg));
  return out;
}

ipfix_sink_config ipfix_sink_config_from(const config& cfg, sink_group group, int instance) {
  ipfix_sink_config sc;
  sc.group = std::string(sink_group_names[static_cast<int>(group)]);
  std::string prefix;
  std::string file_key;
  switch (group) {
  case sink_group::clickstream:
    prefix = "ipfix_";
    file_key = "ipfix_file";
    sc.kinds = {"clickstream"};
    if (cfg.flag("http_parse_reply")) sc.kinds.push_back("http_reply");
    if (cfg.flag("ssl_parse_reply")) sc.kinds.push_back("ssl_reply");
    break;
  case sink_group::meta:
    prefix = "ipfix_meta_";
    file_key = "ipfix_meta_file";
    break;
  case sink_group::dns:
    prefix = "ipfix_dns_";
    file_key = "ipfix_dns_file";
    break;
  case sink_group::fullflow:
    prefix = "ipfix_full_";
    file_key = "ipfix_full_file";
    break;
  }
  for (const endpoint& e : cfg.endpoints(prefix + "udp_collectors")) sc.udp_collectors.push_back(e.text());
  for (const endpoint& e : cfg.endpoints(prefix + "tcp_collectors")) sc.tcp_collectors.push_back(e.text());
  sc.file_path = cfg.str(file_key);
  if (!sc.file_path.empty() && instance > 0) sc.file_path += "." + std::to_string(instance);
  sc.file_mode = static_cast<uint32_t>(std::stoul(cfg.str("output_mode"), nullptr, 8));
  sc.mtu = static_cast<uint32_t>(cfg.integer("ipfix_mtu"));
  sc.template_refresh_s = static_cast<uint32_t>(cfg.seconds("ipfix_udp_template_timer") + 0.5);
  sc.observation_domain_id = static_cast<uint32_t>(cfg.integer("ipfix_observation_domain") + instance);
  sc.device = cfg.str("ipfix_dev");
  sc.max_string_length = static_cast<uint32_t>(cfg.integer("ipfix_max_string"));
  const int64_t buf = cfg.integer("ipfix_tcp_buffer");
  sc.tcp_buffer_records = buf > 0 ? static_cast<size_t>(buf) : 0;
  const double reconnect_max_ms = cfg.seconds("ipfix_tcp_reconnect_max") * 1000.0 + 0.5;
  sc.tcp_reconnect_max_ms = static_cast<uint32_t>(reconnect_max_ms);
  sc.tcp_reconnect_min_ms = std::min(sc.tcp_reconnect_min_ms, sc.tcp_reconnect_max_ms);
  return sc;
}

} // namespace metaprobe
