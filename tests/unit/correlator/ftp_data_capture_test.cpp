// SPDX-License-Identifier: Apache-2.0
// FTP data connections of a real capture share the control SESSION_ID: the
// stage logic of metaprobe-capture (classifier_core, parser_host,
// correlator) run in one thread, one packet at a time. The summaries of
// flows without a parser are relayed through the FTP parser stage
// (protocol_entry::relays_unparsed_flows), so they reach the correlator
// after the PASV/PORT records, as in the actor pipeline.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "capture/pcap_source.hpp"
#include "classifier/classifier_core.hpp"
#include "correlator/correlator.hpp"
#include "parsers/registry.hpp"
#include "parsers/stage/parser_host.hpp"

using namespace metaprobe;

namespace {

struct sequential_pipeline {
  classifier_core classifier;
  std::map<size_t, std::unique_ptr<parser_host>> parsers; // by app_protocol
  correlator corr{correlator_options{}};
  classifier_output out;
  export_batches exported;

  sequential_pipeline()
    : classifier(classifier_options{}, 0, session_id_generator(0, 42)) {}

  void drain() {
    for (size_t p = 0; p < out.per_proto.size(); ++p) {
      auto& sb = out.per_proto[p];
      if (sb.empty())
        continue;
      auto& host = parsers[p];
      if (!host) {
        const protocol_entry* e = find_protocol(static_cast<app_protocol>(p));
        REQUIRE(e != nullptr);
        host = std::make_unique<parser_host>(*e, parser_options{});
      }
      record_batch rb;
      host->process(sb, rb);
      corr.process(std::move(rb), exported);
    }
    corr.process(std::move(out.flows.summaries), exported);
    out.clear();
  }

  void run(const std::string& path) {
    std::string error;
    auto src = pcap_source::open_file(path, error);
    REQUIRE_MESSAGE(src, error);
    uint64_t last = 0;
    for (;;) {
      auto batch = std::make_shared<packet_batch>();
      if (src->next_batch(*batch, 1) <= 0 && src->eof())
        break;
      if (batch->packets.empty())
        continue;
      last = batch->packets.back().ts_ns;
      classifier.process(batch, out);
      drain();
    }
    classifier.flush_all(last, out);
    drain();
  }
};

std::string corpus(const char* name) {
  return std::string(METAPROBE_CORPUS) + "/" + name;
}

} // namespace

TEST_CASE("ftp-session-ndpi.pcap: both PASV data connections carry the control SESSION_ID") {
  const std::string pcap = corpus("ftp-session-ndpi.pcap");
  if (!std::filesystem::exists(pcap)) {
    MESSAGE("corpus missing, skipped: " << pcap);
    return;
  }
  sequential_pipeline p;
  p.run(pcap);

  // The control flow's id, from its FTP records (login, two 227 replies).
  std::set<uint64_t> control;
  size_t ftp_records = 0;
  for (const auto& r : p.exported.groups[static_cast<int>(sink_group::meta)]) {
    if (!r.has_ftp())
      continue;
    ++ftp_records;
    control.insert(r.ftp().meta().session_id());
  }
  CHECK(ftp_records == 3);
  REQUIRE(control.size() == 1);
  const uint64_t control_id = *control.begin();

  // Fullflow: the control connection (port 21) and the data connections to
  // the announced ports 25685 (LIST) and 24523 (RETR 1MB.zip).
  std::map<uint32_t, std::set<uint64_t>> by_server_port;
  for (const auto& r : p.exported.groups[static_cast<int>(sink_group::fullflow)]) {
    const auto& m = r.fullflow().meta();
    // The client's ports (50694..50696) are above every server port here.
    const uint32_t server_port = std::min(m.port_source(), m.port_destination());
    by_server_port[server_port].insert(m.session_id());
  }
  REQUIRE(by_server_port.size() == 3);
  CHECK(by_server_port[21] == std::set<uint64_t>{control_id});
  CHECK(by_server_port[25685] == std::set<uint64_t>{control_id});
  CHECK(by_server_port[24523] == std::set<uint64_t>{control_id});

  const auto& x = p.corr.expectations().counters();
  CHECK(x.learned == 2);
  CHECK(x.matched == 2);
  CHECK(x.dropped == 0);
  CHECK(p.corr.expectations().expectations() == 0);
  CHECK(p.corr.expectations().bindings() == 0);
}

TEST_CASE("ftp-starttls.pcap: an announced connection that never comes matches nothing") {
  const std::string pcap = corpus("ftp-starttls.pcap");
  if (!std::filesystem::exists(pcap)) {
    MESSAGE("corpus missing, skipped: " << pcap);
    return;
  }
  sequential_pipeline p;
  p.run(pcap);
  const auto& x = p.corr.expectations().counters();
  CHECK(x.learned == 1); // 227 (10,220,50,76,64,155) in clear text after TLS
  CHECK(x.matched == 0);
  std::set<uint64_t> ids;
  for (const auto& r : p.exported.groups[static_cast<int>(sink_group::fullflow)])
    ids.insert(r.fullflow().meta().session_id());
  CHECK(ids.size() == 1); // the control connection only
}
