// SPDX-License-Identifier: Apache-2.0
#pragma once
// ZeroMQ CURVE keys of one appliance (config key `curve_keys`, a
// directory written by metaprobe-keygen) and putting them on sockets.
//
// The directory holds two key pairs as Z85 text (40 characters and a
// newline per file):
//   server.pub, server.key  the binders: publisher PUSH sockets and every
//                           control endpoint (CURVE servers)
//   client.pub, client.key  the connecters: exporter PULL sockets, the
//                           console, the appliance asking its children
// Secret files are 0600, the directory 0700 (a loader also takes 0640 or
// 0440, for a group that only the appliance's processes share, as in
// deploy/compose.yaml and a Kubernetes Secret with fsGroup; anything
// world-readable or group-writable is refused). A binding process admits only
// the client public key (zap_handler.hpp); a connecter checks the server's
// public key, so a peer without server.key cannot pose as the capture.
// Every process of one appliance reads the same directory; each only uses
// the files its role needs (missing ones are an error when needed).
//
// Plain functions; errors are returned as text, nothing throws except
// curve_keys_from_config() (config_error, for the mains).

#include <string>

#include "core/config.hpp"

namespace metaprobe {

struct curve_keys {
  std::string dir;            // empty: CURVE off
  std::string server_public;  // Z85, 40 characters; "" when the file is absent
  std::string server_secret;
  std::string client_public;
  std::string client_secret;
  bool on() const { return !dir.empty(); }
};

inline constexpr const char* curve_key_files[] = {"server.pub", "server.key", "client.pub",
                                                  "client.key"};

// Writes fresh server and client pairs into `dir` (created 0700 if
// missing; secret files 0600, public ones 0644, O_NOFOLLOW). Refuses
// (returns why) when any key file exists already, unless `force`.
std::string write_curve_keys(const std::string& dir, bool force);

// Reads whatever key files `dir` holds into `out` (out.dir = dir). Returns
// "" or why not: a file that exists but cannot be read or is not one Z85
// key, a secret file readable by others, a public key that does not match
// its secret key, or no key file at all.
std::string load_curve_keys(const std::string& dir, curve_keys& out);

// The keys `curve_keys` names, loaded; off (dir "") when the key is empty.
// Throws config_error naming the key on any problem.
curve_keys curve_keys_from_config(const config& cfg);

// Makes a not yet bound ZeroMQ socket (`socket` is its void* handle) a
// CURVE server with server.key. Returns "" or why not.
std::string make_curve_server(void* socket, const curve_keys& keys);
// Makes a not yet connected socket a CURVE client of server.pub with the
// client pair. Returns "" or why not.
std::string make_curve_client(void* socket, const curve_keys& keys);

} // namespace metaprobe
