// SPDX-License-Identifier: Apache-2.0
#pragma once
// FTP control-channel syntax (RFC 959, 2228, 2428, 1639, 7151): command
// lines, reply lines, and the data-connection addresses of PORT, EPRT, 227
// and 229. Pure functions on one line of text (no CR/LF); the session state
// machine lives in ftp_parser.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace metaprobe::ftp {

// Commands the parser acts on.
enum class command_id : uint8_t {
  other,
  user,
  pass,
  port,  // PORT, active
  eprt,  // EPRT (RFC 2428), active
  lprt,  // LPRT (RFC 1639), active
  pasv,  // PASV, passive
  epsv,  // EPSV (RFC 2428), passive
  lpsv,  // LPSV (RFC 1639), passive
  auth,  // AUTH (RFC 2228)
  host,  // HOST (RFC 7151)
};

struct command_line {
  std::string_view verb;  // as sent
  std::string_view arg;   // after the first space, trailing whitespace trimmed
  command_id id = command_id::other;
};

// A command: 3 or 4 letters (any case), then end of line or a space and
// the argument. Leading whitespace is tolerated (some clients send it).
bool parse_command(std::string_view line, command_line& out);

struct reply_line {
  uint32_t code = 0;      // 100..699
  bool more = false;      // "ddd-": first line of a multi-line reply
  std::string_view text;  // after the code and the separator
};

// 3DIGIT (first digit 1..6) followed by end of line, SP or '-'.
bool parse_reply(std::string_view line, reply_line& out);

// Whether the command sets up an active (0) or passive (1) data connection;
// -1 for other commands.
int data_mode(command_id id);

// A data-connection address: family 4 or 6 with the address, or 0 when only
// the port is known (EPSV 229: the address is the control connection's).
struct endpoint {
  uint8_t family = 0;
  std::array<uint8_t, 16> addr{}; // IPv4 in the first 4 bytes
  uint16_t port = 0;
  bool valid = false;
};

// "h1,h2,h3,h4,p1,p2" (PORT argument).
bool parse_port_arg(std::string_view arg, endpoint& out);
// "<d>af<d>address<d>port<d>" (EPRT argument; af 1 = IPv4, 2 = IPv6).
bool parse_eprt_arg(std::string_view arg, endpoint& out);
// 227 reply text: the first "h1,h2,h3,h4,p1,p2" in it (RFC 1123 §4.1.2.6:
// the numbers may appear anywhere, with or without parentheses).
bool parse_227(std::string_view text, endpoint& out);
// 229 reply text: "(<d><d><d>port<d>)".
bool parse_229(std::string_view text, endpoint& out);

// Numeric IPv6 text (RFC 4291 §2.2, with '::' and an embedded IPv4 tail).
bool parse_ipv6(std::string_view s, std::array<uint8_t, 16>& out);
// Dotted-quad IPv4 text (into the first 4 bytes).
bool parse_ipv4(std::string_view s, std::array<uint8_t, 16>& out);

// Whether `data` starts like an FTP server greeting ("220" SP/'-' and
// "FTP" somewhere in the line, any case).
bool looks_like_ftp(const uint8_t* data, size_t len);

} // namespace metaprobe::ftp
