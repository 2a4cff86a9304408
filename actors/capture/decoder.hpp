// SPDX-License-Identifier: Apache-2.0
#pragma once
// L2-L4 decoder of metaprobe-capture: turns one captured frame into a
// decoded_packet (core/packet.hpp). Plain C++: no allocation, no exceptions,
// no I/O, no globals; safe on any input (every read is bounds-checked against
// cap_len). Thread-safe (pure function).
//
// Link types (pcap DLT values, see linktype constants below):
//   EN10MB 1, RAW 12/14/101, LINUX_SLL 113, LINUX_SLL2 276, NULL 0, LOOP 108,
//   IPV4 228, IPV6 229, PPP 9, PPP_HDLC/PPP_SERIAL 50, C_HDLC 104.
//
// L2 inside those: Ethernet II, 802.3 LLC/SNAP (OUI 0), 802.1Q (0x8100) and
// 802.1ad/QinQ tags (0x88a8, 0x9100; outer tag -> l2.vlan_id, the next one ->
// l2.post_vlan_id, further tags skipped), MPLS unicast/multicast (0x8847,
// 0x8848; raw label stack entries into l2.mpls up to l2_context::max_mpls,
// deeper entries skipped; after bottom-of-stack the first nibble picks IPv4
// (4), IPv6 (6) or an Ethernet pseudowire with control word (0)), PPPoE
// session (0x8864) with PPP IPv4/IPv6/MPLS, Arista timestamp trailer (0xd28b).
// For a frame carried in an Ethernet pseudowire the MAC addresses are those
// of the innermost Ethernet header (the hosts of the IP packet); VLAN tags of
// all Ethernet headers count, outermost first.
//
// Status (decoded_packet::status):
//   ok          L3 decoded, and L4 when present (first/non-fragments).
//   non_ip      not IPv4/IPv6 (ARP, LLDP, unknown ethertype/MPLS payload...).
//   truncated   the capture ends inside a header the decoder needs
//               (L2 header, IP header incl. IPv4 options / IPv6 extension
//               headers, TCP fixed 20 bytes, UDP 8 bytes). TCP options cut by
//               the snap length are tolerated (status ok, payload_len 0).
//   malformed   impossible values: bad IP version, IHL < 5, IPv4 total length
//               below the header, IPv6 ext header running past the payload
//               length, more than max_ipv6_ext_headers extension headers,
//               TCP data offset < 5 or beyond the IP payload, UDP length 1..7.
//   unsupported_link  link type not in the list above.
// Fields filled before the failing header stay valid for diagnostics (e.g.
// addresses of a packet with a truncated TCP header), but consumers should
// use them only when status == ok.
//
// Lengths: l3_len = min(IP total length, captured bytes after l3_off), so
// Ethernet padding is never counted and payload_off + payload_len never runs
// past cap_len or the IP total length. l3_wire_len = min(IP total length,
// wire bytes after l3_off): the IP length the wire carried, for byte counters
// of snap-length-limited captures. An IPv4 total length above the captured
// bytes is accepted (l3_len uses the captured bytes). Frames longer than
// 65535 bytes are decoded as if cut at 65535 (all offsets are 16 bit).
//
// L4: TCP and UDP fill ports, payload_off/len (and the TCP fields). A UDP
// length of 0 means "the rest of the IP payload" (GSO/jumbogram); a UDP length
// above the IP payload is clamped to it. Other protocols (ICMP, GRE, ESP...)
// get l4_proto, l4_off = payload_off = start of their header, payload_len =
// their bytes, no ports. IPv6 extension headers (0, 43, 44, 60, 51) are walked
// up to max_ipv6_ext_headers; ESP (50) and No-Next-Header (59) end the walk
// and become l4_proto.
//
// Fragments: IPv4 MF or offset != 0, or an IPv6 fragment header that is not
// atomic (offset 0 and M=0 is an atomic fragment, RFC 6946: decoded as a
// normal packet with frag_id set). is_fragment, more_fragments, frag_offset
// (bytes), frag_id are set. Only the first fragment (offset 0) gets L4
// decoded, when its L4 header fits inside the fragment and is valid (else it
// is treated like a later fragment: ok, data only); a non-first fragment
// has l4_off = 0, no ports, l4_proto = IPv4 protocol / the IPv6 fragment
// header's next header, and payload_off/payload_len = its fragment data.
// frag_id holds the IPv4 identification of every IPv4 packet.
//
// Tunnels (decode_options picks the kinds; all by default). After the IP/L4
// decode, a packet that is not a fragment and whose payload starts with a
// tunnel header is opened and what it carries is decoded in its place, up to
// tunnel_context::max_layers layers (deeper: left closed, counted as
// ev_depth_exceeded). The packet's fields then describe the innermost packet;
// out.tunnel keeps the layers (kinds, outermost addresses, VNI/key, TEID,
// ERSPAN session and VLAN) and a symmetric identity (tunnel.id: each layer's
// address pair, kind and shared key; 0 when no layer has one) that is mixed
// into flow_hash, so equal inner 5-tuples of different tunnels make
// different flows.
//   GRE (IP proto 47) v0 with checksum/key/sequence/RFC 1701 routing; payload
//     IPv4, IPv6, MPLS, Transparent Ethernet Bridging (NVGRE too), PPP;
//     v1 (PPTP) with PPP. The GRE key is part of the identity (PPTP's call id
//     is not: it differs per direction).
//   ERSPAN type I (0x88be, no S bit: no header), II (0x88be with S: 8-byte
//     header) and III (0x22eb: 12 bytes + the 8-byte platform sub-header when
//     O is set; frame type Ethernet or IP). Session id in the identity; its
//     VLAN becomes l2.vlan_id when no Ethernet header had a tag.
//   VXLAN (UDP dport 4789 and decode_options::vxlan_ports; I flag required),
//   VXLAN-GPE (4790; next protocol IPv4/IPv6/Ethernet/MPLS, NSH not decoded),
//   Geneve (6081; options skipped; Ethernet, IPv4, IPv6, MPLS): VNI in the
//     identity.
//   GTP-U v1 (UDP dport 2152): T-PDU with sequence/N-PDU/extension headers,
//     inner IP; the TEID is kept (tunnel.teid) but is not in the identity (it
//     differs per direction). Other message types (echo, error indication,
//     end marker) stay UDP packets and set ev_gtpu_control.
//   IP-in-IP: protocol 4 (IPv4) and 41 (IPv6: 6in4, 6to4, IPv6-in-IPv6) in
//     IPv4 or IPv6. With IPv4 inside (IPIP, DS-Lite) the outer pair is in the
//     identity; with IPv6 inside it is not (global addresses; 6to4 replies
//     come back through another relay), nor for Teredo.
//   L2TPv2 (UDP 1701 either side) data messages with PPP; control messages
//     stay UDP packets and set ev_l2tp_control; L2TPv3 is not decoded.
//   Teredo (UDP 3544 either side): only when, after the optional
//     authentication and origin indications, an IPv6 header fills the
//     datagram exactly.
// A header that does not validate leaves the packet as it is (an ordinary
// UDP/GRE/IP packet). A GRE or IP-in-IP tunnel whose inner packet is cut or
// broken gives the inner status (truncated, malformed, non_ip); a UDP tunnel
// (found by its port) whose inner packet is cut or broken (or, for L2TP, not
// IP) stays the UDP packet it also is, with ev_bad_inner; non-IP inside the
// other UDP tunnels (ARP in VXLAN) is non_ip. The inner
// packet ends where the tunnel payload ends (bytes after it are not inner
// data). A fragmented outer packet is not opened: IP reassembly
// (decode_reassembled) opens it.
//
// flow_hash (see flow_hash_of): symmetric over the two endpoints. Each
// endpoint (address, port) folds into a 64-bit key (the two 64-bit halves of
// the address XORed, one rotated by 32; the port in the top 16 bits; exact
// for IPv4); the two keys are ordered (min, max) so both directions give the
// same pair; then h = fmix64(min * golden_ratio_64 ^ max ^ proto << 32 ^
// family << 40) with the murmur3 64-bit finaliser, folded to 32 bits
// (h ^ h >> 32): every bit of the result depends on every input bit, so any
// bit range serves as a shard index. For IP fragments (first one
// included) ports and proto are taken as 0, so every fragment of a datagram
// hashes alike (they can only be told apart after reassembly); the
// reassembled packet, decoded again, gets the full 5-tuple hash. flow_hash
// is 0 when status != ok.

