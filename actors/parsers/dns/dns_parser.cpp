// SPDX-License-Identifier: Apache-2.0
#include "parsers/dns/dns_parser.hpp"

#include <algorithm>
#include <utility>

#include "parsers/common/field_text.hpp"
#include "parsers/dns/dns_rdata.hpp"

namespace metaprobe {

namespace {

constexpr size_t probe_max_rrs = 64;

uint32_t export_class(uint16_t c) {
  return (c & 0x7fff) == 1 ? 1u : c; // mDNS cache-flush / QU bit on class IN
}

// NetBIOS names (RFC 1001 first-level encoding: 32 letters A..P) mark NBNS,
// which shares DNS's layout on port 137.
bool netbios_name(const uint8_t* msg, size_t len) {
  if (len < dns::header_size + 33 || msg[dns::header_size] != 32)
    return false;
  for (size_t i = 0; i < 32; ++i) {
    const uint8_t c = msg[dns::header_size + 1 + i];
    if (c < 'A' || c > 'P')
      return false;
  }
  return true;
}

bool real_class(uint16_t c) {
  c &= 0x7fff;
  return c == 1 || c == 3 || c == 4 || c == 254 || c == 255;
}

// The labels of a question name at `pos` hold no control bytes (< 0x20,
// 0x7f; names real resolvers ask for are host names, service labels with
// '_' or spaces, or UTF-8), and the first question's name has no
// compression pointer (only the header precedes it). Validity of pointers
// and lengths is skip_name's.
bool clean_question_name(const uint8_t* msg, size_t len, size_t pos, bool first) {
  while (pos < len) {
    const uint8_t l = msg[pos];
    if (l == 0)
      return true;
    if ((l & 0xc0) != 0)
      return !first && (l & 0xc0) == 0xc0; // a pointer ends the name
    if (pos + 1 + l > len)
      return false;
    for (size_t i = pos + 1; i <= pos + l; ++i)
      if (msg[i] < 0x20 || msg[i] == 0x7f)
        return false;
    pos += 1 + size_t{l};
  }
  return false;
}

// One complete message, strictly checked (see dns_probe).
bool plausible_message(const uint8_t* msg, size_t len) {
  dns::header h;
  if (!dns::read_header(msg, len, h) || len < dns::header_size + 5)
    return false;
  const uint8_t op = h.opcode();
  if (op == 3 || op > 6 || (h.flags & 0x0040) != 0)
    return false;
  const size_t rrs = size_t{h.ancount} + h.nscount + h.arcount;
  if (rrs > probe_max_rrs || h.qdcount > 4)
    return false;
  if (!h.response()) {
    if (h.qdcount == 0 || h.ancount != 0 || h.rcode() != 0)
      return false;
    if (op == 0 && h.nscount != 0)
      return false;
  } else if (h.qdcount == 0 && h.ancount == 0) {
    return false;
  }
  if (netbios_name(msg, len))
    return false;
  // Walk every entry without rendering anything: names must decode cleanly,
  // questions carry real types and classes, the message ends exactly.
  size_t pos = dns::header_size;
  size_t budget = 4096;
  const size_t entries = size_t{h.qdcount} + rrs;
  for (size_t i = 0; i < entries; ++i) {
    size_t next = 0;
    if (i < h.qdcount && !clean_question_name(msg, len, pos, i == 0))
      return false;
    if (dns::skip_name(msg, len, pos, next, budget) != dns::name_status::ok)
      return false;
    if (i < h.qdcount) {
      if (next + 4 > len)
        return false;
      if (dns::be16(msg + next) == 0 || !real_class(dns::be16(msg + next + 2)))
        return false;
      pos = next + 4;
    } else {
      if (next + 10 > len)
        return false;
      // RRs: a type, and a real class except on OPT (whose class field is
      // the UDP payload size and whose owner is the root).
      const uint16_t type = dns::be16(msg + next);
      if (type == 0)
        return false;
      if (type == 41 ? next != pos + 1 : !real_class(dns::be16(msg + next + 2)))
        return false;
      pos = next + 10 + dns::be16(msg + next + 8);
      if (pos > len)
        return false;
    }
  }
  return pos == len;
}

} // namespace

protocol_entry dns_protocol_entry() {
  protocol_entry e;
  e.id = app_protocol::dns;
  e.name = "dns";
  e.tcp_ports = {53};
  e.udp_ports = {53, 5353, 5355};
  e.probe = &dns_probe;
  e.make_stream = &make_dns_stream_parser;
  e.make_datagram = &make_dns_datagram_parser;
  return e;
}

bool dns_probe(const uint8_t* data, size_t len, direction /*dir*/) {
  if (data == nullptr || len < dns::header_size)
    return false;
  if (plausible_message(data, len))
    return true;
  // TCP: length prefix followed by the message (possibly more after it).
  const size_t n = dns::be16(data);
  return n >= dns::header_size && n + 2 <= len && plausible_message(data + 2, n);
}

std::unique_ptr<datagram_parser> make_dns_datagram_parser(const parser_options& opts,
                                                          parser_counters& counters) {
  return std::make_unique<dns_datagram_parser>(opts, counters);
}

std::unique_ptr<stream_parser> make_dns_stream_parser(const parser_options& opts,
                                                      parser_counters& counters) {
  return std::make_unique<dns_stream_parser>(opts, counters);
}

// ---- decoder ---------------------------------------------------------------

dns_message_decoder::dns_message_decoder(const parser_options& opts,
                                         parser_counters& counters, transport t)
  : opts_(opts), counters_(counters), transport_(t) {}

size_t dns_message_decoder::decode(const uint8_t* msg, size_t len, direction dir,
                                   uint64_t ts_ns, uint32_t seq, record_sink& out,
                                   bool& decoded_any) {
  decoded_any = false;
  dns::decode_limits limits;
  limits.max_entries = max_entries_per_message;
  limits.last_section = dns::section::answer; // the only sections reported
  const dns::decode_status st = dns::decode_message(msg, len, limits, view_);
  if (st == dns::decode_status::truncated && view_.end == 0) {
    ++counters_.violations; // not even a header
    return 0;
  }
  ++counters_.messages;
  if (st == dns::decode_status::limit)
    ++counters_.limit_hits;
  else if (st != dns::decode_status::ok)
    ++counters_.violations;
  decoded_any = view_.count > 0 || st == dns::decode_status::ok;

  size_t questions = 0;
  size_t answers = 0;
  for (size_t i = 0; i < view_.count; ++i) {
    if (view_.entries[i].sec == dns::section::question)
      ++questions;
    else
      ++answers;
  }
  const bool response = view_.hdr.response();
  using dns::section;
  const section wanted = response ? (answers ? section::answer : section::question)
                                  : (questions ? section::question : section::answer);
  const size_t before = out.size();
  for (size_t i = 0; i < view_.count; ++i) {
    const dns::entry& e = view_.entries[i];
    if (e.sec == wanted)
      emit_entry(msg, len, e, response, dir, ts_ns, seq, out);
  }
  return out.size() - before;
}

void dns_message_decoder::emit_entry(const uint8_t* msg, size_t len, const dns::entry& e,
                                     bool response, direction dir, uint64_t ts_ns, uint32_t seq,
                                     record_sink& out) {
  if (records_ >= opts_.max_records_per_flow) {
    ++counters_.limit_hits;
    return;
  }
  parsed_record rec;
  rec.ts_ns = ts_ns;
  rec.dir = dir;
  rec.tcp_seq = transport_ == transport::tcp ? seq : 0;
  v1::Dns* d = rec.record.mutable_dns();
  d->set_transport(transport_ == transport::tcp ? 1 : 0);
  std::string* domain = d->mutable_domain();
  *domain = e.name;
  if (text::truncate_utf8(*domain, opts_.max_field))
    ++counters_.truncated_fields;
  d->set_rrclass(export_class(e.rrclass));
  d->set_rrtype(e.type);
  d->set_dns_id(view_.hdr.id);
  d->set_response(response);
  d->set_rcode(view_.hdr.rcode());
  d->set_section(static_cast<v1::Dns::Section>(e.sec));
  if (e.sec != dns::section::question) {
    d->set_ttl(e.ttl);
    if (e.rdata_complete) {
      dns::format_rdata(msg, len, e.rdata_off, e.rdlen, e.type, text_, bytes_);
      if (text::truncate_utf8(text_, opts_.max_field))
        ++counters_.truncated_fields;
      d->set_rdata(bytes_);
      d->set_rdata_text(text_);
    }
  }
  ++records_;
  ++counters_.records;
  out.push_back(std::move(rec));
}

// ---- UDP -------------------------------------------------------------------

dns_datagram_parser::dns_datagram_parser(const parser_options& opts, parser_counters& counters)
  : decoder_(opts, counters, transport::udp) {}

void dns_datagram_parser::deliver(direction dir, const uint8_t* data, size_t len,
                                  uint64_t ts_ns, record_sink& out) {
  if (data == nullptr)
    return;
  bool decoded_any = false;
  decoder_.decode(data, len, dir, ts_ns, 0, out, decoded_any);
  if (decoded_any && state_ == parser_state::probing)
    state_ = parser_state::confirmed;
}

// ---- TCP -------------------------------------------------------------------

dns_stream_parser::dns_stream_parser(const parser_options& opts, parser_counters& counters)
  : opts_(opts), counters_(counters), decoder_(opts, counters, transport::tcp) {}

void dns_stream_parser::deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
                                uint32_t seq, record_sink& out) {
  if (data == nullptr || state_ == parser_state::violated || state_ == parser_state::done)
    return;
  side& s = sides_[static_cast<size_t>(dir) & 1];
  s.started = true;
  size_t pos = 0;
  if (s.bare_next) {
    // The stream's first two bytes (the length prefix, sent in a segment of
    // their own) went to the probe, which accepted the segment after them:
    // it is one whole message. Anything else and the framing is lost.
    s.bare_next = false;
    if (!plausible_message(data, len)) {
      s.lost = true;
      return;
    }
    s.msg_seq = seq;
    on_message(s, dir, data, len, ts_ns, out);
    return;
  }
  while (pos < len && !s.lost) {
    if (s.msg_len == 0) {
      if (s.prefix_have == 0)
        s.msg_seq = seq + static_cast<uint32_t>(pos);
      s.prefix[s.prefix_have++] = data[pos++];
      if (s.prefix_have < 2)
        continue;
      s.prefix_have = 0;
      const size_t n = dns::be16(s.prefix);
      if (n == 0)
        continue; // an empty message: nothing to report
      s.msg_len = n;
      s.msg_have = 0;
      s.buf.clear();
      s.skipping = n > opts_.max_buffered;
      if (s.skipping)
        ++counters_.limit_hits;
      continue;
    }
    const size_t need = s.msg_len - s.msg_have;
    const size_t take = std::min(need, len - pos);
    if (!s.skipping) {
      if (s.msg_have == 0 && take == need) {
        on_message(s, dir, data + pos, need, ts_ns, out); // whole message here: no copy
      } else {
        s.buf.append(reinterpret_cast<const char*>(data + pos), take);
        if (take == need)
          on_message(s, dir, reinterpret_cast<const uint8_t*>(s.buf.data()), s.buf.size(), ts_ns,
                     out);
      }
    }
    s.msg_have += take;
    pos += take;
    if (s.msg_have == s.msg_len) {
      s.msg_len = 0;
      s.msg_have = 0;
      s.skipping = false;
      s.buf.clear();
    }
    if (state_ == parser_state::violated)
      return;
  }
}

