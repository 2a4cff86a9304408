// SPDX-License-Identifier: Apache-2.0
// Every capture of the public corpus through the decoder and one classifier
// shard with the real protocol registry, checking invariants that must hold
// on any traffic: every decoded packet lands in exactly one flow summary,
// every flow ends exactly once, each TCP direction handed to a parser is a
// contiguous sequence of data and gaps, every event belongs to an opened flow.

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "capture/pcap_source.hpp"
#include "classifier/classifier_core.hpp"
#include "flow_checker.hpp"

using namespace metaprobe;
using metaprobe::test::checker;

TEST_CASE("classifier: corpus captures keep the flow invariants") {
  std::filesystem::path dir(METAPROBE_CORPUS);
  if (!std::filesystem::is_directory(dir)) {
    MESSAGE("corpus not found at " << dir << ": skipped");
    return;
  }
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    auto ext = e.path().extension().string();
    if (ext == ".pcap" || ext == ".pcapng")
      files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  REQUIRE(!files.empty());
  uint64_t http_opens = 0, total_packets = 0;
  for (const auto& path : files) {
    CAPTURE(path.filename().string());
    std::string err;
    auto src = pcap_source::open_file(path.string(), err);
    if (!src) {
      MESSAGE("cannot open " << path << ": " << err);
      continue;
    }
    classifier_options opts;
    opts.max_flows = 4096;
    opts.active_timeout_ns = 60'000'000'000ull; // exercise active reports
    classifier_core core(opts, 1, session_id_generator(1, 42));
    classifier_output out;
    checker chk;
    for (;;) {
      auto batch = std::make_shared<packet_batch>();
      auto n = src->next_batch(*batch, 256);
      if (n <= 0)
        break;
      core.process(batch, out);
      chk.take(out);
    }
    core.flush_all(core.now(), out);
    chk.take(out);
    const auto& c = core.counters();
    uint64_t ok = c.by_status[static_cast<size_t>(decode_status::ok)];
    CHECK(chk.errors == 0);
    // Each decoded non-fragment packet is in exactly one summary; fragments
    // are counted when their datagram completed.
    CHECK(chk.summary_packets - chk.summary_fragments == ok - c.fragments);
    CHECK(chk.summary_fragments <= c.fragments);
    CHECK(chk.final_summaries == c.flows_created);
    CHECK(chk.open_flows.empty());
    CHECK(core.active_flows() == 0);
    CHECK(c.packets == src->counters().packets);
    http_opens += chk.opens_http;
    total_packets += c.packets;
  }
  MESSAGE("corpus: " << files.size() << " files, " << total_packets << " packets, "
                     << http_opens << " http flows");
  if (find_protocol(app_protocol::http))
    CHECK(http_opens > 0);
}
