// SPDX-License-Identifier: Apache-2.0
#pragma once
// The contract of the control endpoints and /metrics addresses: which
// process listens where. The appliance, metaprobe-capture, every
// metaprobe-exporter instance and metaprobe-console include this header;
// nothing else derives a control endpoint or a metrics port.
//
// One base for all processes of one appliance (`control_listen`):
//   auto (default)      -> ipc://<run_dir>/control
//   off or empty        -> no control endpoint
//   ipc://PATH          -> appliance PATH, capture PATH-capture,
//                          exporter PATH-exporter-<group>-<sink>-<instance>
//   tcp://HOST:PORT     -> PORT + offset(process)
// `metrics_listen=HOST:PORT` (empty: off) -> HOST:(PORT + offset(process)).
// Offsets: appliance 0, capture 1, exporter 2 + 64 * channel index +
// instance (channel index 0..7 from core/channels.hpp, instance 0..63).
//
// Each message on a control socket is one serialised
// metaprobe.v1.ControlRequest (client) or ControlReply (server).

#include <optional>
#include <string>

#include "core/channels.hpp"
#include "core/config.hpp"

namespace metaprobe {

enum class process_role : uint8_t { appliance, capture, exporter };

struct process_id {
  process_role role = process_role::appliance;
  channel ch;          // exporter only
  int instance = 0;    // exporter only

  static process_id appliance() { return {process_role::appliance, {}, 0}; }
  static process_id capture() { return {process_role::capture, {}, 0}; }
  static process_id exporter(const channel& c, int i) { return {process_role::exporter, c, i}; }

  // "metaprobe", "capture", "exporter clickstream.ipfix#0" (the appliance's
  // names of its children in logs).
  std::string name() const;
  // "metaprobe", "metaprobe-capture", "metaprobe-exporter"
  std::string binary() const;
  // Port offset (see above).
  int offset() const;
};

// "appliance", "capture" or "exporter:GROUP.KIND:N" (N 0..63), as
// metaprobe-console --process takes it; nullopt for anything else.
std::optional<process_id> parse_process_id(const std::string& text);

// The control base of a configuration: "" when off, else an ipc:// or
// tcp:// endpoint ("auto" resolved against run_dir).
std::string control_base(const config& cfg);

// The endpoint `who` binds given the base; "" when the base is "". Throws
// config_error when a tcp port would exceed 65535.
std::string control_endpoint(const std::string& base, const process_id& who);

// The metrics address of `who` (nullopt when metrics_listen is empty).
// Throws config_error when the port would exceed 65535.
std::optional<endpoint> metrics_endpoint(const config& cfg, const process_id& who);

} // namespace metaprobe
