// SPDX-License-Identifier: Apache-2.0
#pragma once
// DNS parsers: UDP (one message per datagram; also mDNS 5353 and LLMNR 5355,
// which share the format) and TCP (RFC 1035 §4.2.2 two-byte length prefix,
// any number of messages per connection, split or merged across segments).
//
// ---------------------------------------------------------------------------
// Records (v1::Dns, meta left empty) and how they map onto tshark 4.0 truth
// (truth/<file>.dns.tsv, one row per DNS frame):
//
//  * Query (QR=0): one record per question, in order:
//      domain = qname, rrtype = qtype, rrclass = qclass, ttl = 0, rdata empty,
//      rdata_text empty, response = false, section = QUESTION.
//    truth: dns.qry.name[i], dns.qry.type[i], dns.qry.class[i] (hex there).
//    A query with no question but answer RRs (inverse query, opcode 1) gives
//    one record per answer RR instead (section ANSWER, response = false).
//  * Response (QR=1) with answer RRs: one record per ANSWER RR, in order:
//      domain = owner name, rrtype, rrclass, ttl, rdata (see dns_rdata.hpp),
//      rdata_text (readable), response = true, rcode, section = ANSWER.
//    truth: the first N entries of dns.resp.type / dns.resp.ttl with
//    N = min(dns.count.answers, entries in dns.resp.type) (those columns
//    also list authority and additional RRs after the answers; dns.resp.ttl
//    skips OPT RRs, which are never answers). dns.resp.name lists the owner
//    names of the same RRs except SRV ones (tshark files an SRV owner under
//    dns.srv.service/proto/name): walk the answer types and take the next
//    dns.resp.name entry for every non-SRV answer.
//    rdata_text of the k-th answer of a type is the k-th value of that type's
//    column (answers come first in each column):
//      A -> dns.a, AAAA -> dns.aaaa, CNAME -> dns.cname, NS -> dns.ns,
//      PTR -> dns.ptr.domain_name, MX -> dns.mx.mail_exchange (compare the
//      part after the first space: rdata_text is "<pref> <name>"),
//      TXT -> dns.txt (rdata_text is each string quoted, joined by one space,
//      with \" \\ and \DDD escapes; tshark lists every string separately).
//  * Response without answer RRs (NXDOMAIN, NODATA, referral, or answers
//    that failed to decode): one record per question, section = QUESTION,
//    response = true, rcode set; compare with dns.qry.* as for queries.
//  * A message with neither questions nor (for queries) answers gives no
//    record. Every record carries dns_id = dns.id, response =
//    dns.flags.response, rcode = dns.flags.rcode (4-bit header RCODE),
//    transport 0 UDP / 1 TCP.
//
// Names are rendered like tshark: labels joined by '.', no trailing dot,
// "<Root>" for the root; label bytes 0x07..0x0d as \a \b \t \n \v \f \r,
// other bytes < 0x20 and 0x7f as \ooo (3-digit octal), '.' and '\' inside a
// label as they are; bytes >= 0x80 as UTF-8 where well-formed, else one
// U+FFFD per ill-formed sequence (tshark decodes overlong forms such as
// C0 AF to '/'; metaprobe shows U+FFFD there); the placeholders
// "<Name too long>" (more than 253 characters) and "<Name contains a pointer
// that loops>" (a pointer to the two bytes just past itself, or more than 255
// pointers in one name). rrclass drops the mDNS cache-flush /
// unicast-response bit (0x8000) when the rest is IN (1), as tshark does for
// mDNS (port 5353); the parser does not know the port, so it does so on any
// port.
//
// The first 256 questions + RRs of a message are decoded at most (truth rows
// past that are not produced: only crafted messages have more).
//
// Malformed messages (bad label type, pointer or label past the end, RDATA
// past the end, counts larger than the message) yield the records decoded
// before the error, as tshark lists them: an entry is reported only when it
// decoded whole (an RR whose RDATA runs past the end is not, so a response
// whose first answer is cut falls back to its questions). Such a message
// counts one violation; UDP flows keep being parsed, a TCP flow whose first
// message decodes to nothing is detached.
//
// Not comparable / not produced: truth rows whose _ws.col.Protocol is ICMP
// (DNS quoted in ICMP errors: no UDP flow carries them); NBNS (port 137) is
// not DNS (tshark shows it as NBNS, not in the truth). Measured with a naive
// pcap replay (tests/unit/dns/dns_corpus_test.cpp): every comparable truth
// row of the public corpus matches except the crafted dns-fwdptr-malformed
// frame (10518 questions; the work limit below stops after about 65).
// ---------------------------------------------------------------------------
//
// TCP framing after a gap: a gap inside a message skips it; a gap that hides
// a length prefix loses the framing of that side for good, except a gap of
// exactly the stream's first two bytes (a client that writes the length
// prefix in a segment of its own, on a port where the probe then accepted
// the segment after it): the next segment is taken as one whole message
// when it is one, and framing goes on after it.
//
// Limits: at most 256 questions + RRs decoded per message, and at most 2^20
// label/pointer steps behind compression pointers per message (crafted
// pointer chains; see read_name), both counted in limit_hits; decoding stops
// there and keeps what it has;
// rdata_text/domain cut at max_field (truncated_fields), at most
// max_records_per_flow records per flow (limit_hits), TCP messages longer
// than max_buffered are skipped (limit_hits).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "parsers/dns/dns_message.hpp"
#include "parsers/parser.hpp"
#include "parsers/registry.hpp"

