// SPDX-License-Identifier: Apache-2.0
#include "control/console_view.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>
#include <tuple>
#include <vector>

namespace metaprobe {

namespace {

const char* const commands[] = {"status", "actors", "flows", "exporters", "counters",
                                "config", "top",    "stop",  "help",      "quit",
                                nullptr};

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// A counter's own name within its view: exporter_sink_records_sent -> records_sent.
std::string leaf_name(const v1::Counter& c) {
  const std::string& n = c.name();
  for (const char* prefix :
       {"exporter_sink_", "exporter_", "publisher_", "classifier_", "parser_", "memory_"})
    if (n.rfind(prefix, 0) == 0)
      return n.substr(std::string(prefix).size());
  return n;
}

std::string label(const v1::Counter& c, const std::string& k) {
  auto it = c.labels().find(k);
  return it == c.labels().end() ? std::string() : it->second;
}

// Ordered "key": number members.
using counter_map = std::map<std::string, uint64_t>;

void json_members(std::ostringstream& o, const counter_map& m, bool lead_comma) {
  bool first = !lead_comma;
  for (const auto& [k, v] : m) {
    o << (first ? "" : ",") << json_string(k) << ":" << v;
    first = false;
  }
}

void json_processes(std::ostringstream& o, const v1::ControlReply& r) {
  o << "\"processes\":[";
  for (int i = 0; i < r.processes_size(); ++i) {
    const auto& p = r.processes(i);
    o << (i ? "," : "") << "{\"process\":" << json_string(p.process())
      << ",\"binary\":" << json_string(p.binary()) << ",\"version\":" << json_string(p.version())
      << ",\"pid\":" << p.pid() << ",\"uptime_ms\":" << p.uptime_ms()
      << ",\"state\":" << json_string(p.state()) << ",\"endpoint\":" << json_string(p.endpoint())
      << ",\"error\":" << json_string(p.error()) << ",\"control_requests\":" << p.control_requests()
      << ",\"control_refused\":" << p.control_refused()
      << ",\"control_handshakes_denied\":" << p.control_handshakes_denied() << "}";
  }
  o << "]";
}

struct flows_view {
  std::map<std::pair<std::string, std::string>, counter_map> shards; // (process, shard)
  std::map<std::string, counter_map> protocols;
  counter_map total;
  counter_map memory; // the capture's memory budget (core/memory_budget.hpp)
};

flows_view build_flows(const v1::ControlReply& r) {
  flows_view v;
  for (const auto& c : r.counters()) {
    const std::string stage = label(c, "stage");
    const std::string leaf = leaf_name(c);
    if (stage == "classifier") {
      v.shards[{label(c, "process"), label(c, "shard")}][leaf] += c.value();
      v.total[leaf] += c.value();
    } else if (stage == "parser") {
      const std::string chain = label(c, "chain");
      if (!chain.empty())
        v.protocols[label(c, "protocol")]["chain " + chain] += c.value();
      else
        v.protocols[label(c, "protocol")][leaf] += c.value();
    } else if (stage == "memory") {
      v.memory[leaf] += c.value();
    }
  }
  return v;
}

struct exporter_view {
  struct sink_v {
    std::string sink, collector;
    counter_map counters;
  };
  std::string process, channel, instance;
  counter_map counters;
  std::vector<sink_v> sinks;
};

struct exporters_view {
  std::map<std::pair<std::string, std::string>, counter_map> publisher; // (process, channel)
  std::vector<exporter_view> exporters;
};

exporters_view build_exporters(const v1::ControlReply& r) {
  exporters_view v;
  std::map<std::tuple<std::string, std::string, std::string>, size_t> idx;
  for (const auto& c : r.counters()) {
    const std::string stage = label(c, "stage");
    if (stage == "publisher") {
      v.publisher[{label(c, "process"), label(c, "channel")}][leaf_name(c)] += c.value();
      continue;
    }
    if (stage != "exporter")
      continue;
    auto key = std::make_tuple(label(c, "process"), label(c, "channel"), label(c, "instance"));
    auto it = idx.find(key);
    if (it == idx.end()) {
      it = idx.emplace(key, v.exporters.size()).first;
      v.exporters.push_back({std::get<0>(key), std::get<1>(key), std::get<2>(key), {}, {}});
    }
    auto& e = v.exporters[it->second];
    const std::string sink = label(c, "sink");
    if (sink.empty()) {
      e.counters[leaf_name(c)] += c.value();
      continue;
    }
    const std::string coll = label(c, "collector");
    auto s = std::find_if(e.sinks.begin(), e.sinks.end(), [&](const exporter_view::sink_v& x) {
      return x.sink == sink && x.collector == coll;
    });
    if (s == e.sinks.end()) {
      e.sinks.push_back({sink, coll, {}});
      s = e.sinks.end() - 1;
    }
    s->counters[leaf_name(c)] += c.value();
  }
  return v;
}

// Text table with left-aligned first columns and right-aligned numbers.
std::string table(const std::vector<std::string>& head,
                  const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(head.size());
  for (size_t i = 0; i < head.size(); ++i)
    w[i] = head[i].size();
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i)
      w[i] = std::max(w[i], r[i].size());
  std::string out;
  auto line = [&](const std::vector<std::string>& r) {
    for (size_t i = 0; i < w.size(); ++i) {
      std::string cell = i < r.size() ? r[i] : "";
      std::string pad(w[i] - std::min(w[i], cell.size()), ' ');
      out += (i ? "  " : "") + (i < 3 ? cell + pad : pad + cell);
    }
    while (!out.empty() && out.back() == ' ')
      out.pop_back();
    out += "\n";
  };
  line(head);
  for (const auto& r : rows)
    line(r);
  return out;
}

std::string text_counter_block(const std::string& title, const counter_map& m) {
  std::string out = title + "\n";
  for (const auto& [k, v] : m)
    out += "  " + k + " = " + std::to_string(v) + "\n";
  return out;
}

} // namespace

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