void dns_stream_parser::on_message(side& s, direction dir, const uint8_t* msg, size_t len,
                                   uint64_t ts_ns, record_sink& out) {
  bool decoded_any = false;
  decoder_.decode(msg, len, dir, ts_ns, s.msg_seq, out, decoded_any);
  if (state_ == parser_state::probing) {
    if (decoded_any) {
      state_ = parser_state::confirmed;
    } else {
      state_ = parser_state::violated; // the first message is no DNS: detach
    }
  }
}

void dns_stream_parser::gap(direction dir, size_t len) {
  ++counters_.gaps;
  side& s = sides_[static_cast<size_t>(dir) & 1];
  if (s.lost || len == 0)
    return;
  if (!s.started && len == 2) {
    s.started = true;
    s.bare_next = true; // only a length prefix was lost (see deliver)
    return;
  }
  s.started = true;
  if (s.msg_len != 0 && len <= s.msg_len - s.msg_have) {
    // The gap lies inside one message: drop it, framing survives.
    s.skipping = true;
    s.buf.clear();
    s.msg_have += len;
    if (s.msg_have == s.msg_len) {
      s.msg_len = 0;
      s.msg_have = 0;
      s.skipping = false;
    }
    return;
  }
  // The next length prefix is somewhere in the lost bytes.
  s.lost = true;
  s.buf.clear();
  s.buf.shrink_to_fit();
  if (sides_[0].lost && sides_[1].lost)
    state_ = parser_state::done;
}

void dns_stream_parser::finish(uint64_t /*ts_ns*/, record_sink& /*out*/) {
  // A message cut by the end of the flow is dropped: its count fields cannot
  // be trusted and tshark does not show it either.
  for (auto& s : sides_) {
    s.buf.clear();
    s.msg_len = 0;
    s.msg_have = 0;
    s.prefix_have = 0;
  }
}


size_t dns_datagram_parser::memory_bytes() const {
  return sizeof(*this) + decoder_.memory_bytes();
}

size_t dns_stream_parser::memory_bytes() const {
  return sizeof(*this) + decoder_.memory_bytes() + heap_bytes(sides_[0].buf, sides_[1].buf);
}

} // namespace metaprobe
