// SPDX-License-Identifier: Apache-2.0
#include "control/stats_counters.hpp"

#include <cctype>

namespace metaprobe {

namespace {

std::vector<std::string_view> split_dots(std::string_view s, size_t max_parts) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    auto dot = s.find('.');
    if (dot == std::string_view::npos)
      break;
    parts.push_back(s.substr(0, dot));
    s.remove_prefix(dot + 1);
  }
  parts.push_back(s);
  return parts;
}

bool is_number(std::string_view s) {
  if (s.empty())
    return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c)))
      return false;
  return true;
}

} // namespace

std::string metric_safe(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    out.push_back(std::isalnum(u) ? static_cast<char>(std::tolower(u)) : '_');
  }
  return out;
}

bool is_gauge_name(std::string_view n) {
  for (std::string_view g : {"flows_active", "active_flows", "ipreasm.pending", "connected",
                             "buffered_records", "unacked_records", "held_records",
                             "mailbox_depth", "exporters_connected", "children_alive",
                             "max_send_cycle_us",
                             // memory budget (core/memory_budget.hpp) levels
                             "memory.charged_bytes", "limit_bytes", "used_bytes", "peak_bytes",
                             "pressure", "heap_over_bytes", "heap_over_peak_bytes",
                             "heap_allocated_bytes", "heap_resident_bytes", "peak_rss_bytes"})
    if (n == g)
      return true;
  return false;
}

v1::Counter counter_from_stat(const std::string& key, uint64_t value) {
  v1::Counter c;
  c.set_value(value);
  auto& labels = *c.mutable_labels();
  std::string_view k = key;
  auto parts = split_dots(k, 2);
  const std::string stage = metric_safe(parts[0]);
  labels["stage"] = stage;
  std::string leaf; // the counter's own name within the stage
  if (parts.size() == 1) {
    leaf = "value";
  } else if (stage == "classifier") {
    auto p = split_dots(parts[1], 2);
    if (p.size() == 2 && is_number(p[0])) {
      labels["shard"] = std::string(p[0]);
      leaf = std::string(p[1]);
    } else {
      leaf = std::string(parts[1]);
    }
  } else if (stage == "parser") {
    auto p = split_dots(parts[1], 3);
    if (p.size() == 3 && is_number(p[1])) {
      labels["protocol"] = std::string(p[0]);
      labels["shard"] = std::string(p[1]);
      leaf = std::string(p[2]);
      if (leaf.rfind("chain.", 0) == 0) {
        // Flows per protocol chain ("http>tls"): the chain is a label.
        labels["chain"] = leaf.substr(6);
        leaf = "chain_flows";
      }
    } else {
      leaf = std::string(parts[1]);
    }
  } else if (stage == "publisher") {
    auto p = split_dots(parts[1], 3);
    if (p.size() == 3) {
      labels["channel"] = std::string(p[0]) + "." + std::string(p[1]);
      leaf = std::string(p[2]);
    } else {
      leaf = std::string(parts[1]);
    }
  } else if (stage == "exporter") {
    auto p = split_dots(parts[1], 4);
    if (p.size() == 4 && is_number(p[2])) {
      labels["channel"] = std::string(p[0]) + "." + std::string(p[1]);
      labels["instance"] = std::string(p[2]);
      std::string_view rest = p[3];
      std::string label;
      if (!rest.empty() && rest.back() == '}') {
        auto open = rest.rfind('{');
        if (open != std::string_view::npos) {
          label = std::string(rest.substr(open + 1, rest.size() - open - 2));
          rest = rest.substr(0, open);
        }
      }
      auto dot = rest.rfind('.');
      if (dot == std::string_view::npos) {
        leaf = std::string(rest);
      } else {
        labels["sink"] = std::string(rest.substr(0, dot));
        if (!label.empty())
          labels["collector"] = label;
        c.set_name("exporter_sink_" + metric_safe(rest.substr(dot + 1)));
        c.set_gauge(is_gauge_name(rest.substr(dot + 1)));
        return c;
      }
    } else {
      leaf = std::string(parts[1]);
    }
  } else {
    leaf = std::string(parts[1]);
  }
  c.set_name(stage + "_" + metric_safe(leaf));
  c.set_gauge(is_gauge_name(leaf));
  return c;
}

std::vector<v1::Counter> counters_from_stats(const std::map<std::string, uint64_t>& stats) {
  std::vector<v1::Counter> out;
  out.reserve(stats.size());
  for (const auto& [k, v] : stats)
    out.push_back(counter_from_stat(k, v));
  return out;
}

} // namespace metaprobe