const char* const* console_commands() {
  return commands;
}

bool console_command_kind(const std::string& c, v1::ControlRequest::Kind& kind) {
  static const std::map<std::string, v1::ControlRequest::Kind> kinds = {
    {"status", v1::ControlRequest::STATUS},       {"actors", v1::ControlRequest::ACTORS},
    {"top", v1::ControlRequest::ACTORS},          {"flows", v1::ControlRequest::FLOWS},
    {"exporters", v1::ControlRequest::EXPORTERS}, {"counters", v1::ControlRequest::COUNTERS},
    {"config", v1::ControlRequest::CONFIG},       {"stop", v1::ControlRequest::STOP}};
  auto it = kinds.find(c);
  if (it == kinds.end())
    return false;
  kind = it->second;
  return true;
}

std::string render_json(const std::string& command, const v1::ControlReply& r) {
  std::ostringstream o;
  o << "{";
  if (!r.ok()) {
    o << "\"ok\":false,\"error\":" << json_string(r.error()) << "}";
    return o.str();
  }
  if (command == "config") {
    o << "\"config\":{";
    std::map<std::string, std::string> sorted(r.config().begin(), r.config().end());
    bool first = true;
    for (const auto& [k, v] : sorted) {
      o << (first ? "" : ",") << json_string(k) << ":" << json_string(v);
      first = false;
    }
    o << "}}";
    return o.str();
  }
  json_processes(o, r);
  if (command == "actors" || command == "top") {
    o << ",\"actors\":[";
    for (int i = 0; i < r.actors_size(); ++i) {
      const auto& a = r.actors(i);
      o << (i ? "," : "") << "{\"process\":" << json_string(a.process())
        << ",\"name\":" << json_string(a.name()) << ",\"kind\":" << json_string(a.kind())
        << ",\"shard\":" << a.shard() << ",\"mailbox_depth\":" << a.mailbox_depth()
        << ",\"messages_in\":" << a.messages_in() << ",\"messages_out\":" << a.messages_out()
        << ",\"rate\":" << num(a.rate()) << ",\"drops\":" << a.drops()
        << ",\"errors\":" << a.errors() << ",\"last_error\":" << json_string(a.last_error())
        << ",\"finished\":" << (a.finished() ? "true" : "false") << "}";
    }
    o << "]";
  } else if (command == "flows") {
    auto v = build_flows(r);
    o << ",\"shards\":[";
    bool first = true;
    for (const auto& [key, m] : v.shards) {
      o << (first ? "" : ",") << "{\"process\":" << json_string(key.first)
        << ",\"shard\":" << (key.second.empty() ? "-1" : key.second);
      json_members(o, m, true);
      o << "}";
      first = false;
    }
    o << "],\"protocols\":{";
    first = true;
    for (const auto& [proto, m] : v.protocols) {
      o << (first ? "" : ",") << json_string(proto) << ":{";
      json_members(o, m, false);
      o << "}";
      first = false;
    }
    o << "},\"total\":{";
    json_members(o, v.total, false);
    o << "},\"memory\":{";
    json_members(o, v.memory, false);
    o << "}";
  } else if (command == "exporters") {
    auto v = build_exporters(r);
    o << ",\"publisher\":[";
    bool first = true;
    for (const auto& [key, m] : v.publisher) {
      o << (first ? "" : ",") << "{\"process\":" << json_string(key.first)
        << ",\"channel\":" << json_string(key.second);
      json_members(o, m, true);
      o << "}";
      first = false;
    }
    o << "],\"exporters\":[";
    first = true;
    for (const auto& e : v.exporters) {
      o << (first ? "" : ",") << "{\"process\":" << json_string(e.process)
        << ",\"channel\":" << json_string(e.channel)
        << ",\"instance\":" << (e.instance.empty() ? "0" : e.instance);
      json_members(o, e.counters, true);
      o << ",\"sinks\":[";
      for (size_t i = 0; i < e.sinks.size(); ++i) {
        o << (i ? "," : "") << "{\"sink\":" << json_string(e.sinks[i].sink)
          << ",\"collector\":" << json_string(e.sinks[i].collector);
        json_members(o, e.sinks[i].counters, true);
        o << "}";
      }
      o << "]}";
      first = false;
    }
    o << "]";
  } else if (command == "counters") {
    o << ",\"counters\":[";
    for (int i = 0; i < r.counters_size(); ++i) {
      const auto& c = r.counters(i);
      o << (i ? "," : "") << "{\"name\":" << json_string(c.name()) << ",\"value\":" << c.value()
        << ",\"gauge\":" << (c.gauge() ? "true" : "false") << ",\"labels\":{";
      std::map<std::string, std::string> l(c.labels().begin(), c.labels().end());
      bool first = true;
      for (const auto& [k, v] : l) {
        o << (first ? "" : ",") << json_string(k) << ":" << json_string(v);
        first = false;
      }
      o << "}}";
    }
    o << "]";
  }
  o << "}";
  return o.str();
}

