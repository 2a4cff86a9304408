// SPDX-License-Identifier: Apache-2.0
#include "exporters/sink_reload.hpp"

#include <map>

namespace metaprobe {

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

} // namespace

std::vector<std::string> changed_keys(const config& a, const config& b,
                                      const std::function<bool(const std::string&)>& relevant) {
  std::map<std::string, std::string> before;
  for (auto& [k, v] : a.effective())
    if (relevant(k))
      before[k] = v;
  std::vector<std::string> out;
  for (auto& [k, v] : b.effective()) {
    if (!relevant(k))
      continue;
    auto it = before.find(k);
    if (it == before.end() || it->second != v)
      out.push_back(k);
    if (it != before.end())
      before.erase(it);
  }
  for (auto& [k, v] : before)
    out.push_back(k);
  return out;
}

bool is_sink_setting(const channel& ch, const std::string& key) {
  if (ch.kind == sink_kind::text)
    return key.rfind("ajb_", 0) == 0;
  if (key == "http_parse_reply" || key == "ssl_parse_reply")
    return ch.group == sink_group::clickstream;
  return key.rfind("ipfix_", 0) == 0 && !ends_with(key, "_collectors") && !ends_with(key, "_file");
}

sink_reload_result reload_sinks(const channel& ch, const config& current, const config& next,
                                std::vector<std::unique_ptr<sink>>& sinks,
                                const sink_factory& factory) {
  sink_reload_result r;
  r.changed_settings =
    changed_keys(current, next, [&](const std::string& k) { return is_sink_setting(ch, k); });
  const bool rebuild_all = !r.changed_settings.empty();
  if (rebuild_all) {
    // Close the old sinks first: a new file sink may reuse a path (and
    // truncate it). Should the new ones fail, the old configuration's sinks
    // are rebuilt before the error goes up.
    r.removed = sinks.size();
    for (auto& s : sinks)
      s->flush();
    sinks.clear();
    try {
      sinks = factory(next, {}, nullptr);
    } catch (...) {
      sinks = factory(current, {}, nullptr);
      throw;
    }
    r.added = sinks.size();
    return r;
  }
  std::set<std::string> running;
  for (const auto& s : sinks)
    running.insert(s->name());
  std::set<std::string> wanted;
  auto fresh = factory(next, running, &wanted); // only sinks not running yet
  std::vector<std::unique_ptr<sink>> out;
  for (auto& s : sinks) {
    if (wanted.count(s->name())) {
      out.push_back(std::move(s));
      ++r.kept;
    } else {
      s->flush();
      ++r.removed;
    }
  }
  for (auto& s : fresh) {
    out.push_back(std::move(s));
    ++r.added;
  }
  sinks = std::move(out);
  return r;
}

std::string describe(const sink_reload_result& r) {
  std::string out = std::to_string(r.kept) + " sink(s) kept, " + std::to_string(r.added) +
                    " added, " + std::to_string(r.removed) + " removed";
  if (!r.changed_settings.empty()) {
    out += "; all rebuilt, settings changed:";
    for (const auto& k : r.changed_settings)
      out += " " + k;
  }
  return out;
}

} // namespace metaprobe
