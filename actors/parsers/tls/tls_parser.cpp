// SPDX-License-Identifier: Apache-2.0
#include "parsers/tls/tls_parser.hpp"

#include <algorithm>
#include <utility>

#include "parsers/common/field_text.hpp"

namespace metaprobe {

namespace {

constexpr uint8_t content_change_cipher_spec = 20;
constexpr uint8_t content_alert = 21;
constexpr uint8_t content_handshake = 22;
constexpr uint8_t content_application_data = 23;
constexpr uint8_t content_heartbeat = 24;
// Internal marker (never a content type on the wire): the record being read
// is an SSLv2-compatible CLIENT-HELLO (2-byte header with the high bit set).
constexpr uint8_t content_v2_hello = 0x80;

constexpr size_t suites_exported = 16;    // CIPHER_SUITES: at most 16 values
constexpr size_t hs_keep_capacity = 4096; // a larger reassembly buffer is freed after use

// Could a record header start at p (n bytes available, n >= 1)?
bool plausible_header(const uint8_t* p, size_t n) {
  if (p[0] < content_change_cipher_spec || p[0] > content_heartbeat)
    return false;
  if (n > 1 && p[1] != 3)
    return false;
  if (n > 2 && p[2] > 4)
    return false;
  if (n > 4 && (size_t{p[3]} << 8 | p[4]) > tls_parser::max_record)
    return false;
  return true;
}

} // namespace

protocol_entry tls_protocol_entry() {
  protocol_entry e;
  e.id = app_protocol::tls;
  e.name = "tls";
  e.tcp_ports = {443, 8443, 993, 995, 465, 636, 989, 990, 5061, 853};
  e.probe = &tls_probe;
  e.make_stream = &make_tls_parser;
  return e;
}

bool tls_probe(const uint8_t* data, size_t len, direction /*dir*/) {
  if (data == nullptr || len < 6)
    return false;
  if (data[0] & 0x80) // SSLv2-compatible ClientHello: all its lengths checked
    return len >= tls::v2_header_check && tls::v2_hello_header(data, len);
  if (data[0] != content_handshake || data[1] != 3 || data[2] > 4)
    return false;
  const size_t rec_len = size_t{data[3]} << 8 | data[4];
  if (rec_len < 4 || rec_len > tls_parser::max_record)
    return false;
  if (data[5] != tls::handshake_client_hello && data[5] != tls::handshake_server_hello)
    return false;
  return len < 9 || data[6] == 0;
}

std::unique_ptr<stream_parser> make_tls_parser(const parser_options& opts,
                                               parser_counters& counters) {
  return std::make_unique<tls_parser>(opts, counters);
}

tls_parser::tls_parser(const parser_options& opts, parser_counters& counters)
  : opts_(opts), counters_(counters) {}

void tls_parser::deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
                         uint32_t seq, record_sink& out) {
  if (data == nullptr || len == 0)
    return;
  if (state_ == parser_state::done || state_ == parser_state::violated)
    return;
  process(sides_[static_cast<size_t>(dir) & 1], dir, data, len, ts_ns, seq, out);
}

bool tls_parser::header_ok(const uint8_t* h) const {
  return plausible_header(h, 5);
}

