// SPDX-License-Identifier: Apache-2.0
#pragma once
// The analyzer interface every protocol parser implements.
//
// Ownership and threading: a parser instance belongs to exactly one flow of
// one classifier shard and is only ever called from that shard's thread. It
// does no I/O and holds no CAF types. It never throws across this interface:
// malformed input is a violation (status), not an exception.
//
// Stream parsers (TCP) receive each direction's bytes in order, exactly once,
// through deliver(); missing bytes are announced with gap() so the parser can
// resynchronise or give up. Datagram parsers (UDP) receive one datagram per
// deliver() call (after IP reassembly).
//
// Records come out through the `out` vector with their FlowMeta left empty:
// the correlator fills addresses, ports, session id, login and L2 context
// from the flow, oriented by `dir` (the sender of the message is the source).

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/packet.hpp"
#include "parsers/common/heap_bytes.hpp"
#include "metaprobe/v1/records.pb.h"

namespace metaprobe {

enum class direction : uint8_t {
  client_to_server = 0, // the side that opened the flow (TCP SYN / first UDP packet)
  server_to_client = 1,
};

inline direction reverse(direction d) {
  return d == direction::client_to_server ? direction::server_to_client
                                          : direction::client_to_server;
}

enum class transport : uint8_t { udp = 0, tcp = 1 };

// A TCP connection that the message announced (FTP PORT/EPRT, 227/229
// replies): the correlator gives the flow that connects to (server,
// server_port) soon after the record's time the announcing flow's
// SESSION_ID (correlator/expectations.hpp).
struct expected_connection {
  ip_address server;        // family 0: the record's destination (FTP EPSV:
                            // the control connection's server)
  uint16_t server_port = 0; // 0: nothing announced
  uint8_t mode = 0;         // 0 active (the server side is the FTP client),
                            // 1 passive (the FTP server)
  bool valid() const { return server_port != 0; }
};

// A record as a parser produces it, before correlation.
struct parsed_record {
  v1::Record record;     // exactly one kind set; meta empty
  uint64_t ts_ns = 0;    // capture time of the packet that completed it
  direction dir = direction::client_to_server; // who sent the message
  uint32_t tcp_seq = 0;  // TCP sequence number of the message start (0 for UDP)
  expected_connection expect; // a data connection this message set up, if any
};

using record_sink = std::vector<parsed_record>;

// Where a parser stands on its flow.
enum class parser_state : uint8_t {
  probing,    // not yet sure the protocol is right
  confirmed,  // saw a valid message of its protocol
  violated,   // saw data that cannot be its protocol: detach (counted)
  done,       // nothing more to parse on this flow (e.g. after STARTTLS)
};

// Counters a parser kind accumulates across all its flows in one shard.
// Each parser documents which limits it has; the classifier publishes these.
struct parser_counters {
  uint64_t messages = 0;         // protocol messages parsed
  uint64_t records = 0;          // records emitted
  uint64_t violations = 0;       // flows detached for a violation
  uint64_t gaps = 0;             // gaps reported by reassembly
  uint64_t limit_hits = 0;       // any explicit limit reached (line, headers, buffer)
  uint64_t truncated_fields = 0; // field values cut at their maximum length
  // Bytes read by the searches for message boundaries (line ends, the end
  // of a header block, the end of a tag). Every scan resumes where the
  // previous delivery stopped, so this stays within a small multiple of the
  // bytes delivered however the stream is segmented (tests feed messages
  // in 1-byte segments and check it).
  uint64_t bytes_scanned = 0;
  // Protocol-specific counters, named by protocol_entry::extra_counters
  // (index for index) and reported as parser.<proto>.N.<name>. A parser
  // documents the ones it uses; unnamed slots stay 0.
  static constexpr size_t max_extra = 24;
  std::array<uint64_t, max_extra> extra{};
};

// An in-band hand-over: another protocol takes a stream over (RFC 9110
// CONNECT 2xx, 101 Switching Protocols, STARTTLS/STLS accepted) and the rest
// of the flow goes through detection again (parsers/common/redetect.hpp).
enum class handover_kind : uint8_t {
  connect,   // HTTP CONNECT answered 2xx: a tunnel
  upgrade,   // HTTP 101 Switching Protocols (h2c, TLS, WebSocket other than SIP)
  starttls,  // SMTP/IMAP STARTTLS, POP3 STLS, XMPP <proceed/> accepted
  port,      // a port-detected flow whose first bytes are another protocol's
};
constexpr size_t handover_kind_count = 4;
const char* to_string(handover_kind k);

// Bytes of the new protocol a parser already holds when it hands over, in
// the order they arrived: what the requester sent before the response said
// (HTTP holds them), and the rest of the delivery that carried the hand-over.
struct stream_piece {
  direction dir = direction::client_to_server;
  uint32_t seq = 0;        // TCP sequence of bytes[0]
  uint64_t ts_ns = 0;
  uint64_t gap = 0;        // > 0: a gap of this many bytes (bytes empty)
  std::string bytes;
};

struct stream_handover {
  handover_kind kind = handover_kind::connect;
  std::vector<stream_piece> pending;
};

class stream_parser {
public:
  virtual ~stream_parser() = default;
  // In-order bytes of one direction. `ts_ns` is the capture time of the
  // segment holding the last byte; `seq` the TCP sequence of data[0].
  virtual void deliver(direction dir, const uint8_t* data, size_t len,
                       uint64_t ts_ns, uint32_t seq, record_sink& out) = 0;
  // `len` bytes of direction `dir` will never arrive.
  virtual void gap(direction dir, size_t len) = 0;
  // The flow ends (FIN/RST/timeout/eviction): emit what is pending.
  virtual void finish(uint64_t ts_ns, record_sink& out) = 0;
  // Host name this flow is about (HTTP Host, SNI, ...), for the full-flow
  // HTTP_HOST_OR_CN_HTTPS field; empty when unknown.
  virtual std::string flow_host() const { return {}; }
  // Heap bytes the parser holds, itself included (its buffers' capacity,
  // queued requests, kept strings): charged to the memory budget after
  // every event of the flow (core/memory_budget.hpp). O(1) or O(fields).
  virtual size_t memory_bytes() const = 0;
  parser_state state() const { return state_; }
  // After deliver(): the stream now belongs to another protocol (state is
  // done). The parser stage takes the hand-over once and re-detects.
  bool handing_over() const { return handover_ != nullptr; }
  std::unique_ptr<stream_handover> take_handover() { return std::move(handover_); }

protected:
  // Ends parsing here: what follows belongs to the protocol the stage finds.
  stream_handover& hand_over(handover_kind k) {
    state_ = parser_state::done;
    handover_ = std::make_unique<stream_handover>();
    handover_->kind = k;
    return *handover_;
  }
  // Adds the rest of the current delivery to a pending hand-over.
  void hand_over_rest(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
                      uint32_t seq) {
    if (!handover_ || len == 0)
      return;
    stream_piece p;
    p.dir = dir;
    p.seq = seq;
    p.ts_ns = ts_ns;
    p.bytes.assign(reinterpret_cast<const char*>(data), len);
    handover_->pending.push_back(std::move(p));
  }

  parser_state state_ = parser_state::probing;
  std::unique_ptr<stream_handover> handover_;
};

class datagram_parser {
public:
  virtual ~datagram_parser() = default;
  // One complete datagram (UDP payload) of direction `dir`.
  virtual void deliver(direction dir, const uint8_t* data, size_t len,
                       uint64_t ts_ns, record_sink& out) = 0;
  virtual std::string flow_host() const { return {}; }
  // As stream_parser::memory_bytes.
  virtual size_t memory_bytes() const = 0;
  parser_state state() const { return state_; }

protected:
  parser_state state_ = parser_state::probing;
};

// Protocols metaprobe knows. Values are metaprobe's DPI_PROTOCOL codes
// exported in fullflow (documented in docs/protocols.md).
enum class app_protocol : uint16_t {
  unknown = 0,
  http = 1,
  tls = 2,
  quic = 3,
  dns = 4,
  sip = 5,
  ftp = 6,
  smtp = 7,
  pop3 = 8,
  imap = 9,
  xmpp = 10,
};

} // namespace metaprobe
