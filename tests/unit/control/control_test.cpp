// SPDX-License-Identifier: Apache-2.0
// Control endpoints: naming, the request/reply protocol with and without a
// secret, the appliance's merge of its children, the actor registry and
// the console's rendering.

#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "control/console_view.hpp"
#include "control/control_client.hpp"
#include "control/control_endpoints.hpp"
#include "control/control_server.hpp"
#include "control/process_inspector.hpp"
#include "control/stats_counters.hpp"
#include "temp_dir.hpp"

using namespace metaprobe;
using namespace std::chrono_literals;

namespace {

using test::temp_dir;

std::string label(const v1::Counter& c, const std::string& k) {
  auto it = c.labels().find(k);
  return it == c.labels().end() ? "" : it->second;
}

const channel dns_ipfix{sink_group::dns, sink_kind::ipfix};

} // namespace

TEST_CASE("control endpoints: one base, one endpoint per process") {
  const std::string b = "ipc:///run/mp/control";
  CHECK(control_endpoint(b, process_id::appliance()) == b);
  CHECK(control_endpoint(b, process_id::capture()) == b + "-capture");
  CHECK(control_endpoint(b, process_id::exporter(dns_ipfix, 3)) == b + "-exporter-dns-ipfix-3");
  CHECK(control_endpoint("", process_id::capture()).empty());
  // tcp: port offsets 0, 1, 2 + 64 * channel index + instance
  CHECK(control_endpoint("tcp://127.0.0.1:7300", process_id::appliance()) == "tcp://127.0.0.1:7300");
  CHECK(control_endpoint("tcp://127.0.0.1:7300", process_id::capture()) == "tcp://127.0.0.1:7301");
  CHECK(control_endpoint("tcp://127.0.0.1:7300", process_id::exporter(dns_ipfix, 3)) ==
        "tcp://127.0.0.1:" + std::to_string(7300 + 2 + 64 * 4 + 3));
  CHECK_THROWS_AS(control_endpoint("tcp://127.0.0.1:65500", process_id::exporter(dns_ipfix, 0)),
                  config_error);

  auto cfg = config::from_overrides({"run_dir=/var/run/mp/"});
  CHECK(control_base(cfg) == "ipc:///var/run/mp/control"); // auto is the default
  CHECK(control_base(config::from_overrides({"control_listen=off"})).empty());
  CHECK_THROWS_AS(config::from_overrides({"control_listen=tcp://127.0.0.1"}), config_error);
  CHECK_THROWS_AS(config::from_overrides({"control_listen=http://x"}), config_error);

  CHECK_FALSE(metrics_endpoint(cfg, process_id::capture()));
  auto m = config::from_overrides({"metrics_listen=127.0.0.1:9100"});
  CHECK(metrics_endpoint(m, process_id::appliance())->port == 9100);
  CHECK(metrics_endpoint(m, process_id::capture())->port == 9101);
  CHECK(metrics_endpoint(m, process_id::exporter(dns_ipfix, 1))->port == 9100 + 2 + 256 + 1);
  CHECK_THROWS_AS(config::from_overrides({"metrics_listen=127.0.0.1:1,127.0.0.1:2"}),
                  config_error);
}

TEST_CASE("control endpoints: metaprobe-console --process names a process") {
  CHECK(parse_process_id("appliance")->role == process_role::appliance);
  CHECK(parse_process_id("capture")->role == process_role::capture);
  auto e = parse_process_id("exporter:dns.ipfix:1");
  REQUIRE(e);
  CHECK(e->role == process_role::exporter);
  CHECK(e->ch.name() == "dns.ipfix");
  CHECK(e->instance == 1);
  CHECK(control_endpoint("ipc:///r/control", *e) == "ipc:///r/control-exporter-dns-ipfix-1");
  CHECK(parse_process_id("exporter:clickstream.text:63")->instance == 63);
  for (const char* bad : {"", "Capture", "exporter", "exporter:", "exporter:dns.ipfix",
                          "exporter:dns.ipfix:", "exporter:dns.ipfix:64", "exporter:dns.ipfix:-1",
                          "exporter:dns.ipfix:1x", "exporter:dns:1", "exporter:dns.csv:0",
                          "exporter::0", "exporter:dns.ipfix:007"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_process_id(bad));
  }
}

