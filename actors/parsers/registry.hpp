// SPDX-License-Identifier: Apache-2.0
#pragma once
// The one list of protocols metaprobe parses. Adding a protocol means adding
// actors/parsers/<proto>/ and one line in registry.cpp.

#include <cstdint>
#include <memory>
#include <vector>

#include "parsers/parser.hpp"

namespace metaprobe {

// Limits and switches every parser reads (from the configuration).
class memory_budget;

struct parser_options {
  bool http_parse_reply = false;   // emit http_reply records
  bool ssl_parse_reply = false;    // emit ssl_reply records
  size_t max_line = 8192;          // longest header/command line kept
  size_t max_headers = 128;        // headers per message
  size_t max_buffered = 65536;     // bytes a parser buffers per direction
  size_t max_field = 4096;         // longest exported field value (truncated on a UTF-8 boundary)
  size_t max_records_per_flow = 10000;
  // Shared memory budget of the process (core/memory_budget.hpp; nullptr:
  // nothing charged); must outlive the parser hosts.
  memory_budget* budget = nullptr;
};

struct protocol_entry {
  app_protocol id = app_protocol::unknown;
  const char* name = "";                 // "http", "dns", ...
  std::vector<uint16_t> tcp_ports;       // well-known server ports
  std::vector<uint16_t> udp_ports;
  // Payload probe on the first bytes a side sent; nullptr = ports only.
  bool (*probe)(const uint8_t* data, size_t len, direction dir) = nullptr;
  // Factories; nullptr when the protocol has no such transport.
  std::unique_ptr<stream_parser> (*make_stream)(const parser_options&, parser_counters&) = nullptr;
  std::unique_ptr<datagram_parser> (*make_datagram)(const parser_options&, parser_counters&) = nullptr;
  // The protocol announces other flows (FTP data connections): the
  // summaries of TCP flows that no parser claimed travel through this
  // protocol's parser stage, so they reach the correlator after every record
  // the parser produced before them (the correlator matches the flows to
  // announcements). Only one protocol may set it; the first one wins.
  bool relays_unparsed_flows = false;
  // Names of the protocol's parser_counters::extra slots, index for index
  // (at most parser_counters::max_extra), reported by the parser stage.
  std::vector<const char*> extra_counters;
};

// All registered protocols, in probe order.
const std::vector<protocol_entry>& protocol_registry();

// Entry by id; nullptr if unknown.
const protocol_entry* find_protocol(app_protocol id);

} // namespace metaprobe
