// SPDX-License-Identifier: Apache-2.0
#pragma once
// The correlator's logic: turns parser records and flow summaries into
// export records. It fills every record's FlowMeta from the flow (addresses
// and ports oriented by who sent the message, SESSION_ID, L2 context),
// attaches the subscriber LOGIN, and builds the fullflow records (one per
// direction that carried packets) from flow summaries, with the host the
// flow's parser found.
//
// Data connections that a control flow announced (FTP PORT/EPRT/PASV/EPSV:
// parsed_record::expect) share the control flow's SESSION_ID: the
// correlator learns them from the records into an expectation_table
// (correlator/expectations.hpp: matching rules, expiry, cap) and consults
// it whenever it fills a FlowMeta. Records and flow summaries reach the
// correlator on different paths (classifier -> parser -> correlator, and
// classifier -> correlator for flows without a parser), so a data flow
// whose first record or summary arrives before the announcing record keeps
// its own SESSION_ID (see docs/limits.md); nothing is held back to wait.
//
// Raw metadata: each raw_packet of a flow_batch becomes one v1::Raw record
// (template `raw`, group meta). FlowMeta as for every record (addresses and
// ports oriented by the packet's direction, SESSION_ID, LOGIN, L2 of the
// flow's first packet), TIME_STAMP the packet's capture time, DIR_DATA the
// packet's direction in the flow (0 client->server, 1 server->client; the
// client is the TCP SYN sender, else the sender of the first packet),
// FLW_DIR 0 subs->inet / 1 inet->subs: with a subscriber map, the side whose
// address has a login is the subscriber (source first, then destination);
// without one, or when neither side has a login, the flow's client is taken
// for the subscriber (FLW_DIR = DIR_DATA). VDPI_PROTO is metaprobe's DPI
// protocol code (docs/protocols.md), META_PROTO the seeds' code
// (core/raw_meta.hpp), RAW_DATA the packet's first bytes from its IP header.
//
// Threading: one actor. No I/O.

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/channels.hpp"
#include "core/stream.hpp"
#include "correlator/expectations.hpp"
#include "metaprobe/v1/records.pb.h"

namespace metaprobe {

class subscriber_map;
class subscriber_source;

struct correlator_options {
  uint32_t bridge_channel_num = 0;
  const subscriber_map* subscribers = nullptr; // may be null
  expectation_options expectations;
  // When set, its map replaces `subscribers` (checked once per batch, so a
  // SIGHUP reload takes effect from the next batch on).
  std::shared_ptr<subscriber_source> subscriber_updates;
  // Build fullflow records from flow summaries; false when no channel of
  // the fullflow group is active (the summaries then only end their
  // flows' expectations; counted in fullflow_skipped).
  bool fullflow = true;
};

// Export records sorted by sink group, ready for the publisher.
struct export_batches {
  std::array<std::vector<v1::Record>, sink_group_count> groups;
  void clear() {
    for (auto& g : groups)
      g.clear();
  }
  size_t size() const {
    size_t n = 0;
    for (auto& g : groups)
      n += g.size();
    return n;
  }
};

struct correlator_counters {
  uint64_t records = 0;
  uint64_t fullflow_records = 0;
  uint64_t fullflow_skipped = 0;  // summaries without a fullflow channel to go to
  uint64_t logins_attached = 0;
  uint64_t raw_records = 0;
};

class correlator {
public:
  explicit correlator(correlator_options opts)
    : opts_(opts), expectations_(opts.expectations) {}

  void process(record_batch&& in, export_batches& out);
  void process(std::vector<flow_summary>&& closed, export_batches& out);
  // A classifier shard's batch: summaries and raw packets.
  void process(flow_batch&& in, export_batches& out);

  const correlator_counters& counters() const { return counters_; }
  const expectation_table& expectations() const { return expectations_; }

  // Exposed for tests: FlowMeta of a message sent in direction `dir`.
  // SESSION_ID: the flow's own, or that of the control flow that announced
  // it (expectations).
  void fill_meta(const flow_info& info, direction dir, uint64_t ts_ns,
                 v1::FlowMeta& meta);

private:
  void add_summary(flow_summary& s, export_batches& out);
  void learn(const flow_info& info, const parsed_record& rec, uint64_t session_id);
  void add_raw(const flow_batch& in, const raw_packet& r, export_batches& out);
  // Takes a replaced subscriber map from opts_.subscriber_updates.
  void refresh_subscribers();

  correlator_options opts_;
  correlator_counters counters_;
  expectation_table expectations_;
  std::shared_ptr<const subscriber_map> subscribers_held_; // keeps opts_.subscribers alive
  uint64_t subscribers_version_ = ~uint64_t{0};
};

// 3 bytes per MPLS label stack entry (label, TC, bottom-of-stack), outermost
// first, as in IPFIX mplsLabelStackSection.
std::string encode_mpls_labels(const l2_context& l2);

} // namespace metaprobe