void tls_parser::process(side& s, direction dir, const uint8_t* data, size_t len,
                         uint64_t ts_ns, uint32_t seq, record_sink& out) {
  size_t pos = 0;
  while (pos < len) {
    if (s.finished || state_ == parser_state::done || state_ == parser_state::violated)
      return;
    if (s.resync && s.hdr_len == 0) {
      size_t i = pos;
      while (i < len && !plausible_header(data + i, len - i))
        ++i;
      s.resync_skipped += i - pos;
      counters_.bytes_scanned += i - pos;
      pos = i;
      if (s.resync_skipped > opts_.max_buffered) {
        if (state_ == parser_state::probing) {
          state_ = parser_state::violated;
          ++counters_.violations;
        } else {
          ++counters_.limit_hits; // no record boundary found: give the direction up
          finish_side(s, dir, out);
        }
        return;
      }
      if (pos == len)
        return;
    }
    if (s.rec_left == 0) {
      // Collecting a record header (it may be split across segments).
      if (s.hdr_len == 0)
        s.hdr_seq = seq + static_cast<uint32_t>(pos);
      const size_t take = std::min(sizeof(s.hdr) - s.hdr_len, len - pos);
      std::copy(data + pos, data + pos + take, s.hdr + s.hdr_len);
      s.hdr_len += take;
      pos += take;
      if (s.hdr_len < sizeof(s.hdr))
        return;
      s.hdr_len = 0;
      if (!s.seen_record && !s.resync && tls::v2_hello_header(s.hdr, sizeof(s.hdr))) {
        // SSLv2-compatible ClientHello: only as the first record of a side.
        // hdr[2..4] (msg_type, version) are the first message bytes.
        s.seen_record = true;
        s.rec_type = content_v2_hello;
        s.rec_left = (size_t{s.hdr[0] & 0x7fu} << 8 | s.hdr[1]) - 3;
        s.rec_seq = s.hdr_seq;
        reset_handshake(s);
        s.hs.assign(s.hdr + 2, s.hdr + 5);
        if (state_ == parser_state::probing)
          state_ = parser_state::confirmed;
        continue;
      }
      if (!header_ok(s.hdr)) {
        if (state_ == parser_state::probing && !s.resync) {
          state_ = parser_state::violated;
          ++counters_.violations;
          return;
        }
        s.resync = true;
        s.resync_skipped += sizeof(s.hdr);
        continue;
      }
      s.resync = false;
      s.resync_skipped = 0;
      s.seen_record = true;
      s.rec_type = s.hdr[0];
      s.rec_left = size_t{s.hdr[3]} << 8 | s.hdr[4];
      s.rec_seq = s.hdr_seq;
      on_header(s, dir, out);
      continue;
    }
    // Record body.
    const size_t take = std::min(s.rec_left, len - pos);
    if (s.rec_type == content_handshake && !s.hs_lost)
      feed_handshake(s, dir, data + pos, take, ts_ns, out);
    else if (s.rec_type == content_v2_hello && !s.hs_lost) {
      // Kept up to max_buffered; a larger hello is counted when it ends.
      const size_t cap = std::max<size_t>(opts_.max_buffered, tls::v2_header_check);
      const size_t room = cap - std::min(s.hs.size(), cap);
      s.hs.insert(s.hs.end(), data + pos, data + pos + std::min(take, room));
    }
    pos += take;
    s.rec_left -= take;
    if (s.rec_left == 0) {
      if (s.rec_type == content_v2_hello) {
        if (!s.hs_lost)
          on_v2_client_hello(s, dir, ts_ns, out);
        reset_handshake(s);
      }
      s.hs_lost = false;
    }
  }
}

void tls_parser::on_header(side& s, direction dir, record_sink& out) {
  if (state_ == parser_state::probing)
    state_ = parser_state::confirmed;
  switch (s.rec_type) {
  case content_application_data:
    finish_side(s, dir, out); // encrypted from here on
    return;
  case content_change_cipher_spec:
    // TLS <= 1.2: the sender encrypts from the next record on. TLS 1.3: a
    // compatibility dummy (RFC 8446 §D.4); encrypted records are type 23.
    if (!tls13_)
      finish_side(s, dir, out);
    else
      flush_reply(dir, out);
    return;
  case content_alert:
  case content_heartbeat:
    flush_reply(dir, out);
    return;
  default:
    return;
  }
}

