// SPDX-License-Identifier: Apache-2.0
#pragma once
// IPv4 / IPv6 fragment reassembly for the classifier stage. Plain C++, no
// CAF, no I/O; one instance per shard, used by one thread.
//
// Feed every decoded_packet with is_fragment set (status ok) to add(). When a
// datagram is complete, add() returns true and writes one contiguous IP
// packet into `out_ip_packet`:
//   IPv4: the first fragment's header (options included) with MF, the
//         fragment offset and the reserved bit cleared (DF kept), total
//         length set and the header checksum recomputed, then the data.
//   IPv6: the first fragment's unfragmentable part (IPv6 header and the
//         extension headers before the fragment header), the fragment header
//         removed (the preceding next-header field takes its value), payload
//         length set, then the data.
// Decode it again with decode_reassembled() (capture/decoder.hpp) or
// decode_packet(..., linktype::raw, ...) and copy the original frame's l2
// context; `out_ip_packet` must outlive that decoded_packet.
//
// Datagrams are keyed by (source, destination, identification, protocol,
// family); for IPv6 the protocol is the fragment header's next header.
//
// Policy (all drops are counted, see ip_reassembly_counters):
//   - Overlaps: a fragment that repeats already received bytes is accepted
//     only when those bytes are identical: for IPv4 any such overlap (benign
//     re-fragmentation, retransmitted fragments), for IPv6 only an exact
//     duplicate (same offset and length, RFC 8200 4.5). Overlapping bytes
//     that differ (IPv4), or any other overlap (IPv6, RFC 5722), abandon the
//     whole datagram; later fragments of it are rejected until it times out.
//     Exact or contained repeats that add nothing count as duplicates.
//   - Invalid fragments (dropped, datagram kept): not ok / not a fragment,
//     fragment data cut by the capture, a non-last fragment whose length is
//     not a multiple of 8 or is 0, data ending beyond 65535 bytes or beyond
//     max_datagram_size.
//   - Inconsistent fragments (datagram abandoned, counted invalid): two last
//     fragments with different ends, data beyond the end given by the last
//     fragment.
//   - Limits: more than max_fragments fragments abandon the datagram; a new
//     datagram when max_datagrams are pending evicts the oldest one; buffered
//     bytes above max_buffered_bytes evict the oldest others, or abandon the
//     datagram itself when it alone is too big.
//   - Timeout: a datagram expires timeout_ns after its first fragment, in
//     expire(now) or when a later fragment with the same key arrives after
//     that time (it then starts a new datagram).
// Memory is bounded by max_datagrams entries and max_buffered_bytes of data.

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

#include "core/packet.hpp"

namespace metaprobe {

struct ip_reassembly_limits {
  size_t max_datagrams = 4096;              // incomplete datagrams held at once
  uint32_t max_datagram_size = 65535;       // bytes of a rebuilt IP packet (<= 65535)
  uint64_t timeout_ns = 30'000'000'000ULL;  // from the first fragment seen
  uint32_t max_fragments = 64;              // fragments per datagram
  size_t max_buffered_bytes = 32u << 20;    // fragment bytes held across datagrams
};

struct ip_reassembly_counters {
  uint64_t fragments = 0;       // fragments fed to add()
  uint64_t reassembled = 0;     // datagrams completed
  uint64_t timed_out = 0;       // incomplete datagrams expired
  uint64_t duplicates = 0;      // repeated fragments that added nothing
  uint64_t overlaps = 0;        // datagrams abandoned for conflicting overlaps
  uint64_t invalid = 0;         // fragments rejected (see policy above)
  uint64_t limit_datagrams = 0; // datagrams evicted: max_datagrams reached
  uint64_t limit_fragments = 0; // datagrams abandoned: max_fragments reached
  uint64_t limit_bytes = 0;     // datagrams evicted/abandoned: max_buffered_bytes
  uint64_t refused = 0;         // fragments of new datagrams refused (set_admit_new)
};

class ip_reassembler {
public:
  explicit ip_reassembler(const ip_reassembly_limits& limits = {});

  // Adds one fragment (a decoded_packet with status ok and is_fragment set;
  // its bytes are copied, the packet need not outlive the call). Returns true
  // when it completed a datagram, which is then in out_ip_packet (replaced);
  // out_ip_packet is left untouched otherwise.
  bool add(const decoded_packet& frag, std::vector<uint8_t>& out_ip_packet);

  // Drops datagrams whose first fragment is older than now_ns - timeout_ns.
  void expire(uint64_t now_ns);

  // While false, a fragment of a datagram not in reassembly yet is refused
  // (counted): the memory budget is short (core/memory_budget.hpp).
  void set_admit_new(bool admit) { admit_new_ = admit; }

  // Drops everything pending (end of input); not counted as timed out.
  void clear();

  size_t pending() const { return index_.size(); }
  size_t buffered_bytes() const { return buffered_; }
  const ip_reassembly_counters& counters() const { return counters_; }
  const ip_reassembly_limits& limits() const { return limits_; }

private:
  struct key {
    std::array<uint8_t, 16> src{};
    std::array<uint8_t, 16> dst{};
    uint32_t id = 0;
    uint8_t proto = 0;
    uint8_t family = 0;
    uint64_t tunnel = 0; // tunnel_context::id: fragments of different tunnels never mix
    bool operator==(const key& o) const {
      return id == o.id && proto == o.proto && family == o.family && tunnel == o.tunnel &&
             src == o.src && dst == o.dst;
    }
  };
  struct key_hash {
    size_t operator()(const key& k) const;
  };
  struct range {
    uint32_t begin;
    uint32_t end;
  };
  struct datagram {
    key k;
    uint64_t first_ts = 0;
    std::vector<uint8_t> data;  // fragmentable part, at its offsets
    std::vector<range> frags;   // fragments received, sorted by begin
    std::vector<uint8_t> head;  // header of the offset-0 fragment
    uint32_t nh_pos = 0;        // IPv6: next-header byte in head to patch
    uint32_t total = 0;         // data length, known once the last fragment came
    bool have_last = false;
    bool have_head = false;
    bool abandoned = false;
    uint8_t frag_nh = 0;        // IPv6: next header of the fragmentable part
  };
  using list_t = std::list<datagram>;

  // A fragment as parsed from the packet.
  struct piece {
    key k;
    const uint8_t* ip = nullptr; // IP header
    uint32_t head_len = 0;       // IPv4 header / IPv6 part before the fragment header
    uint32_t nh_pos = 0;         // IPv6: offset of the next-header byte pointing at it
    uint8_t frag_nh = 0;
    const uint8_t* bytes = nullptr; // fragment data
    uint32_t offset = 0;
    uint32_t len = 0;
    bool more = false;
  };

  bool parse(const decoded_packet& frag, piece& p) const;
  void erase(list_t::iterator it);
  void abandon(datagram& d);
  size_t footprint(const datagram& d) const { return d.data.capacity() + d.head.capacity(); }
  bool make_room(size_t need, const datagram* keep);
  bool complete(const datagram& d) const;
  void build(const datagram& d, std::vector<uint8_t>& out) const;

  ip_reassembly_limits limits_;
  ip_reassembly_counters counters_;
  list_t order_; // oldest first
  std::unordered_map<key, list_t::iterator, key_hash> index_;
  size_t buffered_ = 0;
  bool admit_new_ = true;
};

} // namespace metaprobe
