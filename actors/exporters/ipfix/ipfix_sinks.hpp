// SPDX-License-Identifier: Apache-2.0
#pragma once
// IPFIX sinks of one sink group: UDP collectors, TCP collectors and an
// RFC 5655 file, each with its own encoder state (transport session), so
// sequence numbers and templates are per collector.
//
// Construction errors (bad endpoint, unresolvable host, unknown or
// unpermitted ipfix_dev, file that cannot be created, bad kind) throw
// std::runtime_error / std::invalid_argument with a clear message. After
// construction the sinks never throw (see sink.hpp).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/channels.hpp"
#include "exporters/sink.hpp"

namespace metaprobe {

class config;

struct ipfix_sink_config {
  std::string group;                       // "clickstream", "meta", "dns", "fullflow"
  std::vector<std::string> kinds;          // template kinds; empty: all kinds of `group`
  std::vector<std::string> udp_collectors; // "host:port", "[v6]:port"
  std::vector<std::string> tcp_collectors;
  std::string file_path;                   // RFC 5655 file; empty: none
  bool file_append = false;                // continue an existing file (restart after a crash)
  uint32_t file_mode = 0640;               // permissions of a created file (output_mode)
  uint32_t mtu = 1400;                     // largest UDP message (IPFIX octets), 256..65535
  uint32_t stream_message_size = 65535;    // largest message on TCP and in files
  uint32_t template_refresh_s = 20;        // UDP template resend period; 0: only at start
  uint32_t observation_domain_id = 0;
  std::string device;                      // ipfix_dev: SO_BINDTODEVICE; empty: routing table
  uint32_t max_string_length = 1024;       // octets per string / octetArray value
  uint32_t stats_interval_s = 60;          // exporter statistics record (UDP/TCP/file); 0: off
  // TCP: records buffered per collector while it is unreachable or does
  // not read, and octets buffered in any state; beyond either, records are
  // dropped and counted.
  size_t tcp_buffer_records = 100000;
  size_t tcp_buffer_bytes = 64u << 20;
  uint32_t tcp_reconnect_min_ms = 1000;    // backoff doubles up to the max
  uint32_t tcp_reconnect_max_ms = 30000;
  uint32_t tcp_flush_timeout_ms = 5000;    // flush() waits this long for the collector
  uint32_t udp_send_buffer = 4u << 20;     // SO_SNDBUF asked for
};

// Template kinds of a sink group: clickstream -> clickstream, http_reply,
// ssl_reply; meta -> sip, ftp, im, mail, raw; dns -> dns; fullflow ->
// fullflow. Empty for an unknown group.
std::vector<std::string> ipfix_kinds_for_group(std::string_view group);

// Bit mask of template kinds (bit = ipfix::template_kind) the config
// carries. Throws std::invalid_argument on an unknown kind or group.
uint32_t ipfix_kind_mask(const ipfix_sink_config& cfg);

// One sink per UDP collector, per TCP collector and for the file.
std::vector<std::unique_ptr<sink>> make_ipfix_sinks(const ipfix_sink_config& cfg);

// Sink config of `group` for exporter instance `instance` (0..N-1 of
// exporter_instances.<group>) from metaprobe.conf keys (ipfix_*_collectors,
// ipfix_*_file, ipfix_dev, ipfix_mtu, ipfix_udp_template_timer,
// ipfix_observation_domain, ipfix_tcp_buffer, ipfix_tcp_reconnect_max,
// ipfix_max_string, http_parse_reply / ssl_parse_reply for the clickstream
// reply templates). Each instance is its own exporter: observation domain
// ipfix_observation_domain + instance, and its own file: instance 0 writes
// ipfix_*_file itself, instance N > 0 that path with ".N" appended (several
// processes never write one file).
ipfix_sink_config ipfix_sink_config_from(const config& cfg, sink_group group, int instance);

} // namespace metaprobe