void tls_parser::feed_handshake(side& s, direction dir, const uint8_t* data, size_t len,
                                uint64_t ts_ns, record_sink& out) {
  const size_t cap = std::max<size_t>(opts_.max_buffered, 4);
  size_t pos = 0;
  while (pos < len && !s.finished && state_ != parser_state::violated) {
    if (s.hs_skip > 0) {
      const size_t take = std::min(s.hs_skip, len - pos);
      s.hs_skip -= take;
      pos += take;
      continue;
    }
    if (s.hs.empty())
      s.hs_seq = s.rec_seq;
    if (s.hs.size() < 4) {
      const size_t take = std::min(4 - s.hs.size(), len - pos);
      s.hs.insert(s.hs.end(), data + pos, data + pos + take);
      pos += take;
      if (s.hs.size() < 4)
        return;
      const size_t body = size_t{s.hs[1]} << 16 | size_t{s.hs[2]} << 8 | s.hs[3];
      s.hs_want = 4 + body;
      if (s.hs_want > cap) {
        ++counters_.limit_hits;
        if (s.hs[0] != tls::handshake_certificate) {
          s.hs_skip = body; // too large to keep: skip it, keep the framing
          s.hs.clear();
          s.hs_want = 0;
          continue;
        }
        // A Certificate is cut at the cap; its leaf usually fits.
      }
    }
    const size_t keep = std::min(s.hs_want, cap);
    if (s.hs.size() < keep) {
      const size_t take = std::min(keep - s.hs.size(), len - pos);
      s.hs.insert(s.hs.end(), data + pos, data + pos + take);
      pos += take;
    }
    if (s.hs.size() < keep)
      return;
    s.hs_skip = s.hs_want - keep;
    on_message(dir, s.hs.data(), s.hs.size(), s.hs_seq, ts_ns, out);
    s.hs.clear();
    s.hs_want = 0;
    if (s.hs.capacity() > hs_keep_capacity)
      std::vector<uint8_t>().swap(s.hs);
  }
}

void tls_parser::on_message(direction dir, const uint8_t* msg, size_t len, uint32_t seq,
                            uint64_t ts_ns, record_sink& out) {
  ++counters_.messages;
  switch (msg[0]) {
  case tls::handshake_client_hello:
    on_client_hello(dir, msg, len, seq, ts_ns, out);
    return;
  case tls::handshake_server_hello: {
    flush_reply(dir, out); // a HelloRetryRequest before it: no certificate came
    tls::server_hello sh;
    if (tls::parse_server_hello(msg, len, sh) != tls::hs_status::ok)
      return;
    if (sh.selected_version != 0 || sh.draft_layout)
      tls13_ = true; // Certificate encrypted; a CCS is no end of the clear text
    if (opts_.ssl_parse_reply) {
      reply_.active = true;
      reply_.dir = dir;
      reply_.ts_ns = ts_ns;
      reply_.seq = seq;
      reply_.hello = sh;
    }
    return;
  }
  case tls::handshake_certificate:
    on_certificate(dir, msg, len, seq, ts_ns, out);
    return;
  default:
    flush_reply(dir, out); // the server's next message: no Certificate follows
    return;
  }
}

void tls_parser::on_client_hello(direction dir, const uint8_t* msg, size_t len, uint32_t seq,
                                 uint64_t ts_ns, record_sink& out) {
  tls::client_hello ch;
  if (tls::parse_client_hello(msg, len, ch) != tls::hs_status::ok && ch.cipher_suites_len == 0)
    return; // not even the cipher suites decoded: nothing to report
  export_client_hello(dir, ch, seq, ts_ns, out);
}

void tls_parser::on_v2_client_hello(side& s, direction dir, uint64_t ts_ns, record_sink& out) {
  ++counters_.messages;
  const size_t want = size_t{s.hdr[0] & 0x7fu} << 8 | s.hdr[1];
  if (s.hs.size() < want) {
    ++counters_.limit_hits; // larger than max_buffered: not decoded
    return;
  }
  tls::client_hello ch;
  if (tls::parse_v2_client_hello(s.hs.data(), s.hs.size(), ch) != tls::hs_status::ok)
    return; // the header checks passed, the body does not fit them
  export_client_hello(dir, ch, s.rec_seq, ts_ns, out);
}

void tls_parser::export_client_hello(direction dir, const tls::client_hello& ch, uint32_t seq,
                                     uint64_t ts_ns, record_sink& out) {
  if (sni_.empty() && !ch.sni.empty())
    sni_ = ch.sni;
  parsed_record rec;
  rec.ts_ns = ts_ns;
  rec.dir = dir;
  rec.tcp_seq = seq;
  v1::Clickstream* c = rec.record.mutable_clickstream();
  c->set_host_type(3);
  set_text(c->mutable_hostname(), ch.sni);
  c->set_cipher_suites_len(ch.cipher_suites_len);
  std::string suites;
  const size_t n = std::min(ch.cipher_suites.size(), suites_exported);
  suites.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    suites.push_back(static_cast<char>(ch.cipher_suites[i] >> 8));
    suites.push_back(static_cast<char>(ch.cipher_suites[i] & 0xff));
  }
  c->set_cipher_suites(std::move(suites));
  c->set_tcp_sequence(seq);
  emit(std::move(rec), out);
}