std::string render_text(const std::string& command, const v1::ControlReply& r) {
  if (!r.ok())
    return "error: " + r.error() + "\n";
  if (command == "config") {
    std::map<std::string, std::string> sorted(r.config().begin(), r.config().end());
    std::string out;
    for (const auto& [k, v] : sorted)
      out += k + "=" + v + "\n";
    return out;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : r.processes())
    rows.push_back({p.process(), p.state(), p.binary(), std::to_string(p.pid()),
                    num(static_cast<double>(p.uptime_ms()) / 1000.0),
                    std::to_string(p.control_refused()), p.error()});
  std::string out =
    table({"PROCESS", "STATE", "BINARY", "PID", "UPTIME_S", "REFUSED", "ERROR"}, rows);
  if (command == "actors" || command == "top") {
    std::vector<const v1::ActorInfo*> as;
    for (const auto& a : r.actors())
      as.push_back(&a);
    if (command == "top")
      std::stable_sort(as.begin(), as.end(), [](auto* a, auto* b) { return a->rate() > b->rate(); });
    rows.clear();
    for (const auto* a : as)
      rows.push_back({a->process(), a->name(), a->shard() < 0 ? "-" : std::to_string(a->shard()),
                      std::to_string(a->mailbox_depth()), std::to_string(a->messages_in()),
                      std::to_string(a->messages_out()), num(a->rate()),
                      std::to_string(a->drops()), a->finished() ? "done" : "",
                      a->last_error()});
    out += "\n" + table({"PROCESS", "ACTOR", "SHARD", "MAILBOX", "IN", "OUT", "RATE/S", "DROPS",
                         "STATE", "LAST_ERROR"},
                        rows);
  } else if (command == "flows") {
    auto v = build_flows(r);
    for (const auto& [key, m] : v.shards)
      out += "\n" + text_counter_block(key.first + " classifier shard " + key.second, m);
    for (const auto& [proto, m] : v.protocols)
      out += "\n" + text_counter_block("protocol " + proto, m);
    if (!v.memory.empty())
      out += "\n" + text_counter_block("memory budget", v.memory);
  } else if (command == "exporters") {
    auto v = build_exporters(r);
    for (const auto& [key, m] : v.publisher)
      out += "\n" + text_counter_block(key.first + " publisher " + key.second, m);
    for (const auto& e : v.exporters) {
      out += "\n" + text_counter_block(e.process + " (" + e.channel + "#" + e.instance + ")",
                                       e.counters);
      for (const auto& s : e.sinks)
        out += text_counter_block("  sink " + s.sink +
                                    (s.collector.empty() ? "" : " [" + s.collector + "]"),
                                  s.counters);
    }
  } else if (command == "counters") {
    out += "\n";
    for (const auto& c : r.counters()) {
      std::map<std::string, std::string> l(c.labels().begin(), c.labels().end());
      std::string ls;
      for (const auto& [k, v] : l)
        ls += (ls.empty() ? "" : ",") + k + "=" + v;
      out += c.name() + "{" + ls + "} " + std::to_string(c.value()) + "\n";
    }
  }
  return out;
}

} // namespace metaprobe
