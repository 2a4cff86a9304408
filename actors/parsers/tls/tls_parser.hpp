// SPDX-License-Identifier: Apache-2.0
#pragma once
// TLS stream parser: the clear-text start of a TLS connection (RFC 8446 §5,
// RFC 5246 §6.2) -> Clickstream records (SNI, CNAME) and SslReply records.
//
// Framing: each direction is a sequence of TLS records (5-byte header:
// content type, version, uint16 length). Handshake records (type 22) carry a
// byte stream of handshake messages (type, uint24 length, body); messages
// are reassembled across any number of records and TCP segments (record and
// header bytes may be split anywhere, down to one byte per segment).
// Message decoding lives in tls_handshake.hpp (shared with QUIC).
//
// Roles come from the messages, not from the flow orientation: whichever
// side sends a ClientHello is the client for that record, whichever sends a
// ServerHello / Certificate the server (captures that miss the SYN still
// parse).
//
// End: a direction is finished at its first application_data record (type
// 23: TLS 1.3 encrypted handshake, or data) or at its ChangeCipherSpec
// unless a ServerHello negotiated TLS 1.3 (supported_versions present: the
// CCS is then the middlebox-compatibility dummy and a ClientHello may still
// follow a HelloRetryRequest in clear). When both directions are finished the
// parser is `done`.
//
// Records and tshark 4.0 truth:
//   ClientHello (truth/<file>.tls_ch.tsv, one row per ClientHello):
//     Clickstream, sent by the client: host_type = 3 (SNI), hostname =
//     tls.handshake.extensions_server_name (the first host_name, empty when
//     the extension is absent: every ClientHello is exported, as tshark lists
//     every one, because the cipher suite fields are useful without a name),
//     cipher_suites_len = tls.handshake.cipher_suites_length (bytes),
//     cipher_suites = the first 16 values of tls.handshake.ciphersuite, two
//     bytes each, big endian (GREASE values kept, as sent), tcp_sequence =
//     TCP sequence of the first byte of the TLS record where the ClientHello
//     starts. A ClientHello whose extensions are damaged is still exported
//     with what decoded before the damage (tshark shows the row too).
//   ServerHello incl. HelloRetryRequest (truth/<file>.tls_sh.tsv), only with
//     parser_options::ssl_parse_reply: SslReply, sent by the server:
//     ssl_version = tls.handshake.extensions.supported_version when present
//     (TLS 1.3) else tls.handshake.version, cipher_suite =
//     tls.handshake.ciphersuite, compression_method =
//     tls.handshake.comp_method. host_type/cname: the leaf certificate's
//     subject CN (host_type 2) when the server's clear-text Certificate
//     follows, else the ClientHello's SNI (host_type 3), else empty (0); the
//     record therefore leaves when the server's next handshake message or
//     non-handshake record, or the flow end, shows whether a Certificate
//     comes.
//   Certificate (TLS <= 1.2, clear text): the seeds' CNAME, a Clickstream
//     with host_type = 2 and hostname = subject commonName of the leaf
//     certificate (OpenSSL d2i_X509, converted to UTF-8), oriented like the
//     ClientHello record (subscriber = source) so CNAME and SNI records of a
//     flow share addresses and ports; tcp_sequence = the server record where
//     the Certificate starts. No record when the certificate has no CN.
//   flow_host(): the SNI, else the certificate CN (fullflow
//   HTTP_HOST_OR_CN_HTTPS).
//
// Errors: a record header that is not TLS (content type 20..24, version
//   3.0..3.4, length <= 2^14 + 2048) detaches the parser (violated) while the
//   flow is still probing; once confirmed it starts a resync: bytes are
//   skipped up to the next plausible record header. A gap inside a record
//   body only shortens the record (a handshake message cut by it is
//   dropped and parsing resumes at the next record); a gap anywhere else
//   resyncs. More than max_buffered skipped bytes end the direction (or
//   detach while probing). Not handled: SSL 2.0 ServerHellos, DTLS.
//
// SSLv2-compatible ClientHello (RFC 5246 E.2): as the first record of a
//   side only (tls::v2_hello_header), it gives the same Clickstream record
//   as a ClientHello: empty hostname (no SNI exists), cipher_suites = the
//   cipher specs with a 0x00 first byte as TLS suites, cipher_suites_len =
//   2 * their number, tcp_sequence = the record's first byte. One larger
//   than max_buffered is counted in limit_hits, not decoded.
// TLS 1.3 drafts < 22: a ServerHello with version 0x7fNN has no session id
//   and no compression; ssl_version = 0x7fNN as on the wire,
//   compression_method = 0, and the Certificate is encrypted (as for 1.3).
//
// Limits (parser_options): max_buffered (a handshake message larger than
// this is skipped, counted in limit_hits; a Certificate is cut there and its
// leaf still decoded when it fits), max_field (hostname/cname cut on a UTF-8
// boundary, invalid UTF-8 becomes U+FFFD; counted in truncated_fields),
// max_records_per_flow. Gaps are counted by the parser host, not here.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "parsers/parser.hpp"
#include "parsers/registry.hpp"
#include "parsers/tls/tls_handshake.hpp"