void tls_parser::on_certificate(direction dir, const uint8_t* msg, size_t len, uint32_t seq,
                                uint64_t ts_ns, record_sink& out) {
  std::string cn;
  if (tls13_ || tls::parse_certificate_cn(msg, len, cn) != tls::hs_status::ok || cn.empty()) {
    flush_reply(dir, out);
    return;
  }
  std::string name;
  set_text(&name, cn);
  if (cn_.empty())
    cn_ = name;
  parsed_record rec;
  rec.ts_ns = ts_ns;
  rec.dir = reverse(dir); // subscriber = source, as for the ClientHello
  rec.tcp_seq = seq;
  v1::Clickstream* c = rec.record.mutable_clickstream();
  c->set_host_type(2);
  c->set_hostname(name);
  c->set_tcp_sequence(seq);
  emit(std::move(rec), out);
  flush_reply(dir, out, &name);
}

void tls_parser::flush_reply(direction from, record_sink& out, const std::string* cn) {
  if (!reply_.active || reply_.dir != from)
    return;
  reply_.active = false;
  parsed_record rec;
  rec.ts_ns = reply_.ts_ns;
  rec.dir = reply_.dir;
  rec.tcp_seq = reply_.seq;
  v1::SslReply* r = rec.record.mutable_ssl_reply();
  r->set_ssl_version(reply_.hello.version());
  r->set_cipher_suite(reply_.hello.cipher_suite);
  r->set_compression_method(reply_.hello.compression_method);
  if (cn != nullptr && !cn->empty()) {
    r->set_host_type(2);
    r->set_cname(*cn);
  } else if (!sni_.empty()) {
    r->set_host_type(3);
    set_text(r->mutable_cname(), sni_);
  }
  emit(std::move(rec), out);
}

void tls_parser::finish_side(side& s, direction dir, record_sink& out) {
  s.finished = true;
  s.rec_left = 0;
  s.hdr_len = 0;
  reset_handshake(s);
  std::vector<uint8_t>().swap(s.hs);
  flush_reply(dir, out);
  if (sides_[0].finished && sides_[1].finished && state_ != parser_state::violated)
    state_ = parser_state::done;
}

void tls_parser::reset_handshake(side& s) {
  s.hs.clear();
  s.hs_want = 0;
  s.hs_skip = 0;
}

void tls_parser::start_resync(side& s) {
  s.resync = true;
  s.resync_skipped = 0;
  s.hdr_len = 0;
  s.rec_left = 0;
  s.hs_lost = false;
  reset_handshake(s);
}

void tls_parser::gap(direction dir, size_t len) {
  if (state_ == parser_state::done || state_ == parser_state::violated)
    return;
  side& s = sides_[static_cast<size_t>(dir) & 1];
  if (s.finished || len == 0)
    return;
  if (s.rec_left > 0 && len <= s.rec_left) {
    // Inside a record body: the framing survives, a handshake message cut
    // by the gap does not.
    s.rec_left -= len;
    if (s.rec_type == content_handshake || s.rec_type == content_v2_hello) {
      reset_handshake(s);
      s.hs_lost = s.rec_left > 0;
    }
    return;
  }
  start_resync(s);
}

void tls_parser::finish(uint64_t /*ts_ns*/, record_sink& out) {
  if (state_ == parser_state::violated)
    return;
  if (reply_.active)
    flush_reply(reply_.dir, out);
  for (auto& s : sides_) {
    reset_handshake(s);
    std::vector<uint8_t>().swap(s.hs);
    s.finished = true;
  }
}

bool tls_parser::emit(parsed_record&& rec, record_sink& out) {
  if (records_ >= opts_.max_records_per_flow) {
    ++counters_.limit_hits;
    return false;
  }
  ++records_;
  ++counters_.records;
  out.push_back(std::move(rec));
  return true;
}

void tls_parser::set_text(std::string* dst, const std::string& value) {
  if (text::assign_utf8(*dst, value, opts_.max_field))
    ++counters_.truncated_fields;
}


size_t tls_parser::memory_bytes() const {
  return sizeof(*this) + heap_bytes(sides_[0].hs, sides_[1].hs) + heap_bytes(sni_, cn_);
}

} // namespace metaprobe
