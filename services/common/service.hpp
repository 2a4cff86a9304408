// SPDX-License-Identifier: Apache-2.0
#pragma once
// What every metaprobe binary shares: command-line handling for
// `--config FILE --set key=value`, logging set-up, signal handling, and
// the one place that decides from a configuration which export channels
// are active and how many exporter instances each gets.

#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/channels.hpp"
#include "core/config.hpp"

namespace metaprobe::service {

inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_config = 2;

struct cli {
  std::string config_path;                 // empty: defaults + --set only
  std::vector<std::string> overrides;      // "key=value"
  std::map<std::string, std::string> options; // other --name value pairs
  std::vector<std::string> flags;          // --name without value
  std::vector<std::string> positional;
};

// Parses argv. `valued` names the options that take a value besides
// --config and --set. Throws config_error on a usage error.
cli parse_cli(int argc, char** argv, const std::vector<std::string>& valued);

// Loads the configuration named by the command line. Throws config_error.
config load_config(const cli& args);
// Throws config_error naming the accepted forms when `input` is not set
// (metaprobe and metaprobe-capture cannot run without it).
void require_input(const config& cfg);

// Names the process in every log line; level from `log_level`.
void setup_logging(const std::string& process, const config& cfg);

// SIGINT and SIGTERM set the returned flag (SIGPIPE is ignored). Then
// unblocks SIGINT, SIGTERM and SIGHUP: the appliance starts its children
// with them blocked, so one that arrived during start-up is handled now.
const std::atomic<bool>& install_stop_signals();
// SIGHUP sets this flag (reload request).
const std::atomic<bool>& hangup_flag();
// True once per SIGHUP received since the last call (clears the flag).
bool take_hangup();

// The export channels a configuration turns on, in a fixed order.
std::vector<channel> active_channels(const config& cfg);
// exporter_instances.<group> (text channels use exporter_instances.text).
int instances_of(const config& cfg, const channel& ch);

// The instance identity of one appliance start: a random non-zero 64-bit
// id, passed to its capture (which stamps it on every batch as
// producer_id) and its exporters (which drop batches of any other
// producer) as `--producer HEX`.
uint64_t new_instance_id();
std::string producer_text(uint64_t id);
// --producer HEX from the command line; 0 when absent. Throws config_error
// when it is not 1..16 hex digits or is 0.
uint64_t producer_option(const cli& args);

// Prints "metaprobe-x: <message>" to stderr (for errors before logging).
void fail(const std::string& process, const std::string& message);

} // namespace metaprobe::service