namespace metaprobe {

// Registry entry: UDP 53, 5353, 5355; TCP 53; probe = dns_probe.
protocol_entry dns_protocol_entry();

// Strict payload probe for other ports: the bytes (or, for TCP, the bytes
// after a matching length prefix) are one complete, well-formed message:
// sane header (known opcode, Z = 0, a query has no answers, 1..4 questions
// or an answer-only response, at most 64 RRs), every name decodes cleanly,
// question names hold no control bytes and the first one no compression
// pointer, question and RR types are not 0, question and RR classes are
// real classes (IN, CH, HS, NONE, ANY; OPT excepted, whose owner must be
// the root), nothing trails the message, and the first name is no
// NetBIOS-encoded name (NBNS on port 137 looks like DNS). Measured false
// positives (tests/unit/dns/dns_probe_test.cpp, 100k payloads each): none
// for random payloads of any size nor for other protocols' headers with
// random bodies, none for a perfect query header followed by random bytes.
bool dns_probe(const uint8_t* data, size_t len, direction dir);

std::unique_ptr<datagram_parser> make_dns_datagram_parser(const parser_options& opts,
                                                          parser_counters& counters);
std::unique_ptr<stream_parser> make_dns_stream_parser(const parser_options& opts,
                                                      parser_counters& counters);

// Decodes one DNS message and appends its records (shared by UDP and TCP).
class dns_message_decoder {
public:
  static constexpr size_t max_entries_per_message = 256;

  dns_message_decoder(const parser_options& opts, parser_counters& counters, transport t);

  // Returns the number of records the message yielded (0 also for a message
  // that decoded but had nothing to report); `decoded_any` says whether at
  // least the header and one entry (or a valid empty message) decoded.
  size_t decode(const uint8_t* msg, size_t len, direction dir, uint64_t ts_ns, uint32_t seq,
                record_sink& out, bool& decoded_any);
  // Heap bytes of its scratch buffers.
  size_t memory_bytes() const { return heap_bytes(text_, bytes_, view_.entries); }

private:
  void emit_entry(const uint8_t* msg, size_t len, const dns::entry& e, bool response,
                  direction dir, uint64_t ts_ns, uint32_t seq, record_sink& out);

  parser_options opts_;
  parser_counters& counters_;
  transport transport_;
  dns::message_view view_;
  std::string text_;
  std::string bytes_;
  size_t records_ = 0;
};

class dns_datagram_parser final : public datagram_parser {
public:
  dns_datagram_parser(const parser_options& opts, parser_counters& counters);
  void deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
               record_sink& out) override;
  size_t memory_bytes() const override;

private:
  dns_message_decoder decoder_;
};

class dns_stream_parser final : public stream_parser {
public:
  dns_stream_parser(const parser_options& opts, parser_counters& counters);
  void deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns, uint32_t seq,
               record_sink& out) override;
  size_t memory_bytes() const override;
  void gap(direction dir, size_t len) override;
  void finish(uint64_t ts_ns, record_sink& out) override;

private:
  struct side {
    uint8_t prefix[2] = {0, 0};
    uint8_t prefix_have = 0;   // bytes of the length prefix seen
    uint32_t msg_seq = 0;      // sequence of the prefix's first byte
    size_t msg_len = 0;        // length of the current message (0: reading prefix)
    size_t msg_have = 0;       // bytes of it seen (buffered or skipped)
    bool skipping = false;     // message too long or damaged: skip its bytes
    bool lost = false;         // framing lost after a gap: stop
    bool started = false;      // a byte or a gap of this side was seen
    bool bare_next = false;    // the first 2 bytes were lost: a whole message follows
    std::string buf;           // message bytes when split across segments
  };

  void on_message(side& s, direction dir, const uint8_t* msg, size_t len, uint64_t ts_ns,
                  record_sink& out);

  parser_options opts_;
  parser_counters& counters_;
  dns_message_decoder decoder_;
  side sides_[2];
};

} // namespace metaprobe
