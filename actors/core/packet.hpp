// SPDX-License-Identifier: Apache-2.0
#pragma once
// Decoded packet: what metaprobe-capture learns about one frame when it
// decodes L2-L4 once. Plain data, no ownership: `data` points into the
// packet_batch arena the frame was copied into (the one payload copy of the
// hot path). Offsets are relative to `data`.

#include <array>
#include <cstdint>
#include <cstring>

namespace metaprobe {

// An IPv4 (mapped into the first 4 bytes) or IPv6 address, network order.
struct ip_address {
  std::array<uint8_t, 16> bytes{};
  uint8_t family = 0; // 4 or 6, 0 when unset

  static ip_address v4(const uint8_t* p) {
    ip_address a;
    std::memcpy(a.bytes.data(), p, 4);
    a.family = 4;
    return a;
  }
  static ip_address v6(const uint8_t* p) {
    ip_address a;
    std::memcpy(a.bytes.data(), p, 16);
    a.family = 6;
    return a;
  }
  size_t size() const { return family == 6 ? 16 : 4; }
  bool operator==(const ip_address& o) const {
    return family == o.family && bytes == o.bytes;
  }
  bool operator!=(const ip_address& o) const { return !(*this == o); }
};

// L2 context that travels with a flow into the export records.
struct l2_context {
  static constexpr int max_mpls = 8;
  uint8_t src_mac[6] = {};
  uint8_t dst_mac[6] = {};
  uint16_t vlan_id = 0;       // outer VLAN (802.1Q or 802.1ad S-tag), 0 = none
  uint16_t post_vlan_id = 0;  // inner VLAN (QinQ C-tag), 0 = none
  uint8_t mpls_count = 0;     // entries used in mpls[]
  uint32_t mpls[max_mpls] = {}; // raw 32-bit label stack entries, outermost first
  bool has_ethernet = false;  // false for raw-IP link types
};

// Tunnels and encapsulations the decoder sees through (capture/decoder.hpp,
// docs/protocols.md). One counter per kind: capture's decap.<name>.
enum class decap_kind : uint8_t {
  gre = 0,    // GRE v0 (RFC 2784/2890) incl. NVGRE and PPTP's enhanced GRE v1
  erspan,     // ERSPAN type I/II (GRE 0x88be) and III (0x22eb)
  vxlan,      // VXLAN (UDP 4789 and vxlan_ports)
  vxlan_gpe,  // VXLAN-GPE (UDP 4790)
  geneve,     // Geneve (UDP 6081)
  gtpu,       // GTP-U v1 T-PDU (UDP 2152)
  ip_in_ip,   // IPv4/IPv6 in IPv4/IPv6 (IP protocols 4 and 41)
  l2tp,       // L2TPv2 data messages (UDP 1701) with PPP
  teredo,     // Teredo (UDP 3544), when the payload is an exact IPv6 packet
};
constexpr size_t decap_kind_count = 9;

// Which decapsulations decode_packet performs (the `decap` and
// `vxlan_ports` configuration keys). Plain data.
struct decode_options {
  static constexpr uint32_t all_kinds = (1u << decap_kind_count) - 1;
  static constexpr int max_vxlan_ports = 8;
  uint32_t kinds = all_kinds;       // bit (1 << decap_kind) per enabled kind
  uint16_t vxlan_ports[max_vxlan_ports] = {}; // extra VXLAN UDP ports (0 = unused)
  bool enabled(decap_kind k) const { return (kinds >> static_cast<unsigned>(k)) & 1u; }
};

// What the decoder saw of the tunnels around the innermost packet.
struct tunnel_context {
  static constexpr int max_layers = 8; // deeper tunnels: decap_depth_exceeded
  // events (counted by the source: decap.<event>)
  static constexpr uint8_t ev_depth_exceeded = 1; // a tunnel past max_layers was left closed
  static constexpr uint8_t ev_gtpu_control = 2;   // GTP-U echo/error/end marker: not decapsulated
  static constexpr uint8_t ev_l2tp_control = 4;   // L2TP control message: not decapsulated
  static constexpr uint8_t ev_bad_inner = 8;      // a UDP tunnel header carried no valid
                                                  // packet: left a UDP packet
  uint8_t depth = 0;                  // layers decapsulated (0: not tunnelled)
  uint8_t events = 0;                 // ev_* bits
  uint8_t kinds[max_layers] = {};     // decap_kind of each layer, outermost first
  uint16_t erspan_session = 0;        // ERSPAN session id (valid when has_erspan)
  uint16_t erspan_vlan = 0;           // ERSPAN header's VLAN of the mirrored frame
  bool has_erspan = false;
  bool has_vni = false;
  bool has_teid = false;
  uint32_t vni = 0;                   // innermost VXLAN/GPE/Geneve VNI, NVGRE VSID or GRE key
  uint32_t teid = 0;                  // innermost GTP-U TEID (one per direction)
  uint32_t outer_hash = 0;            // symmetric hash of the outermost IP address pair
  uint64_t id = 0;                    // symmetric identity of every layer (0: none)
  ip_address outer_src;               // outermost IP header
  ip_address outer_dst;
};

enum class decode_status : uint8_t {
  ok = 0,            // L3 (and L4 when present) decoded
  non_ip,            // ARP, LLDP, ...: counted, not an error
  truncated,         // capture shorter than a header claims
  malformed,         // impossible header values
  unsupported_link,  // link type not handled
};

// What the decoder fills. Fields past `l4_proto` are valid only when
// status == ok.
struct decoded_packet {
  const uint8_t* data = nullptr; // start of the captured frame
  uint32_t cap_len = 0;          // captured bytes at data
  uint32_t wire_len = 0;         // original length on the wire
  uint64_t ts_ns = 0;            // capture time, ns since epoch

  decode_status status = decode_status::ok;
  l2_context l2;

  uint8_t ip_version = 0;        // 4 or 6
  uint8_t l4_proto = 0;          // IPPROTO_TCP, IPPROTO_UDP, ... (after IPv6 ext headers)
  uint8_t tos = 0;               // IPv4 TOS / IPv6 traffic class
  uint8_t ttl = 0;
  ip_address src;
  ip_address dst;
  uint16_t l3_off = 0;           // offset of the IP header
  uint16_t l3_len = 0;           // IP total length as captured-and-claimed (min of both)
  uint16_t l3_wire_len = 0;      // IP total length as on the wire (min of claimed and
                                 // wire bytes): byte counters of snaplen-cut captures
  uint16_t l4_off = 0;           // offset of the TCP/UDP header (0 if none)
  uint16_t payload_off = 0;      // offset of the L4 payload
  uint16_t payload_len = 0;      // L4 payload bytes present in the capture
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint8_t tcp_flags = 0;
  uint32_t tcp_seq = 0;
  uint32_t tcp_ack = 0;
  uint16_t tcp_window = 0;

  // IP fragmentation. A fragment has no L4 decode unless it is the first one
  // (frag_offset == 0) and holds the L4 header.
  bool is_fragment = false;
  bool more_fragments = false;
  uint16_t frag_offset = 0;      // in bytes
  uint32_t frag_id = 0;          // IPv4 id or IPv6 fragment identification

  uint32_t flow_hash = 0;        // symmetric hash of (addresses, ports, proto, tunnel.id)

  tunnel_context tunnel;         // tunnels decapsulated around the packet above

  const uint8_t* payload() const { return data + payload_off; }
};

} // namespace metaprobe
