// SPDX-License-Identifier: Apache-2.0
#pragma once
// IPFIX collector loop of metaprobe-receiver: listens on UDP or TCP (any
// number of connections) or reads an RFC 5655 file, decodes with
// ipfix_decoder and hands each record to a callback.
//
// Transport sessions: one per UDP peer address, one per TCP connection,
// one for the file. The decoder keeps a report per session and observation
// domain (decoder().domains()); a closed TCP connection's templates are
// forgotten, its report stays. Threading: run() on one thread; callbacks
// are called from it. Errors: the constructor throws std::runtime_error
// (bad --listen, bind, open); run() never throws.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <string>

#include "exporters/ipfix/ipfix_decoder.hpp"
#include "exporters/ipfix/record_format.hpp"

namespace metaprobe::ipfix {

struct receiver_options {
  std::string listen;            // udp:HOST:PORT | tcp:HOST:PORT | file:PATH
  double idle_exit_s = 0;        // stop after this long without data; 0: never
  uint64_t max_records = 0;      // stop after this many records; 0: no limit
  bool include_options = false;  // deliver (and count) options records too
  size_t max_tcp_connections = 256;
};

class ipfix_receiver {
public:
  using record_callback = std::function<void(const decoded_record&)>;
  enum class stop_reason { count, idle, end_of_file, stopped, error };
  // opened: after the first message of a session was decoded (its report
  // holds the first message's sequence number and templates); closed: a
  // TCP connection ended or the file was read to its end.
  enum class session_event { opened, closed };
  using session_callback = std::function<void(session_event, uint64_t session)>;

  ipfix_receiver(receiver_options opts, record_callback cb);
  ~ipfix_receiver();
  ipfix_receiver(const ipfix_receiver&) = delete;
  ipfix_receiver& operator=(const ipfix_receiver&) = delete;

  // Runs until --count is reached, the idle timeout, the end of the file
  // or `stop` turns true (checked at least every 200 ms).
  stop_reason run(const std::atomic<bool>& stop);

  void on_session(session_callback cb) { session_cb_ = std::move(cb); }

  const ipfix_decoder& decoder() const { return decoder_; }
  uint64_t records() const { return records_; }
  uint64_t framing_errors() const { return framing_errors_; }
  // "udp:10.0.0.1:40000", "tcp:[::1]:5000 #3", "file:PATH"
  std::string session_name(uint64_t session) const;
  // Address actually bound (useful with port 0); empty for files.
  std::string local_address() const { return local_; }

private:
  struct connection;
  stop_reason run_udp(const std::atomic<bool>& stop);
  stop_reason run_tcp(const std::atomic<bool>& stop);
  stop_reason run_file(const std::atomic<bool>& stop);
  void on_message(uint64_t session, const uint8_t* data, size_t len);
  void close_session(uint64_t session);
  bool done() const { return opts_.max_records && records_ >= opts_.max_records; }

  receiver_options opts_;
  record_callback cb_;
  session_callback session_cb_;
  ipfix_decoder decoder_;
  ipfix_decoder::record_callback deliver_;
  std::string mode_;
  std::string target_;
  std::string local_;
  int fd_ = -1;
  uint64_t records_ = 0;
  uint64_t framing_errors_ = 0;
  uint64_t next_session_ = 1;
  std::map<std::string, uint64_t> udp_sessions_;
  std::map<uint64_t, std::string> session_names_;
  std::set<uint64_t> opened_;
};

// Reports of metaprobe-receiver (stderr), json or text (record_format.hpp):
// - format_session_event: one line per (session, domain) of `session`,
//   json {"event":"opened"|"closed",<exporter fields>}.
// - format_summary: the totals and one entry per exporter (session and
//   observation domain): messages, records, records per template id, decode
//   errors, sequence gaps and records lost, template records, sets and
//   records without template, first sequence number, template records in
//   the first message, sequence number of the first message with templates,
//   next expected sequence number. json: {"summary":{...,"exporters":[...]}}
//   on one line.
std::string format_session_event(const ipfix_receiver& rx, ipfix_receiver::session_event ev,
                                 uint64_t session, output_format fmt);
std::string format_summary(const ipfix_receiver& rx, output_format fmt);

} // namespace metaprobe::ipfix
