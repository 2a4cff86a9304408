// SPDX-License-Identifier: Apache-2.0
#include "control/metric_families.hpp"

#include <cctype>
#include <optional>

namespace metaprobe {

namespace {

struct entry {
  std::string_view counter; // Counter.name
  std::string_view help;
  std::string_view family = {}; // when the name changes (units)
  double divisor = 1;
};

// Every counter the stages publish (stats_counters.hpp names them), by
// stage. Keep the wording short: what is counted, or what the level is.
constexpr entry entries[] = {
  {"appliance_exporter_restarts", "exporter processes the appliance restarted"},
  {"appliance_children_alive", "child processes of the appliance running (capture, exporters)"},

  {"capture_batches", "packet batches the capture read"},
  {"capture_packets", "packets the capture passed to the classifier shards"},
  {"capture_dropped_packets", "packets dropped on live input because the pipeline was full"},
  {"capture_backpressure_waits", "times the capture waited for a full pipeline (file input)"},
  {"capture_source_packets", "frames read from the input"},
  {"capture_source_bytes", "captured bytes of the frames read"},
  {"capture_source_wire_bytes", "original (on the wire) bytes of the frames read"},
  {"capture_source_truncated_records", "input files that ended inside a record"},
  {"capture_source_read_errors", "errors reading the input"},
  {"capture_decap_depth_exceeded", "packets with tunnels nested deeper than are opened"},
  {"capture_decap_gtpu_control", "GTP-U messages other than T-PDU (not opened)"},
  {"capture_decap_l2tp_control", "L2TP control messages (not opened)"},
  {"capture_decap_bad_inner", "UDP tunnel headers without a valid inner packet"},
  {"capture_kernel_received", "packets the kernel received for the capture (live input)"},
  {"capture_kernel_dropped", "packets the kernel dropped for lack of buffer space (live input)"},
  {"capture_kernel_if_dropped", "packets the interface or its driver dropped (live input)"},
  {"capture_kernel_ring_freezes", "times the next AF_PACKET ring block was still in use"},

  {"classifier_messages_in", "packet batches a classifier shard handled"},
  {"classifier_messages_out", "batches a classifier shard sent on"},
  {"classifier_packets", "packets given to a classifier shard"},
  {"classifier_non_tcp_udp", "decoded packets of IP protocols other than TCP and UDP"},
  {"classifier_fragments", "IP fragments given to reassembly"},
  {"classifier_reassembled", "IP datagrams completed by reassembly"},
  {"classifier_reassembled_bad", "reassembled IP datagrams that did not decode"},
  {"classifier_reassembled_tunnels", "reassembled IP datagrams that opened a tunnel"},
  {"classifier_flows_active", "flows in a classifier shard's flow table"},
  {"classifier_flows_confirmed", "flows confirmed by a completed handshake or traffic both ways"},
  {"classifier_memory_lean_flows", "flows a shard created lean because memory was short"},
  {"classifier_memory_evictions", "flows a shard evicted to bring memory pressure down"},
  {"classifier_memory_evictions_confirmed", "confirmed flows a shard evicted for memory"},
  {"classifier_memory_chunk_refused", "new flows that took an evicted flow's slot instead of new memory"},
  {"classifier_memory_charged_bytes", "bytes a classifier shard holds charged to the memory budget"},
  {"classifier_ipreasm_refused", "IP fragments of new datagrams refused because memory was short"},
  {"classifier_flows_created", "flows a classifier shard created"},
  {"classifier_flows_reported_active", "summaries of flows still running (active timeout)"},
  {"classifier_evictions", "flows ended because the flow table was full"},
  {"classifier_table_full", "new flows that found the flow table full"},
  {"classifier_port_reuse", "closing flows ended early by a SYN on their ports"},
  {"classifier_detected_port", "flows whose protocol was detected by port"},
  {"classifier_detected_probe", "flows whose protocol was detected by a payload probe"},
  {"classifier_undetected", "flows that gave up protocol detection"},
  {"classifier_detected_midstream", "TCP flows detected on a piece after a gap"},
  {"classifier_probe_bytes", "TCP payload bytes held while probing for the protocol"},
  {"classifier_probe_overflow", "TCP flows that gave up probing at max_probe_bytes"},
  {"classifier_probe_gaps", "TCP flows that gave up probing: both starts lost to gaps"},
  {"classifier_parser_flows", "flows opened to a parser"},
  {"classifier_events", "stream events sent to the parsers"},
  {"classifier_bytes_zero_copy", "payload bytes passed to the parsers by reference",
   "classifier_zero_copy_bytes"},
  {"classifier_bytes_copied", "payload bytes copied into output batches",
   "classifier_copied_bytes"},
  {"classifier_frag_tally_collisions", "fragment tally slots reused before their datagram ended"},
  {"classifier_raw_packets", "raw packet items emitted (raw metadata)"},
  {"classifier_raw_bytes", "IP bytes carried by the raw packet items"},
  {"classifier_raw_truncated", "raw packet items cut to raw_max_bytes"},
  {"classifier_raw_dropped", "packets past raw_max_packets of their flow (no raw item)"},
  {"classifier_tcp_in_order", "TCP segments delivered on arrival"},
  {"classifier_tcp_out_of_order", "TCP segments buffered out of order"},
  {"classifier_tcp_retransmitted", "TCP payload segments whose whole range was seen before"},
  {"classifier_tcp_gaps", "TCP holes declared lost"},
  {"classifier_tcp_bytes_gapped", "bytes in the TCP holes declared lost",
   "classifier_tcp_gapped_bytes"},
  {"classifier_tcp_limit_drops", "TCP segments that hit an out-of-order limit (a gap)"},
  {"classifier_tcp_keepalives", "TCP keep-alive probes (never delivered)"},
  {"classifier_ipreasm_timed_out", "incomplete IP datagrams expired"},
  {"classifier_ipreasm_duplicates", "repeated IP fragments that added nothing"},
  {"classifier_ipreasm_overlaps", "IP datagrams abandoned for conflicting overlaps"},
  {"classifier_ipreasm_invalid", "IP fragments rejected as invalid"},
  {"classifier_ipreasm_limit_datagrams", "IP datagrams evicted at max_datagrams"},
  {"classifier_ipreasm_limit_fragments", "IP datagrams abandoned at max_fragments"},
  {"classifier_ipreasm_limit_bytes", "IP datagrams evicted or abandoned at max_buffered_bytes",
   "classifier_ipreasm_byte_limit_datagrams"},
  {"classifier_ipreasm_pending", "incomplete IP datagrams held for their fragments"},

  {"parser_messages", "protocol messages parsed"},
  {"parser_records", "records the parsers emitted"},
  {"parser_violations", "flows detached from a parser for a protocol violation"},
  {"parser_gaps", "stream gaps reported to the parsers"},
  {"parser_limit_hits", "parser limits reached (line length, header count, buffered bytes)"},
  {"parser_truncated_fields", "field values cut at their maximum length"},
  {"parser_bytes_scanned", "bytes read by the parsers' searches for message boundaries",
   "parser_scanned_bytes"},
  {"parser_flows_opened", "flows given to a parser"},
  {"parser_flows_detached", "flows detached after a parser reported a violation"},
  {"parser_redetected", "hand-overs whose new protocol was found"},
  {"parser_redetect_overflow", "hand-overs given up: max_redetect_bytes held, no probe accepted"},
  {"parser_redetect_gaps", "hand-overs given up: both directions' starts lost"},
  {"parser_redetect_ended", "hand-overs whose flow ended before a probe accepted"},
  {"parser_redetect_bytes", "bytes held for re-detection after a hand-over"},
  {"parser_layers_exceeded", "hand-overs past max_layers (the flow is left)"},
  {"parser_memory_left", "flows whose parsers were freed for holding more than memory allows"},
  {"parser_memory_charged_bytes", "bytes a parser host holds charged to the memory budget"},
  {"parser_key_derivations", "QUIC Initial key derivations (key cache misses)"},
  {"parser_chain_flows", "flows by protocol chain (label chain, e.g. http>tls)"},
  {"parser_active_flows", "flows open in a parser"},
  {"parser_messages_in", "stream batches a parser handled"},
  {"parser_messages_out", "record batches a parser sent"},
  // HTTP (docs/protocols.md)
  {"parser_requests_extension_method", "HTTP requests with a method RFC 9110 does not define"},
  {"parser_h2_prefaces", "HTTP/2 prior-knowledge prefaces (parsing stops)"},
  {"parser_requests_no_version", "HTTP/0.9 requests without a version"},
  {"parser_requests_bad_version", "HTTP requests whose version is no HTTP/x.y"},
  {"parser_requests_empty_target", "HTTP requests with a version but no target"},
  {"parser_responses_no_status_line", "HTTP responses without a status line"},
  {"parser_upgrades", "HTTP 101 Switching Protocols responses"},
  {"parser_websocket_upgrades", "HTTP upgrades to WebSocket"},
  {"parser_websocket_sip", "WebSockets with the sip subprotocol"},
  {"parser_websocket_not_sip", "WebSockets without the sip subprotocol (ignored)"},
  {"parser_upgrade_hold_overflow", "HTTP upgrades whose held client bytes passed max_buffered"},
  {"parser_ws_frames", "WebSocket frames read"},
  {"parser_ws_messages", "WebSocket data messages delivered"},
  {"parser_ws_control_frames", "WebSocket ping, pong and close frames"},
  {"parser_ws_oversize", "WebSocket messages over max_buffered (skipped)"},
  {"parser_ws_compressed", "WebSocket messages with RSV1 set (permessage-deflate, skipped)"},
  {"parser_ws_damaged", "WebSocket messages that lost bytes to a capture gap (skipped)"},
  {"parser_ws_protocol_errors", "WebSocket framing violations (that direction stops)"},
  {"parser_ws_gap_failures", "WebSocket gaps outside a payload (that direction stops)"},

  {"correlator_records", "records the correlator passed on"},
  {"correlator_fullflow_records", "full-flow records the correlator built"},
  {"correlator_fullflow_skipped", "flow directions not built as full-flow records (no fullflow channel)"},

  {"memory_limit_bytes", "the capture's memory budget"},
  {"memory_used_bytes", "bytes charged to the memory budget"},
  {"memory_peak_bytes", "most bytes charged to the memory budget at once"},
  {"memory_pressure", "memory pressure level: 0 normal, 1 tight, 2 critical, 3 full"},
  {"memory_heap_over_bytes", "allocator resident bytes beyond those at start"},
  {"memory_heap_over_peak_bytes", "most allocator resident bytes beyond those at start"},
  {"memory_heap_allocated_bytes", "bytes the allocator has handed out"},
  {"memory_heap_resident_bytes", "bytes of resident allocator pages"},
  {"memory_lean_flows", "flows created lean because memory was short"},
  {"memory_chunk_refused", "new flows that took an evicted flow's slot instead of new memory"},
  {"memory_evicted", "flows evicted to bring memory pressure down"},
  {"memory_evicted_confirmed", "confirmed flows evicted because memory was full"},
  {"memory_parser_left", "flows whose parsers were freed for holding more than memory allows"},
  {"memory_frag_refused", "IP datagrams not taken into reassembly because memory was short"},
  {"memory_heap_purges", "times the allocator was asked to return freed pages"},
  {"process_peak_rss_bytes", "peak resident memory of the process"},
  {"correlator_raw_records", "raw metadata records the correlator built"},
  {"correlator_logins_attached", "records given a subscriber LOGIN"},
  {"correlator_expectations_learned", "expected data connections learned (FTP)"},
  {"correlator_expectations_matched", "flows that took their control connection's SESSION_ID"},
  {"correlator_expectations_expired", "expectations removed unmatched (too old or replaced)"},
  {"correlator_expectations_dropped", "expectations or bindings not kept: table full"},
  {"correlator_messages_in", "batches the correlator handled"},
  {"correlator_messages_out", "batches the correlator sent"},

  {"publisher_messages_in", "record batches the publisher handled"},
  {"publisher_batches_sent", "record batches sent on a channel"},
  {"publisher_records_sent", "records sent on a channel"},
  {"publisher_batches_dropped", "record batches dropped: the channel was full"},
  {"publisher_handshakes_denied", "CURVE handshakes refused on the record channels (unknown client key)"},
  {"publisher_records_dropped", "records dropped: the channel was full"},
  {"publisher_bytes_sent", "bytes sent on a channel", "publisher_sent_bytes"},
  {"publisher_exporters_connected", "exporter processes connected to a channel"},

  {"exporter_batches", "record batches an exporter received"},
  {"exporter_records", "records an exporter received"},
  {"exporter_bad_messages", "channel messages that were no record batch"},
  {"exporter_sequence_gaps", "batches missing from the publisher's sequence"},
  {"exporter_upstream_dropped", "records the publisher reported dropped"},
  {"exporter_foreign_batches", "record batches from another capture than the exporter's own, dropped"},
  {"exporter_foreign_records", "records in batches from another capture, dropped"},
  {"exporter_restarts", "times this exporter instance was restarted"},
  {"exporter_lost_in_process", "records lost inside crashed incarnations of this exporter"},
  {"exporter_lost_in_transit", "records lost between the publisher and this exporter"},
  {"exporter_send_cycles", "sending cycles (tick periods) ended"},
  {"exporter_send_cycle_overruns", "sending cycles whose busy time exceeded the period"},
  {"exporter_max_send_cycle_us", "longest busy time of a sending cycle",
   "exporter_send_cycle_max_seconds", 1e6},
  {"exporter_stat_lines", "lines written to the stat log"},
  {"exporter_alert_lines", "lines written to the alert log"},

  {"exporter_sink_records_in", "records of the exported kinds a sink received"},
  {"exporter_sink_records_sent", "records a sink sent or wrote"},
  {"exporter_sink_records_dropped", "records a sink could not deliver"},
  {"exporter_sink_records_too_large", "records larger than an IPFIX message (dropped)"},
  {"exporter_sink_messages_sent", "IPFIX messages sent or written"},
  {"exporter_sink_octets_sent", "IPFIX bytes sent or written", "exporter_sink_sent_bytes"},
  {"exporter_sink_send_errors", "IPFIX send errors"},
  {"exporter_sink_template_sends", "times the IPFIX templates were sent"},
  {"exporter_sink_strings_truncated", "strings cut at ipfix_max_string"},
  {"exporter_sink_invalid_utf8", "strings with invalid UTF-8 (repaired)"},
  {"exporter_sink_bad_address", "addresses that could not be encoded"},
  {"exporter_sink_write_failures", "IPFIX file writes that failed (disk full, I/O error)"},
  {"exporter_sink_truncations", "IPFIX files cut back to their last whole message"},
  {"exporter_sink_held_records", "records a sink holds that have not left the process"},
  {"exporter_sink_connects", "connections made to a TCP collector"},
  {"exporter_sink_connect_failures", "failed connection attempts to a TCP collector"},
  {"exporter_sink_disconnects", "connections to a TCP collector lost"},
  {"exporter_sink_buffered_records", "records buffered for a TCP collector"},
  {"exporter_sink_unacked_records", "records written to a TCP connection, not yet acknowledged"},
  {"exporter_sink_records_lost_in_flight", "records lost with a TCP connection"},
  {"exporter_sink_connected", "1 while the TCP collector is connected, else 0"},
  {"exporter_sink_records_written", "records written to text files"},
  {"exporter_sink_bytes_written", "bytes written to text files", "exporter_sink_written_bytes"},
  {"exporter_sink_files_finished", "text files finished (renamed to their final name)"},
  {"exporter_sink_write_errors", "text file write errors"},
};

// Counters whose names are made of a fixed part and a value (a decode
// result, a tunnel kind...): the HELP text ends in that value.
struct pattern {
  std::string_view prefix;
  std::string_view help;
};

constexpr pattern patterns[] = {
  {"capture_decode_", "packets the capture decoded, by result: "},
  {"capture_decap_", "tunnel layers the capture opened, by kind: "},
  {"classifier_decode_", "packets a classifier shard decoded, by result: "},
  {"classifier_decap_", "tunnel layers opened in reassembled datagrams, by kind: "},
  {"classifier_flows_ended_", "flows ended, by reason: "},
  {"parser_handover_", "streams handed over to another protocol, by kind: "},
};

const entry* find_entry(std::string_view counter) {
  for (const auto& e : entries)
    if (e.counter == counter)
      return &e;
  return nullptr;
}

metric_family from_entry(const entry& e) {
  return {std::string(e.family.empty() ? e.counter : e.family), std::string(e.help), e.divisor};
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// "0_packets" -> "0" (the digits before the first '_'), else "".
std::string_view leading_number(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
    ++i;
  return i > 0 && i < s.size() && s[i] == '_' ? s.substr(0, i) : std::string_view{};
}

// The family of a counter the table knows (directly, by pattern, or as a
// per-source or inner-protocol variant of one), else nullopt.
std::optional<metric_family> known_family(std::string_view name) {
  if (const entry* e = find_entry(name))
    return from_entry(*e);
  // capture_<n>_<counter>: one source of several (capture_<counter> sums them)
  if (starts_with(name, "capture_")) {
    auto rest = name.substr(8);
    auto n = leading_number(rest);
    if (!n.empty()) {
      auto f = known_family(std::string("capture_").append(rest.substr(n.size() + 1)));
      if (!f)
        return std::nullopt;
      f->name = "capture_" + std::string(n) + "_" + f->name.substr(8);
      f->help += " (input source " + std::string(n) + ")";
      return f;
    }
  }
  // parser_inner_<protocol>_<counter>: a protocol inside a hand-over
  if (starts_with(name, "parser_inner_")) {
    auto rest = name.substr(13);
    auto us = rest.find('_');
    if (us == std::string_view::npos)
      return std::nullopt;
    auto f = known_family(std::string("parser_").append(rest.substr(us + 1)));
    if (!f)
      return std::nullopt;
    f->name = "parser_inner_" + std::string(rest.substr(0, us + 1)) + f->name.substr(7);
    f->help += " (" + std::string(rest.substr(0, us)) + " inside a hand-over)";
    return f;
  }
  for (const auto& p : patterns)
    if (starts_with(name, p.prefix) && name.size() > p.prefix.size())
      return metric_family{std::string(name),
                           std::string(p.help) + std::string(name.substr(p.prefix.size()))};
  return std::nullopt;
}

} // namespace

metric_family family_of_counter(std::string_view name, std::string_view stage) {
  if (auto f = known_family(name))
    return *f;
  return {std::string(name), std::string(stage) + " counter " + std::string(name)};
}

} // namespace metaprobe
