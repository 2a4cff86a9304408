// SPDX-License-Identifier: Apache-2.0
#pragma once
// Test-only helpers to run a parser over a corpus capture: a naive pcap
// reader (Ethernet/VLAN/QinQ/MPLS/PPPoE, raw IP, BSD loopback, Linux cooked;
// IPv4/IPv6 with naive fragment reassembly; TCP/UDP), a naive in-order TCP reassembler
// per flow and direction (a hole becomes gap(), old bytes are dropped), and
// a reader for the tshark truth TSV files. Deliberately simple: the real
// capture/classifier pipeline is tested elsewhere.

#include <pcap/pcap.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace corpus {

inline std::string corpus_dir() { return METAPROBE_CORPUS; }

inline bool file_exists(const std::string& p) {
  std::ifstream f(p);
  return f.good();
}

struct packet {
  uint32_t frame = 0; // 1-based frame number
  uint64_t ts_ns = 0;
  uint8_t proto = 0;  // 6 TCP, 17 UDP
  std::array<uint8_t, 16> src{}, dst{};
  uint8_t alen = 0;
  uint16_t sport = 0, dport = 0;
  uint32_t seq = 0;
  uint8_t flags = 0;
  const uint8_t* payload = nullptr;
  size_t len = 0;
};

inline uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t rd32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// TCP/UDP header and payload from the L4 bytes.
inline bool decode_l4(uint8_t proto, const uint8_t* l4, size_t l4n, packet& out) {
  out.proto = proto;
  if (proto == 6) {
    if (l4n < 20)
      return false;
    const size_t doff = (l4[12] >> 4) * 4u;
    if (doff < 20 || doff > l4n)
      return false;
    out.sport = rd16(l4);
    out.dport = rd16(l4 + 2);
    out.seq = rd32(l4 + 4);
    out.flags = l4[13];
    out.payload = l4 + doff;
    out.len = l4n - doff;
    return true;
  }
  if (proto == 17) {
    if (l4n < 8)
      return false;
    out.sport = rd16(l4);
    out.dport = rd16(l4 + 2);
    const size_t ulen = rd16(l4 + 4);
    out.payload = l4 + 8;
    out.len = ulen >= 8 ? std::min(l4n - 8, ulen - 8) : l4n - 8;
    return true;
  }
  return false;
}

// What the IP layer says about a packet.
struct ip_info {
  uint8_t proto = 0;
  bool fragment = false;
  bool more = false;
  uint32_t id = 0;
  size_t frag_off = 0;
  const uint8_t* l4 = nullptr;
  size_t l4n = 0;
};

// Decodes the IP header at p (addresses into out).
inline bool decode_ip(const uint8_t* p, size_t n, packet& out, ip_info& ip) {
  if (n < 1)
    return false;
  const int ver = p[0] >> 4;
  size_t off;
  size_t end;
  if (ver == 4) {
    if (n < 20)
      return false;
    const size_t ihl = (p[0] & 15u) * 4u;
    const size_t total = rd16(p + 2);
    if (ihl < 20 || total < ihl || n < ihl)
      return false;
    const uint16_t frag = rd16(p + 6);
    ip.fragment = (frag & 0x3fff) != 0;
    ip.more = (frag & 0x2000) != 0;
    ip.frag_off = (frag & 0x1fffu) * 8u;
    ip.id = rd16(p + 4);
    ip.proto = p[9];
    std::memcpy(out.src.data(), p + 12, 4);
    std::memcpy(out.dst.data(), p + 16, 4);
    out.alen = 4;
    off = ihl;
    end = std::min(n, total);
  } else if (ver == 6) {
    if (n < 40)
      return false;
    uint8_t proto = p[6];
    std::memcpy(out.src.data(), p + 8, 16);
    std::memcpy(out.dst.data(), p + 24, 16);
    out.alen = 16;
    off = 40;
    end = std::min(n, size_t{40} + rd16(p + 4));
    while (proto == 0 || proto == 43 || proto == 60 || proto == 44) {
      if (off + 8 > end)
        return false;
      if (proto == 44) {
        const uint16_t fo = rd16(p + off + 2);
        ip.fragment = true;
        ip.more = (fo & 1) != 0;
        ip.frag_off = fo & 0xfff8u;
        ip.id = rd32(p + off + 4);
        proto = p[off];
        off += 8;
        continue;
      }
      proto = p[off];
      off += (p[off + 1] + 1u) * 8u;
    }
    ip.proto = proto;
  } else {
    return false;
  }
  if (off > end)
    return false;
  out.proto = ip.proto;
  ip.l4 = p + off;
  ip.l4n = end - off;
  return true;
}

