// SPDX-License-Identifier: Apache-2.0
#include "parsers/quic/quic_parser.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "parsers/common/field_text.hpp"
#include "parsers/tls/tls_handshake.hpp"

namespace metaprobe {

namespace {

constexpr size_t min_client_initial_datagram = 1200; // RFC 9000 §14.1

} // namespace

protocol_entry quic_protocol_entry() {
  protocol_entry e;
  e.id = app_protocol::quic;
  e.name = "quic";
  e.udp_ports = {443, 80, 8443};
  e.probe = &quic_probe;
  e.make_datagram = &make_quic_parser;
  e.extra_counters = {"key_derivations"};
  return e;
}

bool quic_probe(const uint8_t* data, size_t len, direction /*dir*/) {
  if (data == nullptr)
    return false;
  quic::long_header h;
  return quic::parse_long_header(data, len, h) == quic::header_status::ok &&
         h.type == quic::packet_type::initial;
}

std::unique_ptr<datagram_parser> make_quic_parser(const parser_options& opts,
                                                  parser_counters& counters) {
  return std::make_unique<quic_parser>(opts, counters);
}

bool quic_parser::key_epoch::same(const quic::long_header& h) const {
  return valid && version == h.version && dcid_len == h.dcid_len &&
         std::memcmp(dcid, h.dcid, h.dcid_len) == 0;
}

bool quic_parser::key_epoch::set(const quic::long_header& h) {
  valid = false;
  version = h.version;
  dcid_len = h.dcid_len;
  std::memcpy(dcid, h.dcid, h.dcid_len);
  largest_pn = -1;
  bool derived = false;
  valid = quic::cached_initial_keys(*h.info, h.dcid, h.dcid_len, true, keys, derived);
  return derived;
}

quic_parser::quic_parser(const parser_options& opts, parser_counters& counters)
  : opts_(opts), counters_(counters), stream_(opts.max_buffered, max_crypto_holes) {}

void quic_parser::deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
                          record_sink& out) {
  if (state_ == parser_state::done || state_ == parser_state::violated || data == nullptr)
    return;
  bool opened = false;
  bool quic_like = len > 0 && (data[0] & 0x40) != 0; // fixed bit (short or long header)
  size_t off = 0;
  derived_in_datagram_ = 0;
  while (off < len && state_ != parser_state::done) {
    quic::long_header h;
    const quic::header_status st = quic::parse_long_header(data + off, len - off, h);
    if (st == quic::header_status::not_long)
      break; // a short-header packet or padding: the rest of the datagram
    if (st == quic::header_status::malformed) {
      if (off == 0)
        ++counters_.violations;
      break; // after a packet: padding that looks like a header
    }
    quic_like = true;
    if (st == quic::header_status::unknown_version)
      break; // Version Negotiation or a version without known Initial keys
    if (h.type == quic::packet_type::initial) {
      const bool try_it = dir == direction::client_to_server ||
                          (!client_opened_ && len >= min_client_initial_datagram);
      if (try_it && handle_initial(dir, data + off, h, ts_ns, out))
        opened = true;
    }
    off += h.packet_len;
  }
  if (opened || state_ != parser_state::probing)
    return;
  if (!quic_like && ++bogus_ >= max_bogus_datagrams) {
    state_ = parser_state::violated;
    return;
  }
  if (++quiet_ >= max_quiet_datagrams)
    state_ = parser_state::done; // no client Initial in sight: nothing to learn here
}

bool quic_parser::try_open(const uint8_t* pkt, const quic::long_header& h, key_epoch& e) {
  if (!e.valid)
    return false;
  const quic::open_status st = quic::open_initial(pkt, h, e.keys, e.largest_pn, opened_);
  if (st != quic::open_status::ok)
    return false;
  e.largest_pn = std::max<int64_t>(e.largest_pn, static_cast<int64_t>(opened_.packet_number));
  return true;
}