TEST_CASE("stage_stats names become labelled counters") {
  auto c = counter_from_stat("classifier.1.flows_created", 7);
  CHECK(c.name() == "classifier_flows_created");
  CHECK(label(c, "stage") == "classifier");
  CHECK(label(c, "shard") == "1");
  CHECK(c.value() == 7);
  CHECK_FALSE(c.gauge());

  c = counter_from_stat("classifier.0.flows_active", 3);
  CHECK(c.gauge());

  c = counter_from_stat("parser.http.0.records", 5);
  CHECK(c.name() == "parser_records");
  CHECK(label(c, "protocol") == "http");
  CHECK(label(c, "shard") == "0");

  // A protocol chain after hand-overs is a label, not part of the name.
  c = counter_from_stat("parser.http.1.chain.http>http>tls", 4);
  CHECK(c.name() == "parser_chain_flows");
  CHECK(label(c, "protocol") == "http");
  CHECK(label(c, "chain") == "http>http>tls");
  CHECK(c.value() == 4);

  c = counter_from_stat("capture.decode.ok", 9);
  CHECK(c.name() == "capture_decode_ok");
  CHECK(label(c, "stage") == "capture");

  c = counter_from_stat("publisher.clickstream.ipfix.records_dropped", 2);
  CHECK(c.name() == "publisher_records_dropped");
  CHECK(label(c, "channel") == "clickstream.ipfix");

  c = counter_from_stat("publisher.dns.ipfix.exporters_connected", 2);
  CHECK(c.name() == "publisher_exporters_connected");
  CHECK(label(c, "channel") == "dns.ipfix");
  CHECK(c.gauge());

  c = counter_from_stat("exporter.dns.ipfix.0.records", 11);
  CHECK(c.name() == "exporter_records");
  CHECK(label(c, "channel") == "dns.ipfix");
  CHECK(label(c, "instance") == "0");
  CHECK(label(c, "sink") == "");

  // sink names and labels contain dots and colons
  c = counter_from_stat("exporter.dns.ipfix.2.ipfix:tcp:127.0.0.1:4739.connected{127.0.0.1:4739}", 1);
  CHECK(c.name() == "exporter_sink_connected");
  CHECK(label(c, "sink") == "ipfix:tcp:127.0.0.1:4739");
  CHECK(label(c, "collector") == "127.0.0.1:4739");
  CHECK(label(c, "instance") == "2");
  CHECK(c.gauge());

  c = counter_from_stat("other.some-thing.x", 1);
  CHECK(c.name() == "other_some_thing_x");
  CHECK(metric_safe("A.b:c-d") == "a_b_c_d");
}

TEST_CASE("actor registry: counters, finished state, rate") {
  actor_registry reg;
  auto a = reg.add("parser:http", "parser", 1);
  auto b = reg.add("correlator", "correlator");
  a->received(10);
  a->sent(4);
  a->set_drops(2);
  a->set_mailbox_depth(5);
  a->set_error(std::string(300, 'x'));
  b->set_finished();
  auto t0 = std::chrono::steady_clock::now();
  reg.sample(t0);
  a->received(20);
  reg.sample(t0 + 2s);
  auto s = reg.snapshot();
  REQUIRE(s.size() == 2);
  CHECK(s[0].name == "parser:http");
  CHECK(s[0].kind == "parser");
  CHECK(s[0].shard == 1);
  CHECK(s[0].messages_in == 30);
  CHECK(s[0].messages_out == 4);
  CHECK(s[0].drops == 2);
  CHECK(s[0].mailbox_depth == 5);
  CHECK(s[0].errors == 1);
  CHECK(s[0].last_error.size() == 256);
  CHECK(s[0].rate == doctest::Approx(10.0));
  CHECK(s[1].shard == -1);
  CHECK(s[1].finished);
  CHECK_FALSE(s[0].finished);
}

