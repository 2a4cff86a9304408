// SPDX-License-Identifier: Apache-2.0
#include "control/metrics_text.hpp"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <vector>

#include "control/metric_families.hpp"

namespace metaprobe {

std::string prometheus_escape(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

namespace {

struct family {
  std::string help;
  bool gauge = false;
  std::vector<std::string> samples; // "name{labels} value"
};

// Shortest text that reads back as `v` ("0.015", "1e-06").
std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  for (int precision = 1; precision < 17; ++precision) {
    char shorter[32];
    std::snprintf(shorter, sizeof shorter, "%.*g", precision, v);
    if (std::strtod(shorter, nullptr) == v)
      return shorter;
  }
  return buf;
}

std::string label_text(const std::map<std::string, std::string>& labels) {
  if (labels.empty())
    return {};
  std::string s = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first)
      s += ',';
    first = false;
    s += k + "=\"" + prometheus_escape(v) + "\"";
  }
  return s + "}";
}

class families {
public:
  void add(const std::string& base, bool gauge, const std::string& help,
           const std::map<std::string, std::string>& labels, const std::string& value) {
    std::string name = "metaprobe_" + base + (gauge ? "" : "_total");
    auto& f = map_[name];
    if (f.samples.empty()) {
      f.help = help;
      f.gauge = gauge;
    }
    f.samples.push_back(name + label_text(labels) + " " + value);
  }
  std::string text() const {
    std::string out;
    for (const auto& [name, f] : map_) {
      out += "# HELP " + name + " " + f.help + "\n";
      out += "# TYPE " + name + (f.gauge ? " gauge\n" : " counter\n");
      for (const auto& s : f.samples)
        out += s + "\n";
    }
    return out;
  }

private:
  std::map<std::string, family> map_;
};

} // namespace

std::string render_prometheus(const v1::ControlReply& reply) {
  families fam;
  for (const auto& p : reply.processes()) {
    std::map<std::string, std::string> l{{"process", p.process()}};
    fam.add("process_uptime_seconds", true, "seconds since the process started", l,
            number_text(static_cast<double>(p.uptime_ms()) / 1000.0));
    fam.add("control_requests", false, "control requests received", l,
            std::to_string(p.control_requests()));
    fam.add("control_refused", false,
            "control requests refused (wrong or missing secret, malformed)", l,
            std::to_string(p.control_refused()));
    fam.add("control_handshakes_denied", false,
            "CURVE handshakes on the control endpoint refused (client key not allowed)", l,
            std::to_string(p.control_handshakes_denied()));
  }
  for (const auto& a : reply.actors()) {
    std::map<std::string, std::string> l{{"process", a.process()},
                                         {"actor", a.name()},
                                         {"kind", a.kind()},
                                         {"shard", std::to_string(a.shard())}};
    fam.add("actor_messages_in", false, "batches an actor handled", l,
            std::to_string(a.messages_in()));
    fam.add("actor_messages_out", false, "batches an actor sent", l,
            std::to_string(a.messages_out()));
    fam.add("actor_drops", false, "packets or records an actor dropped", l,
            std::to_string(a.drops()));
    fam.add("actor_errors", false, "errors an actor reported", l, std::to_string(a.errors()));
    fam.add("actor_mailbox_depth", true, "messages waiting in an actor's mailbox", l,
            std::to_string(a.mailbox_depth()));
  }
  for (const auto& c : reply.counters()) {
    std::map<std::string, std::string> l(c.labels().begin(), c.labels().end());
    auto stage = l.count("stage") ? l["stage"] : std::string("process");
    metric_family f = family_of_counter(c.name(), stage);
    fam.add(f.name, c.gauge(), f.help, l,
            f.divisor == 1 ? std::to_string(c.value())
                           : number_text(static_cast<double>(c.value()) / f.divisor));
  }
  return fam.text();
}

} // namespace metaprobe
