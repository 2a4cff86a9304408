// SPDX-License-Identifier: Apache-2.0
#pragma once
// FTP control-channel parser (RFC 959, 2228, 2428, 1639, 7151): login
// attempts and data-connection set-ups -> Ftp records (meta group, template
// "ftp"), oriented from the client (the side that sends commands) to the
// server, stamped with the time of the server's reply.
//
// When a record is emitted (the seeds define the fields, not the events):
//   - login: the final reply (2xx..5xx) to PASS, or to USER when it needs no
//     password (230) or refuses (4xx/5xx); 331/332 wait for PASS.
//   - data connection: the final reply to PORT, EPRT, LPRT (MODE 0, active)
//     or PASV, EPSV, LPSV (MODE 1, passive).
// Fields: SERVER_NAME = the argument of HOST (RFC 7151) when the client sent
// one, else the text of the server's 220 greeting (first line, after the
// code; tshark ftp.response.arg); USER / PASSWORD = the arguments of the
// session's latest USER / PASS (a new USER clears the password); MODE = the
// record's data-connection mode, for a login record the session's last
// accepted mode (0 = active, FTP's default, before any); RESULT_CODE = the
// reply code (ftp.response.code). tests/integration/truth_ftp.py derives
// the expected records from tshark's per-message truth by these rules.
//
// Framing: lines end with LF (CR optional). Each direction takes a role from
// its first line (a reply "ddd" makes it the server, a command the client),
// so a capture that starts mid-session still parses. Replies answer the
// pending commands in order (a bounded queue; 1xx replies are preliminary,
// a multi-line reply "ddd-" ends at its "ddd " line and counts with its
// first line's text); a 220 with no command pending is the greeting.
//
// Data connections: the address of an accepted PORT/EPRT (active: the
// client listens there) or of a 227/229 reply (passive: the server listens;
// a 229 names only the port, the address is the control flow's server) is
// parsed (data_endpoint()) and travels with the data-connection record as
// parsed_record::expect, so that the correlator gives the data flow the
// control flow's SESSION_ID (correlator/expectations.hpp). A refused
// PORT/PASV, LPRT/LPSV (addresses not parsed) and an unparsable reply
// announce nothing.
//
// TLS (AUTH, RFC 4217): after an AUTH command, a side whose next line would
// start with a TLS record header skips TLS records (5-byte header +
// length); when a record boundary holds something else (the peers closed
// TLS and went back to clear text, as after CCC or a TLS shutdown; seen in
// ftp-starttls.pcap) the side parses lines again. A gap inside TLS leaves
// the side unparsed; both sides lost -> state done.
//
// Errors: while probing, a first line that is neither a command nor a reply
// (per the side's role) detaches the parser (violation); once confirmed such
// lines are skipped. A gap drops the partial line and the pending commands.
//
// Limits (parser_options): max_line (longer lines are cut, the kept prefix
// is used), max_field (exported values cut on a UTF-8 boundary, invalid
// UTF-8 -> U+FFFD), max_records_per_flow; `pending_cap` pending commands
// (the oldest is dropped). Hits count in limit_hits / truncated_fields.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "parsers/ftp/ftp_message.hpp"
#include "parsers/parser.hpp"
#include "parsers/registry.hpp"

namespace metaprobe {

// Registry entry: TCP port 21; probe = looks_like_ftp (a 220 greeting that
// names FTP) on other ports.
protocol_entry ftp_protocol_entry();

bool ftp_probe(const uint8_t* data, size_t len, direction dir);

std::unique_ptr<stream_parser> make_ftp_parser(const parser_options& opts,
                                               parser_counters& counters);

class ftp_parser final : public stream_parser {
public:
  static constexpr size_t pending_cap = 16;

  ftp_parser(const parser_options& opts, parser_counters& counters);

  void deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns, uint32_t seq,
               record_sink& out) override;
  size_t memory_bytes() const override;
  void gap(direction dir, size_t len) override;
  void finish(uint64_t ts_ns, record_sink& out) override;

  // The data-connection address of the latest accepted PORT/EPRT (active:
  // the client listens there) or 227/229 reply (passive: the server listens;
  // family 0 = the control connection's server address). valid = false
  // before any.
  const ftp::endpoint& data_endpoint() const { return data_endpoint_; }
  int data_endpoint_mode() const { return data_endpoint_mode_; }

private:
  enum class role : uint8_t { unknown, client, server };
  enum class phase : uint8_t { clear, tls, ignore };

  struct side {
    role r = role::unknown;
    phase ph = phase::clear;
    std::string line;
    bool line_cut = false;
    // TLS record skipping
    std::array<uint8_t, 5> tls_hdr{};
    size_t tls_hdr_len = 0;
    uint32_t tls_remaining = 0;
    // multi-line reply in progress
    uint32_t multi_code = 0;
    std::string multi_text; // its first line's text (at most max_line)
  };

  struct pending {
    ftp::command_id id = ftp::command_id::other;
    ftp::endpoint ep; // PORT/EPRT address
  };

  void process_clear(side& s, direction dir, const uint8_t*& data, size_t& len,
                     uint64_t ts_ns, record_sink& out);
  void process_tls(side& s, const uint8_t*& data, size_t& len);
  void on_line(side& s, direction dir, std::string_view line, uint64_t ts_ns,
               record_sink& out);
  void on_command(const ftp::command_line& c);
  void on_reply(direction dir, const ftp::reply_line& r, uint64_t ts_ns, record_sink& out);
  void emit(direction server_dir, uint32_t mode, uint32_t code, uint64_t ts_ns,
            record_sink& out, const expected_connection& expect = {});
  static expected_connection expectation_of(const ftp::endpoint& ep, uint8_t mode);
  void set_text(std::string& dst, std::string_view v);
  void violate();

  const parser_options opts_;
  parser_counters& counters_;
  side sides_[2];
  std::array<pending, pending_cap> pending_{};
  size_t pending_head_ = 0;
  size_t pending_size_ = 0;
  bool auth_sent_ = false;
  std::string server_name_;
  bool host_sent_ = false;
  bool greeting_seen_ = false;
  std::string user_;
  std::string password_;
  uint32_t mode_ = 0;
  ftp::endpoint data_endpoint_;
  int data_endpoint_mode_ = -1;
  size_t records_ = 0;
};

} // namespace metaprobe