TEST_CASE("control server: answers, refuses a wrong secret, counts refusals") {
  temp_dir dir;
  stage_stats stats;
  stats.set("classifier.0.flows_created", 12);
  stats.set("exporter.dns.ipfix.0.records", 3);
  stats.actors().add("classifier", "classifier", 0)->received(4);
  bool stopped = false;
  process_inspector self(process_id::capture(), "ipc://" + dir.path + "/c", stats,
                         {{"workers", "2"}, {"control_secret", "s3cret"}},
                         [&] { stopped = true; });
  control_server server({"ipc://" + dir.path + "/sub/c", "s3cret", {}}, self);
  std::string error;
  REQUIRE_MESSAGE(server.start(error), error);
  // owner-only socket file in a folder created for it
  auto perms = std::filesystem::status(dir.path + "/sub/c").permissions();
  CHECK((perms & std::filesystem::perms::group_all) == std::filesystem::perms::none);
  CHECK((perms & std::filesystem::perms::others_all) == std::filesystem::perms::none);

  control_client client;
  v1::ControlRequest req;
  req.set_kind(v1::ControlRequest::ACTORS);
  auto r = client.call(server.endpoint(), req, 2000ms);
  REQUIRE(r.ok);
  CHECK_FALSE(r.reply.ok());
  CHECK(r.reply.error() == "unauthorized");
  CHECK(r.reply.actors_size() == 0);

  req.set_secret("s3cret!");
  r = client.call(server.endpoint(), req, 2000ms);
  REQUIRE(r.ok);
  CHECK(r.reply.error() == "unauthorized");

  req.set_secret("s3cret");
  r = client.call(server.endpoint(), req, 2000ms);
  REQUIRE(r.ok);
  CHECK(r.reply.ok());
  REQUIRE(r.reply.actors_size() == 1);
  CHECK(r.reply.actors(0).messages_in() == 4);
  CHECK(r.reply.actors(0).process() == "capture");
  REQUIRE(r.reply.processes_size() == 1);
  CHECK(r.reply.processes(0).control_refused() == 2);
  CHECK(r.reply.processes(0).control_requests() == 3);
  CHECK(r.reply.processes(0).pid() == static_cast<uint32_t>(::getpid()));

  req.set_kind(v1::ControlRequest::FLOWS);
  r = client.call(server.endpoint(), req, 2000ms);
  REQUIRE(r.ok);
  REQUIRE(r.reply.counters_size() == 1); // the exporter counter is not a flow counter
  CHECK(r.reply.counters(0).name() == "classifier_flows_created");
  CHECK(label(r.reply.counters(0), "process") == "capture");

  req.set_kind(v1::ControlRequest::CONFIG);
  r = client.call(server.endpoint(), req, 2000ms);
  REQUIRE(r.ok);
  CHECK(r.reply.config().at("workers") == "2");
  CHECK(r.reply.config().at("control_secret") == "(set)"); // never the secret itself

  req.set_kind(v1::ControlRequest::STOP);
  r = client.call(server.endpoint(), req, 2000ms);
  REQUIRE(r.ok);
  CHECK(r.reply.ok());
  CHECK(stopped);

  // garbage is refused, not fatal
  std::string reply = server.handle("\xff\xff\xff", 3);
  v1::ControlReply parsed;
  REQUIRE(parsed.ParseFromString(reply));
  CHECK(parsed.error() == "malformed request");

  // a second server on a live path does not take it over
  control_server other({"ipc://" + dir.path + "/sub/c", "", {}}, self);
  CHECK_FALSE(other.start(error));
  CHECK(error.find("in use") != std::string::npos);

  server.stop();
  CHECK_FALSE(std::filesystem::exists(dir.path + "/sub/c"));
}