bool quic_parser::handle_initial(direction dir, const uint8_t* pkt, const quic::long_header& h,
                                 uint64_t ts_ns, record_sink& out) {
  bool ok = false;
  if (epoch_.same(h)) {
    ok = try_open(pkt, h, epoch_);
  } else {
    if (!candidate_.same(h)) {
      // Deriving keys costs far more than anything else here: bounded per
      // datagram and per flow (a datagram of coalesced Initials, each to
      // a new DCID, would otherwise buy a derivation per packet).
      if (derived_in_datagram_ >= max_derivations_per_datagram ||
          derived_in_flow_ >= max_derivations_per_flow) {
        ++counters_.limit_hits;
        return false;
      }
      if (candidate_.set(h)) {
        ++derived_in_datagram_;
        ++derived_in_flow_;
        ++counters_.extra[0]; // key_derivations (cache misses)
      }
    }
    if (try_open(pkt, h, candidate_)) {
      // A new key epoch: the client (re)started its handshake with this DCID
      // (first Initial, or after Retry / Version Negotiation). Its CRYPTO
      // stream starts over at offset 0.
      if (epoch_.valid)
        stream_.clear();
      std::swap(epoch_, candidate_);
      ok = true;
    } else if (epoch_.valid && epoch_.version == h.version) {
      // A later Initial sent to the server's CID under the first keys.
      ok = try_open(pkt, h, epoch_);
    }
  }
  if (!ok) {
    ++counters_.violations; // undecryptable (truncated capture, damaged, other keys)
    return false;
  }
  ++counters_.messages;
  if (dir == direction::client_to_server)
    client_opened_ = true;
  if (state_ == parser_state::probing)
    state_ = parser_state::confirmed;

  frames_.clear();
  if (quic::collect_crypto_frames(opened_.payload.data(), opened_.payload.size(), frames_) !=
      quic::frames_status::ok)
    ++counters_.violations;
  bool refused = false;
  for (const auto& f : frames_)
    if (!stream_.add(f.offset, f.data, f.len))
      refused = true;
  if (refused)
    ++counters_.limit_hits;
  if (!frames_.empty())
    on_crypto(dir, ts_ns, out);
  return true;
}

void quic_parser::on_crypto(direction dir, uint64_t ts_ns, record_sink& out) {
  if (stream_.contiguous() >= 1 && stream_.data()[0] != tls::handshake_client_hello) {
    ++counters_.violations; // a client's first handshake message is its ClientHello
    state_ = parser_state::done;
    return;
  }
  if (stream_.first_message_too_long()) {
    ++counters_.limit_hits;
    state_ = parser_state::done;
    return;
  }
  if (!stream_.first_message_complete())
    return;
  emit(dir, ts_ns, stream_.data(), stream_.first_message_len(), out);
  state_ = parser_state::done;
  stream_.clear();
}

void quic_parser::emit(direction dir, uint64_t ts_ns, const uint8_t* msg, size_t len,
                       record_sink& out) {
  tls::client_hello ch;
  if (tls::parse_client_hello(msg, len, ch) != tls::hs_status::ok) {
    ++counters_.violations;
    return;
  }
  if (text::assign_utf8(host_, ch.sni, opts_.max_field))
    ++counters_.truncated_fields;
  if (opts_.max_records_per_flow == 0) {
    ++counters_.limit_hits;
    return;
  }
  parsed_record rec;
  rec.ts_ns = ts_ns;
  rec.dir = dir;
  v1::Clickstream* c = rec.record.mutable_clickstream();
  c->set_hostname(host_);
  c->set_host_type(4);
  c->set_cipher_suites_len(ch.cipher_suites_len);
  std::string suites;
  const size_t n = std::min(ch.cipher_suites.size(), max_exported_suites);
  suites.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    suites.push_back(static_cast<char>(ch.cipher_suites[i] >> 8));
    suites.push_back(static_cast<char>(ch.cipher_suites[i] & 0xff));
  }
  c->set_cipher_suites(std::move(suites));
  ++counters_.records;
  out.push_back(std::move(rec));
}


size_t quic_parser::memory_bytes() const {
  return sizeof(*this) + stream_.memory_bytes() + heap_bytes(host_) +
         heap_bytes(opened_.header, opened_.payload) + heap_bytes(frames_);
}

} // namespace metaprobe
