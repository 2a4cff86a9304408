// SPDX-License-Identifier: Apache-2.0
#pragma once
// Synthetic decoded packets for classifier tests: decoded_packet fields are
// filled directly, payload bytes live in the batch arena.

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "capture/decoder.hpp"
#include "core/stream.hpp"

namespace metaprobe::test {

constexpr uint8_t fin = 0x01, syn = 0x02, rst = 0x04, psh = 0x08, ack = 0x10;
constexpr uint64_t ms = 1'000'000ull;
constexpr uint64_t sec = 1'000'000'000ull;

inline ip_address v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  uint8_t x[4] = {a, b, c, d};
  return ip_address::v4(x);
}

struct endpoint_pair {
  ip_address a = v4(10, 0, 0, 1);
  ip_address b = v4(10, 0, 0, 2);
  uint16_t pa = 40000;
  uint16_t pb = 80;
  uint8_t proto = 6;
};

// Collects packets, then builds one packet_batch whose packets point into
// its arena.
class batch_builder {
public:
  // A packet from (src, sport) to (dst, dport).
  decoded_packet& add(const ip_address& src, uint16_t sport, const ip_address& dst,
                      uint16_t dport, uint8_t proto, uint64_t ts_ns, const std::string& payload,
                      uint8_t flags = 0, uint32_t seq = 0, uint32_t ackn = 0) {
    decoded_packet p;
    p.status = decode_status::ok;
    p.ts_ns = ts_ns;
    p.ip_version = src.family;
    p.l4_proto = proto;
    p.src = src;
    p.dst = dst;
    p.sport = sport;
    p.dport = dport;
    p.tcp_flags = flags;
    p.tcp_seq = seq;
    p.tcp_ack = ackn;
    p.tos = 0;
    p.ttl = 64;
    uint16_t hdr = static_cast<uint16_t>((src.family == 6 ? 40 : 20) + (proto == 6 ? 20 : 8));
    p.l3_off = 0;
    p.l3_len = static_cast<uint16_t>(hdr + payload.size());
    p.l3_wire_len = p.l3_len;
    p.l4_off = static_cast<uint16_t>(src.family == 6 ? 40 : 20);
    p.payload_off = hdr;
    p.payload_len = static_cast<uint16_t>(payload.size());
    p.cap_len = p.l3_len;
    p.wire_len = p.l3_len;
    p.flow_hash = flow_hash_of(src, dst, sport, dport, proto);
    pkts_.push_back(p);
    frames_.push_back(std::string(hdr, '\0') + payload);
    return pkts_.back();
  }
  decoded_packet& tcp(const endpoint_pair& e, bool from_a, uint64_t ts_ns, uint8_t flags,
                      uint32_t seq, const std::string& payload = {}, uint32_t ackn = 0) {
    return from_a ? add(e.a, e.pa, e.b, e.pb, 6, ts_ns, payload, flags, seq, ackn)
                  : add(e.b, e.pb, e.a, e.pa, 6, ts_ns, payload, flags, seq, ackn);
  }
  decoded_packet& udp(const endpoint_pair& e, bool from_a, uint64_t ts_ns,
                      const std::string& payload) {
    return from_a ? add(e.a, e.pa, e.b, e.pb, 17, ts_ns, payload)
                  : add(e.b, e.pb, e.a, e.pa, 17, ts_ns, payload);
  }
  // A frame with a status other than ok.
  void bad(decode_status st, uint64_t ts_ns) {
    decoded_packet p;
    p.status = st;
    p.ts_ns = ts_ns;
    pkts_.push_back(p);
    frames_.emplace_back();
  }
  // An already decoded packet over raw bytes (e.g. a real IP fragment).
  void raw(const std::vector<uint8_t>& ip, uint64_t ts_ns) {
    decoded_packet p;
    raw_.push_back(ip);
    pkts_.push_back(p);
    frames_.emplace_back(reinterpret_cast<const char*>(ip.data()), ip.size());
    raw_ts_.push_back({pkts_.size() - 1, ts_ns});
  }

  packet_batch_ptr build() {
    auto b = std::make_shared<packet_batch>();
    size_t total = 0;
    for (auto& f : frames_)
      total += f.size();
    b->arena.resize(total + 1);
    size_t off = 0;
    b->packets = pkts_;
    for (size_t i = 0; i < pkts_.size(); ++i) {
      std::memcpy(b->arena.data() + off, frames_[i].data(), frames_[i].size());
      b->packets[i].data = b->arena.data() + off;
      off += frames_[i].size();
    }
    for (auto& [idx, ts] : raw_ts_) {
      auto& p = b->packets[idx];
      decode_packet(p.data, static_cast<uint32_t>(frames_[idx].size()),
                    static_cast<uint32_t>(frames_[idx].size()), ts, linktype::raw, p);
    }
    pkts_.clear();
    frames_.clear();
    raw_.clear();
    raw_ts_.clear();
    return b;
  }

private:
  std::vector<decoded_packet> pkts_;
  std::vector<std::string> frames_;
  std::vector<std::vector<uint8_t>> raw_;
  std::vector<std::pair<size_t, uint64_t>> raw_ts_;
};

// Raw IPv4 packet bytes (no options) carrying `l4` with protocol `proto`,
// fragment fields as given (offset in bytes, multiple of 8).
inline std::vector<uint8_t> ipv4_packet(const ip_address& src, const ip_address& dst, uint8_t proto,
                                        const std::vector<uint8_t>& l4, uint16_t id,
                                        uint16_t frag_off, bool more) {
  std::vector<uint8_t> p(20 + l4.size());
  p[0] = 0x45;
  uint16_t tot = static_cast<uint16_t>(p.size());
  p[2] = static_cast<uint8_t>(tot >> 8);
  p[3] = static_cast<uint8_t>(tot);
  p[4] = static_cast<uint8_t>(id >> 8);
  p[5] = static_cast<uint8_t>(id);
  uint16_t ff = static_cast<uint16_t>((more ? 0x2000 : 0) | (frag_off / 8));
  p[6] = static_cast<uint8_t>(ff >> 8);
  p[7] = static_cast<uint8_t>(ff);
  p[8] = 64;
  p[9] = proto;
  std::memcpy(&p[12], src.bytes.data(), 4);
  std::memcpy(&p[16], dst.bytes.data(), 4);
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2)
    sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  uint16_t ck = static_cast<uint16_t>(~sum);
  p[10] = static_cast<uint8_t>(ck >> 8);
  p[11] = static_cast<uint8_t>(ck);
  std::memcpy(p.data() + 20, l4.data(), l4.size());
  return p;
}

inline std::vector<uint8_t> udp_header_and_payload(uint16_t sport, uint16_t dport,
                                                   const std::string& payload) {
  std::vector<uint8_t> u(8 + payload.size());
  uint16_t len = static_cast<uint16_t>(u.size());
  u[0] = static_cast<uint8_t>(sport >> 8);
  u[1] = static_cast<uint8_t>(sport);
  u[2] = static_cast<uint8_t>(dport >> 8);
  u[3] = static_cast<uint8_t>(dport);
  u[4] = static_cast<uint8_t>(len >> 8);
  u[5] = static_cast<uint8_t>(len);
  std::memcpy(u.data() + 8, payload.data(), payload.size());
  return u;
}

} // namespace metaprobe::test