TEST_CASE("appliance merges its children and reports the missing ones") {
  temp_dir dir;
  const std::string base = "ipc://" + dir.path + "/ctl";
  stage_stats app_stats, cap_stats, exp_stats;
  cap_stats.actors().add("capture", "capture")->received(9);
  cap_stats.set("classifier.0.flows_created", 4);
  exp_stats.actors().add("exporter:dns.ipfix", "exporter", 0)->received(2);
  process_inspector cap(process_id::capture(), control_endpoint(base, process_id::capture()),
                        cap_stats, {});
  process_inspector exp(process_id::exporter(dns_ipfix, 0),
                        control_endpoint(base, process_id::exporter(dns_ipfix, 0)), exp_stats, {});
  control_server cap_srv({control_endpoint(base, process_id::capture()), "k", {}}, cap);
  control_server exp_srv({control_endpoint(base, process_id::exporter(dns_ipfix, 0)), "k", {}}, exp);
  std::string error;
  REQUIRE(cap_srv.start(error));
  REQUIRE(exp_srv.start(error));

  process_inspector self(process_id::appliance(), base, app_stats, {{"workers", "1"}});
  const channel click{sink_group::clickstream, sink_kind::text};
  auto kids = [&] {
    return std::vector<child_state>{
      {process_id::capture(), 100, true, -1},
      {process_id::exporter(dns_ipfix, 0), 101, true, -1},
      {process_id::exporter(click, 0), 102, false, 3},      // exited
      {process_id::exporter(dns_ipfix, 1), 103, true, -1}}; // nobody answers there
  };
  appliance_inspector app(self, base, "k", kids, 300ms);
  v1::ControlRequest req;
  req.set_kind(v1::ControlRequest::ACTORS);
  v1::ControlReply reply;
  reply.set_ok(true);
  app.answer(req, reply);
  CHECK(reply.ok());
  std::map<std::string, std::string> states;
  for (const auto& p : reply.processes())
    states[p.process()] = p.state();
  CHECK(states.at("metaprobe") == "running");
  CHECK(states.at("capture") == "running");
  CHECK(states.at("exporter dns.ipfix#0") == "running");
  CHECK(states.at("exporter clickstream.text#0") == "exited");
  CHECK(states.at("exporter dns.ipfix#1") == "unreachable");
  CHECK(reply.processes(0).process() == "metaprobe");
  CHECK(reply.processes(0).control_requests() == 0); // answer() called directly, not served
  REQUIRE(reply.actors_size() == 2);
  CHECK(reply.actors(0).process() == "capture");
  CHECK(reply.actors(0).messages_in() == 9);
  CHECK(reply.actors(1).process() == "exporter dns.ipfix#0");

  req.set_kind(v1::ControlRequest::FLOWS);
  v1::ControlReply flows;
  flows.set_ok(true);
  app.answer(req, flows);
  REQUIRE(flows.counters_size() == 1);
  CHECK(label(flows.counters(0), "process") == "capture");

  // the console's JSON of the merged reply
  std::string json = render_json("actors", reply);
  CHECK(json.find("\"name\":\"capture\"") != std::string::npos);
  CHECK(json.find("\"messages_in\":9") != std::string::npos);
  CHECK(json.find("\"state\":\"unreachable\"") != std::string::npos);
  std::string fj = render_json("flows", flows);
  CHECK(fj.find("\"shards\":[{\"process\":\"capture\",\"shard\":0,\"flows_created\":4}]") !=
        std::string::npos);
}

TEST_CASE("console views") {
  v1::ControlReply r;
  r.set_ok(true);
  auto* c = r.add_counters();
  c->set_name("exporter_sink_records_sent");
  c->set_value(5);
  (*c->mutable_labels())["stage"] = "exporter";
  (*c->mutable_labels())["process"] = "exporter dns.ipfix#0";
  (*c->mutable_labels())["channel"] = "dns.ipfix";
  (*c->mutable_labels())["instance"] = "0";
  (*c->mutable_labels())["sink"] = "ipfix:udp:127.0.0.1:4739";
  (*c->mutable_labels())["collector"] = "127.0.0.1:4739";
  auto* d = r.add_counters();
  d->set_name("exporter_records");
  d->set_value(6);
  *d->mutable_labels() = c->labels();
  d->mutable_labels()->erase("sink");
  d->mutable_labels()->erase("collector");
  std::string j = render_json("exporters", r);
  CHECK(j == "{\"processes\":[],\"publisher\":[],\"exporters\":[{\"process\":\"exporter "
             "dns.ipfix#0\",\"channel\":\"dns.ipfix\",\"instance\":0,\"records\":6,\"sinks\":[{"
             "\"sink\":\"ipfix:udp:127.0.0.1:4739\",\"collector\":\"127.0.0.1:4739\","
             "\"records_sent\":5}]}]}");
  std::string t = render_text("exporters", r);
  CHECK(t.find("records_sent = 5") != std::string::npos);

  v1::ControlReply bad;
  bad.set_ok(false);
  bad.set_error("unauthorized");
  CHECK(render_json("actors", bad) == "{\"ok\":false,\"error\":\"unauthorized\"}");
  CHECK(json_string("a\"b\\\n\x01") == "\"a\\\"b\\\\\\n\\u0001\"");

  v1::ControlRequest::Kind k;
  CHECK(console_command_kind("flows", k));
  CHECK(k == v1::ControlRequest::FLOWS);
  CHECK_FALSE(console_command_kind("flow", k));
}
