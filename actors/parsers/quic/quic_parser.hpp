// SPDX-License-Identifier: Apache-2.0
#pragma once
// QUIC parser (UDP): the server name of a QUIC connection from the client's
// Initial packets.
//
// What it reads: every long-header packet of a datagram (coalesced packets,
// RFC 9000 §12.2) up to the first short-header packet or padding. Initial
// packets of QUIC v1 (RFC 9000/9001), v2 (RFC 9369: own salt, HKDF labels
// "quicv2 key/iv/hp" and packet type bits) and drafts 27..34 are opened:
// Initial keys from the Destination Connection ID (HKDF-SHA256 with the
// version's salt), header protection removed (AES-128-ECB), payload
// decrypted and authenticated (AES-128-GCM), packet number decoded. Their
// CRYPTO frames (PADDING, PING, ACK and CONNECTION_CLOSE skipped) are
// reassembled in stream order, whatever the packet and frame order; once
// the first handshake message is complete it is decoded with
// tls::parse_client_hello (shared with the TLS parser). Version
// Negotiation, Retry, 0-RTT, Handshake and short-header packets are skipped.
//
// Keys and restarts: a client's Initials are protected with keys derived
// from the DCID of its first Initial; after Version Negotiation or Retry it
// starts over with a new DCID (and a new CRYPTO stream from offset 0), and
// once the server answered it sends further Initials to the server's CID
// under the old keys. So each Initial is tried with keys from its own DCID
// (cached) and, if that fails, with the keys of the last Initial that
// opened; a new key epoch before the ClientHello completed discards the
// partial CRYPTO stream. Initials of the server_to_client direction are
// tried (with client keys) only while no client_to_server Initial opened and
// only in datagrams of at least 1200 bytes (a client pads its Initials to
// that size, RFC 9000 §14.1): this covers captures whose first packet came
// from the server side.
//
// Record (v1::Clickstream, meta left empty), one per flow, for the first
// ClientHello that completes (retransmitted Initials and the ClientHello a
// client resends after Retry/VN give no second record):
//   host_type = 4 (QUIC); hostname = SNI (server_name host_name; empty when
//   the ClientHello has none: every ClientHello is exported, as the TLS
//   parser does), valid UTF-8, cut at max_field;
//   cipher_suites_len = length in bytes of the cipher suite list;
//   cipher_suites = the first 16 suites, 2 bytes each, big endian.
// tshark truth (truth/<file>.quic.tsv): the row with tls.handshake.type 1 in
// the client's Initial: tls.handshake.extensions_server_name,
// tls.handshake.ciphersuite ('|'-joined); see tests/integration/truth_quic.py.
// flow_host() returns the SNI.
//
// States: confirmed after the first Initial that opened; done after the
// ClientHello (decoded or not) or after 64 datagrams without any Initial
// that opened; violated (detach) when 4 datagrams carry neither a long
// header nor a short header with the fixed bit before anything opened.
//
// Counters: messages = Initial packets opened; records; violations (without
// detaching) = Initials that did not decrypt, malformed headers or frames,
// a first CRYPTO message that is not a ClientHello or does not decode;
// limit_hits = CRYPTO bytes past max_buffered (default 64 KiB) or more than
// 64 holes in the stream, a ClientHello longer than max_buffered, the
// record limit; truncated_fields = SNI cut at max_field.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "parsers/parser.hpp"
#include "parsers/quic/quic_crypto.hpp"
#include "parsers/quic/quic_packet.hpp"
#include "parsers/registry.hpp"

namespace metaprobe {

// Registry entry: UDP 443, 80, 8443; probe = quic_probe.
protocol_entry quic_protocol_entry();

// Payload probe: the datagram starts with a long-header Initial of a known
// version (fixed bit set, CIDs of at most 20 bytes, token and Length fields
// inside the datagram).
bool quic_probe(const uint8_t* data, size_t len, direction dir);

std::unique_ptr<datagram_parser> make_quic_parser(const parser_options& opts,
                                                  parser_counters& counters);

class quic_parser final : public datagram_parser {
public:
  static constexpr size_t max_quiet_datagrams = 64;
  static constexpr size_t max_bogus_datagrams = 4;
  static constexpr size_t max_crypto_holes = 64;
  static constexpr size_t max_exported_suites = 16;
  // Initial key derivations (cache misses) per datagram and per flow; more
  // Initials to new DCIDs are skipped (counted in limit_hits).
  static constexpr size_t max_derivations_per_datagram = 2;
  static constexpr size_t max_derivations_per_flow = 8;

  quic_parser(const parser_options& opts, parser_counters& counters);
  void deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
               record_sink& out) override;
  size_t memory_bytes() const override;
  std::string flow_host() const override { return host_; }

private:
  // Initial keys of one (version, DCID).
  struct key_epoch {
    bool valid = false;
    uint32_t version = 0;
    uint8_t dcid[quic::max_cid_len] = {};
    uint8_t dcid_len = 0;
    quic::initial_keys keys;
    int64_t largest_pn = -1;
    bool same(const quic::long_header& h) const;
    // Keys for h (through the per-thread key cache); true when they had to
    // be derived (a cache miss).
    bool set(const quic::long_header& h);
  };

  // Returns true when the Initial opened.
  bool handle_initial(direction dir, const uint8_t* pkt, const quic::long_header& h,
                      uint64_t ts_ns, record_sink& out);
  bool try_open(const uint8_t* pkt, const quic::long_header& h, key_epoch& e);
  void on_crypto(direction dir, uint64_t ts_ns, record_sink& out);
  void emit(direction dir, uint64_t ts_ns, const uint8_t* msg, size_t len, record_sink& out);

  parser_options opts_;
  parser_counters& counters_;
  quic::crypto_stream stream_;
  key_epoch epoch_;      // keys of the last Initial that opened
  key_epoch candidate_;  // keys derived for another DCID (cached)
  bool client_opened_ = false; // a client_to_server Initial opened
  size_t quiet_ = 0;     // datagrams without an Initial that opened, before confirmed
  size_t bogus_ = 0;     // datagrams that cannot be QUIC, before confirmed
  size_t derived_in_datagram_ = 0;
  size_t derived_in_flow_ = 0;
  std::string host_;
  quic::opened_packet opened_;
  std::vector<quic::crypto_frame> frames_;
};

} // namespace metaprobe
