// SPDX-License-Identifier: Apache-2.0
#pragma once
// The socket files of ipc:// ZeroMQ endpoints that a process binds (record
// channels, control endpoints): whether a path may be bound, and removing
// the file at the end only when it still is the one this process bound.
// Plain functions, no state; errors are returned as text.

#include <cstdint>
#include <string>

namespace metaprobe {

// The file of an ipc:// endpoint; empty for other transports, for Linux
// abstract sockets ("ipc://@name") and for the wildcard ("ipc://*"), which
// have no file of ours.
std::string ipc_file(const std::string& endpoint);

// Why binding `path` must not go ahead; empty when it may (nothing there,
// or a socket file nobody accepts on: left by a process that died, ZeroMQ
// replaces it). Otherwise "PATH exists and is not a socket" or "PATH is in
// use by a running process".
std::string ipc_path_problem(const std::string& path);

// Why binding a tcp://HOST:PORT endpoint must not go ahead: the port is
// bound already (a test bind, SO_REUSEADDR like ZeroMQ's, closed at once).
// Empty when it may, or when the address cannot be tried here (bind then
// reports it). HOST "*" is every address.
std::string tcp_port_problem(const std::string& endpoint);

// Identity of the socket file at `path` right after bind.
struct ipc_file_id {
  std::string path;   // empty: nothing to remove
  uint64_t dev = 0;
  uint64_t ino = 0;
};
ipc_file_id ipc_file_identity(const std::string& path);

// Unlinks the file if it still is the one `id` names (another process may
// have taken the path over since: its file is left alone). Clears `id`.
void ipc_file_remove(ipc_file_id& id);

} // namespace metaprobe
