// SPDX-License-Identifier: Apache-2.0
#include "exporters/channel_sinks.hpp"

#include "exporters/ipfix/ipfix_sinks.hpp"
#include "exporters/text/text_format.hpp"
#include "exporters/text/text_sink.hpp"

namespace metaprobe {

namespace {

// The text kinds that belong to a sink group.
bool text_kind_in_group(text_kind k, sink_group g) {
  switch (k) {
    case text_kind::url:
    case text_kind::ssl:
      return g == sink_group::clickstream;
    case text_kind::sip:
      return g == sink_group::meta;
    case text_kind::dns:
      return g == sink_group::dns;
  }
  return false;
}

// Keeps the entries of `list` whose sink name (prefix + entry) is not in
// `skip`; adds every name to `names`.
std::vector<std::string> filter(const std::vector<std::string>& list, const std::string& prefix,
                                const std::set<std::string>& skip, std::set<std::string>* names) {
  std::vector<std::string> out;
  for (const auto& e : list) {
    if (names)
      names->insert(prefix + e);
    if (!skip.count(prefix + e))
      out.push_back(e);
  }
  return out;
}

} // namespace

std::vector<std::unique_ptr<sink>> make_channel_sinks(const config& cfg, const channel& ch,
                                                      int instance,
                                                      const std::set<std::string>& skip,
                                                      std::set<std::string>* names,
                                                      bool resume) {
  std::vector<std::unique_ptr<sink>> sinks;
  if (ch.kind == sink_kind::ipfix) {
    auto sc = ipfix_sink_config_from(cfg, ch.group, instance);
    sc.file_append = resume;
    // the names the IPFIX sinks give themselves (ipfix_{udp,tcp,file}_sink)
    sc.udp_collectors = filter(sc.udp_collectors, "ipfix:udp:", skip, names);
    sc.tcp_collectors = filter(sc.tcp_collectors, "ipfix:tcp:", skip, names);
    if (!sc.file_path.empty()) {
      auto kept = filter({sc.file_path}, "ipfix:file:", skip, names);
      sc.file_path = kept.empty() ? std::string() : kept[0];
    }
    return make_ipfix_sinks(sc);
  }
  for (auto tc : text_sinks_from_config(cfg)) {
    if (!text_kind_in_group(tc.kind, ch.group))
      continue;
    const std::string name = "text:" + std::string(text_kind_name(tc.kind)) + ":" + tc.path;
    if (names)
      names->insert(name);
    if (skip.count(name))
      continue;
    auto problem = prepare_text_dir(tc.path);
    if (!problem.empty())
      throw config_error(problem);
    tc.instance = static_cast<uint32_t>(instance);
    sinks.push_back(make_text_sink(tc));
  }
  return sinks;
}

} // namespace metaprobe
