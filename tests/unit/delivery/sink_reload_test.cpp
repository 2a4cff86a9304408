// SPDX-License-Identifier: Apache-2.0
// SIGHUP reload of an exporter's sinks: unchanged sinks are kept (same
// object: same IPFIX session, templates and sequence numbers), removed
// ones closed, new ones added; a changed setting rebuilds them all; a
// failing reload keeps what runs.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "exporters/channel_sinks.hpp"
#include "exporters/sink_reload.hpp"
#include "temp_dir.hpp"

using namespace metaprobe;

namespace {

using test::temp_dir;

const channel click_ipfix{sink_group::clickstream, sink_kind::ipfix};
const channel click_text{sink_group::clickstream, sink_kind::text};

sink_factory factory_for(const channel& ch) {
  return [ch](const config& c, const std::set<std::string>& skip, std::set<std::string>* names) {
    return make_channel_sinks(c, ch, 0, skip, names);
  };
}

const sink* find(const std::vector<std::unique_ptr<sink>>& sinks, const std::string& name) {
  for (const auto& s : sinks)
    if (s->name() == name)
      return s.get();
  return nullptr;
}

v1::Record request() {
  v1::Record r;
  auto* c = r.mutable_clickstream();
  c->set_hostname("example.org");
  c->mutable_meta()->set_family(v1::FAMILY_IPV4);
  c->mutable_meta()->set_ip_source(std::string("\x0a\x00\x00\x01", 4));
  c->mutable_meta()->set_ip_destination(std::string("\x0a\x00\x00\x02", 4));
  return r;
}

} // namespace

TEST_CASE("sink settings: collector lists and files are not settings") {
  CHECK(is_sink_setting(click_ipfix, "ipfix_mtu"));
  CHECK(is_sink_setting(click_ipfix, "ipfix_udp_template_timer"));
  CHECK(is_sink_setting(click_ipfix, "http_parse_reply"));
  CHECK_FALSE(is_sink_setting({sink_group::dns, sink_kind::ipfix}, "http_parse_reply"));
  CHECK_FALSE(is_sink_setting(click_ipfix, "ipfix_udp_collectors"));
  CHECK_FALSE(is_sink_setting(click_ipfix, "ipfix_dns_tcp_collectors"));
  CHECK_FALSE(is_sink_setting(click_ipfix, "ipfix_file"));
  CHECK_FALSE(is_sink_setting(click_ipfix, "subscribers_file"));
  CHECK(is_sink_setting(click_text, "ajb_url_ftimeout"));
  CHECK_FALSE(is_sink_setting(click_text, "ipfix_mtu"));
}

TEST_CASE("a changed collector list keeps the unchanged collectors' sinks") {
  temp_dir dir;
  const std::string file = dir.path + "/click.ipfix";
  auto before = config::from_overrides(
    {"ipfix_udp_collectors=127.0.0.1:47391,127.0.0.1:47392", "ipfix_file=" + file});
  auto sinks = make_channel_sinks(before, click_ipfix, 0);
  REQUIRE(sinks.size() == 3);
  const sink* kept_udp = find(sinks, "ipfix:udp:127.0.0.1:47392");
  const sink* kept_file = find(sinks, "ipfix:file:" + file);
  REQUIRE(kept_udp);
  REQUIRE(kept_file);
  for (auto& s : sinks)
    s->add(request());
  for (auto& s : sinks)
    s->flush();
  const auto file_size = std::filesystem::file_size(file);
  REQUIRE(file_size > 0);

  auto after = config::from_overrides(
    {"ipfix_udp_collectors=127.0.0.1:47392,127.0.0.1:47393", "ipfix_file=" + file});
  auto r = reload_sinks(click_ipfix, before, after, sinks, factory_for(click_ipfix));
  CHECK(r.kept == 2);
  CHECK(r.added == 1);
  CHECK(r.removed == 1);
  CHECK(r.changed_settings.empty());
  CHECK(describe(r) == "2 sink(s) kept, 1 added, 1 removed");
  REQUIRE(sinks.size() == 3);
  CHECK(find(sinks, "ipfix:udp:127.0.0.1:47392") == kept_udp); // the same session
  CHECK(find(sinks, "ipfix:file:" + file) == kept_file);
  CHECK(find(sinks, "ipfix:udp:127.0.0.1:47393") != nullptr);
  CHECK(find(sinks, "ipfix:udp:127.0.0.1:47391") == nullptr);
  // the file was not reopened (that would have truncated it)
  CHECK(std::filesystem::file_size(file) == file_size);
}

TEST_CASE("a changed IPFIX setting rebuilds every sink") {
  auto before = config::from_overrides({"ipfix_udp_collectors=127.0.0.1:47391"});
  auto sinks = make_channel_sinks(before, click_ipfix, 0);
  REQUIRE(sinks.size() == 1);
  auto after = config::from_overrides({"ipfix_udp_collectors=127.0.0.1:47391", "ipfix_mtu=1200"});
  auto r = reload_sinks(click_ipfix, before, after, sinks, factory_for(click_ipfix));
  CHECK(r.changed_settings == std::vector<std::string>{"ipfix_mtu"});
  CHECK(r.kept == 0);
  CHECK(r.added == 1);
  CHECK(r.removed == 1);
  REQUIRE(sinks.size() == 1);
  CHECK(sinks[0]->name() == "ipfix:udp:127.0.0.1:47391");
}

TEST_CASE("text sinks are rebuilt when a text setting changes, kept otherwise") {
  temp_dir dir;
  auto before = config::from_overrides({"ajb_save_url=1", "ajb_url_path=" + dir.path});
  auto sinks = make_channel_sinks(before, click_text, 0);
  REQUIRE(sinks.size() == 1);
  const sink* first = sinks[0].get();
  auto same = config::from_overrides(
    {"ajb_save_url=1", "ajb_url_path=" + dir.path, "ipfix_mtu=1200"});
  auto r = reload_sinks(click_text, before, same, sinks, factory_for(click_text));
  CHECK(r.kept == 1);
  CHECK(sinks[0].get() == first);
  auto changed = config::from_overrides(
    {"ajb_save_url=1", "ajb_url_path=" + dir.path, "ajb_url_ftimeout=5"});
  r = reload_sinks(click_text, same, changed, sinks, factory_for(click_text));
  CHECK(r.changed_settings == std::vector<std::string>{"ajb_url_ftimeout"});
  CHECK(r.added == 1);
  CHECK(r.removed == 1);
}

TEST_CASE("a reload whose sinks cannot be built keeps the running ones") {
  auto before = config::from_overrides({"ipfix_udp_collectors=127.0.0.1:47391"});
  auto sinks = make_channel_sinks(before, click_ipfix, 0);
  const sink* old = sinks[0].get();
  auto after = config::from_overrides({"ipfix_udp_collectors=127.0.0.1:47391,127.0.0.1:47394"});
  sink_factory failing = [](const config&, const std::set<std::string>&, std::set<std::string>*)
    -> std::vector<std::unique_ptr<sink>> { throw std::runtime_error("collector does not resolve"); };
  CHECK_THROWS_AS(reload_sinks(click_ipfix, before, after, sinks, failing), std::runtime_error);
  REQUIRE(sinks.size() == 1);
  CHECK(sinks[0].get() == old);
}