namespace metaprobe {

// Registry entry: TCP ports 443, 8443, 993, 995, 465, 636, 989, 990, 5061,
// 853; probe = tls_probe (any port).
protocol_entry tls_protocol_entry();

// Payload probe: a handshake record header (0x16, 0x03, 0x00..0x04, length
// 4..2^14+2048) whose first handshake message is a ClientHello (1) or a
// ServerHello (2) with a uint24 length below 2^16; needs 6 bytes (9 to check
// the message length).
bool tls_probe(const uint8_t* data, size_t len, direction dir);

std::unique_ptr<stream_parser> make_tls_parser(const parser_options& opts,
                                               parser_counters& counters);

class tls_parser final : public stream_parser {
public:
  tls_parser(const parser_options& opts, parser_counters& counters);

  void deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
               uint32_t seq, record_sink& out) override;
  size_t memory_bytes() const override;
  void gap(direction dir, size_t len) override;
  void finish(uint64_t ts_ns, record_sink& out) override;
  std::string flow_host() const override { return sni_.empty() ? cn_ : sni_; }

  // Largest record length accepted (TLSCiphertext, RFC 5246 §6.2.3).
  static constexpr size_t max_record = 16384 + 2048;

private:
  struct side {
    // record layer
    uint8_t hdr[5] = {};
    size_t hdr_len = 0;       // header bytes collected
    uint32_t hdr_seq = 0;     // sequence of the header's first byte
    uint8_t rec_type = 0;     // content type of the record being read
    size_t rec_left = 0;      // body bytes of that record still to come
    uint32_t rec_seq = 0;     // sequence of that record's header
    bool resync = false;      // skipping to the next plausible record header
    uint64_t resync_skipped = 0;
    bool finished = false;    // encrypted from here on, or given up
    bool seen_record = false; // a record header was accepted on this side
    // handshake layer
    std::vector<uint8_t> hs; // the handshake message being collected
    size_t hs_want = 0;       // its total size (header incl.), once known
    uint32_t hs_seq = 0;      // sequence of the record where it started
    size_t hs_skip = 0;       // bytes of an oversize message still to skip
    bool hs_lost = false;     // a gap cut this record's handshake bytes
  };

  struct pending_reply {
    bool active = false;
    direction dir = direction::server_to_client;
    uint64_t ts_ns = 0;
    uint32_t seq = 0;
    tls::server_hello hello;
  };

  void process(side& s, direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
               uint32_t seq, record_sink& out);
  bool header_ok(const uint8_t* h) const;
  void on_header(side& s, direction dir, record_sink& out);
  void feed_handshake(side& s, direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
                      record_sink& out);
  void on_message(direction dir, const uint8_t* msg, size_t len, uint32_t seq, uint64_t ts_ns,
                  record_sink& out);
  void on_client_hello(direction dir, const uint8_t* msg, size_t len, uint32_t seq,
                       uint64_t ts_ns, record_sink& out);
  void on_v2_client_hello(side& s, direction dir, uint64_t ts_ns, record_sink& out);
  void export_client_hello(direction dir, const tls::client_hello& ch, uint32_t seq,
                           uint64_t ts_ns, record_sink& out);
  void on_certificate(direction dir, const uint8_t* msg, size_t len, uint32_t seq,
                      uint64_t ts_ns, record_sink& out);
  void flush_reply(direction from, record_sink& out, const std::string* cn = nullptr);
  void finish_side(side& s, direction dir, record_sink& out);
  void start_resync(side& s);
  void reset_handshake(side& s);
  bool emit(parsed_record&& rec, record_sink& out);
  void set_text(std::string* dst, const std::string& value);

  const parser_options opts_;
  parser_counters& counters_;
  side sides_[2];
  pending_reply reply_;
  bool tls13_ = false;       // a ServerHello carried supported_versions
  std::string sni_;          // first SNI of the flow (raw bytes)
  std::string cn_;           // leaf certificate CN (UTF-8)
  size_t records_ = 0;
};

} // namespace metaprobe