#include <cstddef>
#include <cstdint>

#include "core/packet.hpp"

namespace metaprobe {

// pcap link-layer header types (DLT_* values as stored in capture files).
namespace linktype {
constexpr int null_bsd = 0;     // DLT_NULL: 4-byte address family, host order
constexpr int en10mb = 1;       // Ethernet
constexpr int ppp = 9;          // DLT_PPP
constexpr int raw_12 = 12;      // DLT_RAW (some BSDs)
constexpr int raw_14 = 14;      // DLT_RAW (OpenBSD)
constexpr int ppp_hdlc = 50;    // DLT_PPP_SERIAL
constexpr int raw = 101;        // LINKTYPE_RAW
constexpr int c_hdlc = 104;     // Cisco HDLC
constexpr int loop = 108;       // DLT_LOOP: address family, network order
constexpr int linux_sll = 113;
constexpr int ipv4 = 228;
constexpr int ipv6 = 229;
constexpr int linux_sll2 = 276;
} // namespace linktype

// Number of decode_status values (for counter arrays indexed by status).
constexpr size_t decode_status_count = 5;

// Limit on IPv6 extension headers walked before the packet counts as
// malformed.
constexpr int max_ipv6_ext_headers = 8;

// Decodes one frame into `out` (every field is overwritten; out.data = data).
// Returns out.status.
decode_status decode_packet(const uint8_t* data, uint32_t cap_len,
                            uint32_t wire_len, uint64_t ts_ns, int linktype,
                            decoded_packet& out, const decode_options& opts = {});

// Decodes an IP packet rebuilt by IP reassembly (classifier/ip_reassembly.hpp)
// as a raw-IP frame, keeping the original frame's L2 context, tunnel context
// and timestamp (taken from `original`, typically the fragment that completed
// it), and opening any tunnel it carries (further layers add to the context).
// out.data points into `ip`, which must outlive `out`.
decode_status decode_reassembled(const uint8_t* ip, uint32_t len,
                                 const decoded_packet& original, decoded_packet& out,
                                 const decode_options& opts = {});

// The symmetric flow hash used by decode_packet (documented above).
// flow_hash_of(a, b, pa, pb, p, t) == flow_hash_of(b, a, pb, pa, p, t).
uint32_t flow_hash_of(const ip_address& a, const ip_address& b, uint16_t port_a,
                      uint16_t port_b, uint8_t proto, uint64_t tunnel_id = 0);

// Which worker shard a decoded packet belongs to (any bits of it): the
// symmetric hash of its address pair, or of the outermost tunnel's address
// pair for a tunnelled packet, so the fragments of a tunnel packet (which
// carry only outer addresses) meet its whole packets in one shard. 0 when
// status != ok.
uint32_t shard_hash_of(const decoded_packet& p);

// True when decode_packet understands `linktype`.
bool linktype_supported(int linktype);

// "ok", "non_ip", "truncated", "malformed", "unsupported_link".
const char* to_string(decode_status s);

} // namespace metaprobe