inline bool decode_frame(int linktype, const uint8_t* p, size_t n, packet& out, ip_info& ip) {
  size_t off = 0;
  uint16_t et = 0;
  switch (linktype) {
  case DLT_EN10MB:
    if (n < 14)
      return false;
    et = rd16(p + 12);
    off = 14;
    break;
  case 12:
  case 14:
  case 101:
  case 228:
  case 229:
    return decode_ip(p, n, out, ip);
  case DLT_NULL:
  case DLT_LOOP:
    return n > 4 && decode_ip(p + 4, n - 4, out, ip);
  case DLT_LINUX_SLL:
    if (n < 16)
      return false;
    et = rd16(p + 14);
    off = 16;
    break;
  default:
    return false;
  }
  for (;;) {
    if (et == 0x8100 || et == 0x88a8 || et == 0x9100) {
      if (off + 4 > n)
        return false;
      et = rd16(p + off + 2);
      off += 4;
    } else if (et == 0x8847) {
      while (off + 4 <= n) {
        const bool bos = (p[off + 2] & 1) != 0;
        off += 4;
        if (bos)
          break;
      }
      return off < n && decode_ip(p + off, n - off, out, ip);
    } else if (et == 0x8864) {
      if (off + 8 > n)
        return false;
      const uint16_t ppp = rd16(p + off + 6);
      off += 8;
      if (ppp != 0x21 && ppp != 0x57)
        return false;
      return decode_ip(p + off, n - off, out, ip);
    } else if (et == 0x0800 || et == 0x86dd) {
      return decode_ip(p + off, n - off, out, ip);
    } else {
      return false;
    }
  }
}

// IP fragments of one datagram, by offset.
struct frag_set {
  packet first;               // header fields of the first fragment
  bool have_first = false;
  bool have_last = false;
  size_t total = 0;           // length once the last fragment is known
  std::map<size_t, std::vector<uint8_t>> pieces;
  bool complete() const {
    if (!have_first || !have_last)
      return false;
    size_t at = 0;
    for (const auto& [o, v] : pieces) {
      if (o > at)
        return false;
      at = std::max(at, o + v.size());
    }
    return at >= total;
  }
};

// Calls fn for every TCP/UDP packet of the file; false if it cannot be
// opened. IP fragments are reassembled; a datagram whose fragments never
// all arrive is passed on as its first fragment at the end, the way tshark
// shows an unreassembled datagram.
inline bool for_each_packet(const std::string& path, const std::function<void(const packet&)>& fn) {
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* pc = pcap_open_offline(path.c_str(), err);
  if (pc == nullptr)
    return false;
  const int lt = pcap_datalink(pc);
  pcap_pkthdr* h;
  const u_char* data;
  uint32_t frame = 0;
  std::map<std::tuple<std::array<uint8_t, 16>, std::array<uint8_t, 16>, uint32_t, uint8_t>,
           frag_set>
    frags;
  while (pcap_next_ex(pc, &h, &data) == 1) {
    ++frame;
    packet pk;
    ip_info ip;
    pk.frame = frame;
    pk.ts_ns = uint64_t(h->ts.tv_sec) * 1000000000ull + uint64_t(h->ts.tv_usec) * 1000ull;
    if (!decode_frame(lt, data, h->caplen, pk, ip))
      continue;
    if (!ip.fragment) {
      if (decode_l4(ip.proto, ip.l4, ip.l4n, pk))
        fn(pk);
      continue;
    }
    auto key = std::make_tuple(pk.src, pk.dst, ip.id, ip.proto);
    frag_set& fs = frags[key];
    fs.pieces[ip.frag_off].assign(ip.l4, ip.l4 + ip.l4n);
    if (ip.frag_off == 0) {
      fs.first = pk;
      fs.have_first = true;
    }
    if (!ip.more) {
      fs.have_last = true;
      fs.total = ip.frag_off + ip.l4n;
    }
    if (fs.complete()) {
      std::vector<uint8_t> whole(fs.total);
      for (const auto& [o, v] : fs.pieces)
        std::memcpy(whole.data() + o, v.data(), std::min(v.size(), fs.total - o));
      packet out = fs.first;
      out.frame = frame;
      out.ts_ns = pk.ts_ns;
      if (decode_l4(ip.proto, whole.data(), whole.size(), out))
        fn(out);
      frags.erase(key);
    }
  }
  for (auto& [k, fs] : frags) {
    if (!fs.have_first)
      continue;
    const auto& v = fs.pieces[0];
    packet out = fs.first;
    if (decode_l4(std::get<3>(k), v.data(), v.size(), out))
      fn(out);
  }
  pcap_close(pc);
  return true;
}

// Flow key independent of direction.
struct flow_key {
  uint8_t proto;
  std::array<uint8_t, 16> a, b;
  uint16_t pa, pb;
  bool operator<(const flow_key& o) const {
    return std::tie(proto, a, b, pa, pb) < std::tie(o.proto, o.a, o.b, o.pa, o.pb);
  }
};

// Returns the key and whether the packet goes from endpoint a to endpoint b.
inline flow_key key_of(const packet& p, bool& a_to_b) {
  flow_key k;
  k.proto = p.proto;
  const bool swap = std::tie(p.src, p.sport) > std::tie(p.dst, p.dport);
  k.a = swap ? p.dst : p.src;
  k.b = swap ? p.src : p.dst;
  k.pa = swap ? p.dport : p.sport;
  k.pb = swap ? p.sport : p.dport;
  a_to_b = !swap;
  return k;
}

// In-order TCP bytes of one direction.
struct tcp_dir {
  bool started = false;
  uint32_t next = 0;
  // Calls data(ptr, len, seq) and gap(len) in stream order.
  template <typename Data, typename Gap>
  void feed(const packet& p, Data&& data, Gap&& gap) {
    const bool syn = (p.flags & 0x02) != 0;
    if (!started) {
      // Nothing to anchor on yet; a lone byte is likely a keep-alive probe
      // (sequence one below the real next byte).
      if (!syn && p.len <= 1)
        return;
      started = true;
      next = p.seq + (syn ? 1 : 0);
    } else if (syn) {
      return; // retransmitted SYN
    }
    const uint32_t seq = p.seq + (syn ? 1 : 0);
    if (p.len == 0)
      return;
    const int32_t delta = static_cast<int32_t>(seq - next);
    if (delta > 0) {
      if (delta > (1 << 24)) // nonsense jump: resync on it
        next = seq;
      else
        gap(static_cast<size_t>(delta));
      next = seq;
    }
    size_t skip = delta < 0 ? static_cast<size_t>(-static_cast<int64_t>(delta)) : 0;
    if (skip >= p.len)
      return;
    data(p.payload + skip, p.len - skip, seq + static_cast<uint32_t>(skip));
    next = seq + static_cast<uint32_t>(p.len);
  }
};

// A tshark truth TSV: header names and rows of fields.
struct truth_table {
  std::vector<std::string> cols;
  std::vector<std::vector<std::string>> rows;
  int col(const std::string& name) const {
    for (size_t i = 0; i < cols.size(); ++i)
      if (cols[i] == name)
        return static_cast<int>(i);
    return -1;
  }
  std::string get(size_t row, const std::string& name) const {
    const int c = col(name);
    if (c < 0 || static_cast<size_t>(c) >= rows[row].size())
      return {};
    return rows[row][static_cast<size_t>(c)];
  }
};

inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  out.push_back(cur);
  return out;
}

inline bool read_truth(const std::string& path, truth_table& t) {
  std::ifstream f(path);
  if (!f)
    return false;
  std::string line;
  if (!std::getline(f, line))
    return false;
  t.cols = split(line, '\t');
  while (std::getline(f, line))
    t.rows.push_back(split(line, '\t'));
  return true;
}

// Files of the corpus that have a truth file with this suffix.
inline std::vector<std::string> truth_files(const std::string& suffix) {
  std::vector<std::string> out;
  std::ifstream counts(corpus_dir() + "/truth/COUNTS.tsv");
  std::string line;
  std::getline(counts, line);
  while (std::getline(counts, line)) {
    const auto f = split(line, '\t');
    if (!f.empty() && file_exists(corpus_dir() + "/truth/" + f[0] + suffix))
      out.push_back(f[0]);
  }
  return out;
}

// Multiset comparison helper.
struct score {
  size_t truth = 0, ours = 0, matched = 0;
  void add(const score& o) {
    truth += o.truth;
    ours += o.ours;
    matched += o.matched;
  }
  double recall() const { return truth ? double(matched) / double(truth) : 1.0; }
  double precision() const { return ours ? double(matched) / double(ours) : 1.0; }
};

template <typename T>
score compare(const std::vector<T>& truth, const std::vector<T>& ours,
              std::vector<T>* missing = nullptr, std::vector<T>* extra = nullptr) {
  std::map<T, int> bag;
  for (const auto& t : truth)
    ++bag[t];
  score s;
  s.truth = truth.size();
  s.ours = ours.size();
  for (const auto& o : ours) {
    auto it = bag.find(o);
    if (it != bag.end() && it->second > 0) {
      --it->second;
      ++s.matched;
    } else if (extra) {
      extra->push_back(o);
    }
  }
  if (missing)
    for (const auto& [k, n] : bag)
      for (int i = 0; i < n; ++i)
        missing->push_back(k);
  return s;
}

} // namespace corpus
