// SPDX-License-Identifier: Apache-2.0
// Decoder against tshark on the public corpus: for every capture with a
// truth/<file>.l2l3.tsv, the listed frames are decoded and compared field by
// field (frame.cap_len, VLAN ids, MPLS labels, IPv4/IPv6 addresses, IPv4 id,
// MF flag and fragment offset, IPv6 fragment header, TCP presence). tcp.seq
// in the truth is relative, so only its presence is compared. Where tshark
// shows more than one IP header (tunnels, ICMP errors quoting a packet) only
// the outer one is compared, or, where the decoder opened a tunnel, the
// outermost one with the tunnel's outer addresses and the innermost one with
// the decoded packet; MPLS/TCP columns (which may belong to the inner packet)
// are skipped, and so is TCP presence on IP fragments (tshark
// shows the reassembled TCP segment on the last fragment). Fails below 99 %
// agreement.
//
// Also: every malformed-* / *truncated* capture is read end to end.

#include <doctest/doctest.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "capture/pcap_source.hpp"

using namespace metaprobe;

namespace {

const std::string corpus = METAPROBE_CORPUS;

bool exists(const std::string& p) {
  std::ifstream f(p);
  return f.good();
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      names.emplace_back(e->d_name);
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

std::vector<std::string> split(const std::string& s, const char* seps) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (std::strchr(seps, c)) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  out.push_back(cur);
  return out;
}

std::vector<std::string> values(const std::string& s) {
  if (s.empty())
    return {};
  return split(s, "|,");
}

std::string addr_str(const ip_address& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(a.family == 6 ? AF_INET6 : AF_INET, a.bytes.data(), buf, sizeof buf);
  return buf;
}

// What the comparison needs of one decoded frame.
struct frame_info {
  uint32_t cap_len = 0;
  decode_status st = decode_status::ok;
  uint8_t ip_version = 0;
  ip_address src, dst;
  uint16_t vlan = 0, post_vlan = 0;
  std::vector<uint32_t> labels;
  bool is_fragment = false, mf = false;
  uint32_t frag_offset = 0;
  uint32_t frag_id = 0;
  bool tcp = false;
  uint8_t tunnels = 0;           // layers the decoder opened
  ip_address outer_src, outer_dst; // the outermost IP header when tunnels > 0
};

std::vector<frame_info> read_all(const std::string& path, std::string& err) {
  std::vector<frame_info> frames;
  auto src = pcap_source::open_file(path, err);
  if (!src)
    return frames;
  while (!src->eof()) {
    packet_batch b;
    const auto n = src->next_batch(b, 256);
    if (n < 0) {
      err = src->error();
      break;
    }
    for (const auto& p : b.packets) {
      frame_info f;
      f.cap_len = p.cap_len;
      f.st = p.status;
      f.ip_version = p.ip_version;
      f.src = p.src;
      f.dst = p.dst;
      f.vlan = p.l2.vlan_id;
      f.post_vlan = p.l2.post_vlan_id;
      for (int i = 0; i < p.l2.mpls_count; ++i)
        f.labels.push_back(p.l2.mpls[i] >> 12);
      f.is_fragment = p.is_fragment;
      f.mf = p.more_fragments;
      f.frag_offset = p.frag_offset;
      f.frag_id = p.frag_id;
      f.tcp = p.status == decode_status::ok && p.l4_proto == 6 && p.l4_off != 0;
      f.tunnels = p.tunnel.depth;
      f.outer_src = p.tunnel.outer_src;
      f.outer_dst = p.tunnel.outer_dst;
      frames.push_back(f);
    }
  }
  return frames;
}

struct tally {
  size_t compared = 0;
  size_t matched = 0;
  std::vector<std::string> mismatches;
};

void compare(tally& t, const std::string& where, const std::string& field,
             const std::string& expected, const std::string& got) {
  ++t.compared;
  if (expected == got) {
    ++t.matched;
    return;
  }
  t.mismatches.push_back(where + " " + field + ": tshark '" + expected + "' decoder '" + got + "'");
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v)
    s += (s.empty() ? "" : "|") + x;
  return s;
}

uint32_t parse_num(const std::string& s) { return static_cast<uint32_t>(std::stoul(s, nullptr, 0)); }

} // namespace

TEST_CASE("corpus: decoder agrees with tshark on L2/L3 fields") {
  if (!exists(corpus + "/MANIFEST.tsv")) {
    MESSAGE("corpus not found at " << corpus << ": skipped");
    return;
  }
  tally total;
  size_t files = 0;
  for (const auto& name : list_dir(corpus + "/truth")) {
    if (!ends_with(name, ".pcap.l2l3.tsv"))
      continue;
    const std::string pcap_name = name.substr(0, name.size() - std::string(".l2l3.tsv").size());
    const std::string pcap_path = corpus + "/" + pcap_name;
    if (!exists(pcap_path))
      continue;
    std::string err;
    const auto frames = read_all(pcap_path, err);
    INFO(pcap_name << ": " << err);
    REQUIRE_FALSE(frames.empty());
    ++files;

    std::ifstream in(corpus + "/truth/" + name);
    std::string line;
    std::getline(in, line);
    const auto header = split(line, "\t");
    std::map<std::string, size_t> col;
    for (size_t i = 0; i < header.size(); ++i)
      col[header[i]] = i;
    tally t;
    while (std::getline(in, line)) {
      if (line.empty())
        continue;
      const auto cells = split(line, "\t");
      auto cell = [&](const char* c) -> std::string {
        auto it = col.find(c);
        return it != col.end() && it->second < cells.size() ? cells[it->second] : std::string();
      };
      const uint32_t num = parse_num(cell("frame.number"));
      const std::string where = pcap_name + "#" + std::to_string(num);
      if (num == 0 || num > frames.size()) {
        compare(t, where, "frame", "present", "missing");
        continue;
      }
      const frame_info& f = frames[num - 1];
      compare(t, where, "frame.cap_len", cell("frame.cap_len"), std::to_string(f.cap_len));

      // VLAN: 802.1ad tags are outer, 802.1Q after them; the decoder keeps two.
      std::vector<std::string> tags = values(cell("ieee8021ad.id"));
      for (const auto& v : values(cell("vlan.id")))
        tags.push_back(v);
      tags.erase(std::remove(tags.begin(), tags.end(), "0"), tags.end());
      if (tags.size() > 2)
        tags.resize(2);
      std::vector<std::string> ours;
      if (f.vlan)
        ours.push_back(std::to_string(f.vlan));
      if (f.post_vlan)
        ours.push_back(std::to_string(f.post_vlan));
      compare(t, where, "vlan", join(tags), join(ours));

      const auto v4src = values(cell("ip.src"));
      const auto v6src = values(cell("ipv6.src"));
      const bool single_ip = v4src.size() + v6src.size() <= 1;
      if (single_ip) {
        auto labels = values(cell("mpls.label"));
        if (labels.size() > static_cast<size_t>(l2_context::max_mpls))
          labels.resize(l2_context::max_mpls);
        std::vector<std::string> ol;
        for (auto l : f.labels)
          ol.push_back(std::to_string(l));
        compare(t, where, "mpls.label", join(labels), join(ol));
        // tshark reassembles fragments and shows TCP on the last one: skip them
        const auto mf = values(cell("ip.flags.mf"));
        const auto fo = values(cell("ip.frag_offset"));
        const bool frag = (!mf.empty() && mf[0] == "1") || (!fo.empty() && fo[0] != "0") ||
                          !values(cell("ipv6.fraghdr.ident")).empty();
        if (!frag)
          compare(t, where, "tcp", cell("tcp.seq").empty() ? "no" : "yes", f.tcp ? "yes" : "no");
      }
      // Family present: compare the one the decoder found when tshark shows both.
      const bool want4 = !v4src.empty() && (v6src.empty() || f.ip_version != 6);
      const bool want6 = !v6src.empty() && (v4src.empty() || f.ip_version == 6);
      compare(t, where, "ip.version",
              want4 ? "4" : want6 ? "6" : "none",
              f.ip_version == 4 ? "4" : f.ip_version == 6 ? "6" : "none");
      // The tunnel's outermost header is tshark's first of its family.
      if (f.tunnels > 0) {
        const bool outer6 = f.outer_src.family == 6;
        const auto osrc = outer6 ? v6src : v4src;
        const auto odst = values(cell(outer6 ? "ipv6.dst" : "ip.dst"));
        if (!osrc.empty() && !odst.empty()) {
          compare(t, where, "outer.src", osrc[0], addr_str(f.outer_src));
          compare(t, where, "outer.dst", odst[0], addr_str(f.outer_dst));
        }
      }
      // The decoded packet: tshark's first IP header, or its last of the
      // family when the decoder opened a tunnel.
      auto pick = [&](const std::vector<std::string>& v) -> const std::string& {
        return f.tunnels > 0 ? v.back() : v.front();
      };
      if (want4 && f.ip_version == 4) {
        compare(t, where, "ip.src", pick(v4src), addr_str(f.src));
        compare(t, where, "ip.dst", pick(values(cell("ip.dst"))), addr_str(f.dst));
        const auto ids = values(cell("ip.id"));
        if (!ids.empty())
          compare(t, where, "ip.id", std::to_string(parse_num(pick(ids))), std::to_string(f.frag_id));
        const auto mf = values(cell("ip.flags.mf"));
        if (!mf.empty())
          compare(t, where, "ip.flags.mf", pick(mf), f.mf ? "1" : "0");
        const auto fo = values(cell("ip.frag_offset"));
        if (!fo.empty())
          compare(t, where, "ip.frag_offset", std::to_string(parse_num(pick(fo)) * 8),
                  std::to_string(f.frag_offset));
      }
      if (want6 && f.ip_version == 6) {
        compare(t, where, "ipv6.src", pick(v6src), addr_str(f.src));
        compare(t, where, "ipv6.dst", pick(values(cell("ipv6.dst"))), addr_str(f.dst));
        const auto ident = values(cell("ipv6.fraghdr.ident"));
        if (!ident.empty() && v6src.size() == 1) {
          compare(t, where, "ipv6.fraghdr.ident", std::to_string(parse_num(ident[0])),
                  std::to_string(f.frag_id));
          const auto off = values(cell("ipv6.fraghdr.offset"));
          const auto more = values(cell("ipv6.fraghdr.more"));
          const uint32_t eo = off.empty() ? 0 : parse_num(off[0]) * 8;
          const bool em = !more.empty() && more[0] == "1";
          if (eo != 0 || em) { // atomic fragments are not fragments for the decoder
            compare(t, where, "ipv6.fraghdr.offset", std::to_string(eo),
                    std::to_string(f.frag_offset));
            compare(t, where, "ipv6.fraghdr.more", em ? "1" : "0", f.mf ? "1" : "0");
          }
        }
      }
    }
    if (!t.mismatches.empty())
      MESSAGE(pcap_name << ": " << t.mismatches.size() << " mismatches of " << t.compared
                        << " fields");
    total.compared += t.compared;
    total.matched += t.matched;
    total.mismatches.insert(total.mismatches.end(), t.mismatches.begin(), t.mismatches.end());
  }
  REQUIRE(files > 0);
  const double agreement =
      total.compared ? static_cast<double>(total.matched) / static_cast<double>(total.compared) : 0;
  MESSAGE("corpus: " << files << " files, " << total.compared << " fields, agreement "
                     << agreement * 100 << " %");
  for (size_t i = 0; i < total.mismatches.size() && i < 20; ++i)
    MESSAGE(total.mismatches[i]);
  CHECK(total.compared > 5000);
  CHECK(agreement >= 0.99);
}

TEST_CASE("corpus: every capture decodes end to end, broken ones included") {
  if (!exists(corpus + "/MANIFEST.tsv")) {
    MESSAGE("corpus not found at " << corpus << ": skipped");
    return;
  }
  size_t broken = 0;
  uint64_t packets = 0, ok = 0;
  for (const auto& name : list_dir(corpus)) {
    if (!ends_with(name, ".pcap") && !ends_with(name, ".pcapng"))
      continue;
    const bool is_broken = name.rfind("malformed-", 0) == 0 ||
                           name.find("truncated") != std::string::npos;
    std::string err;
    auto src = pcap_source::open_file(corpus + "/" + name, err);
    INFO(name << ": " << err);
    REQUIRE(src);
    int calls = 0;
    while (!src->eof()) {
      packet_batch b;
      const auto n = src->next_batch(b, 64);
      REQUIRE(++calls < 1000000); // no endless loop
      if (n < 0)
        break;
      for (const auto& p : b.packets) {
        if (p.status == decode_status::ok) {
          REQUIRE(static_cast<size_t>(p.payload_off) + p.payload_len <= p.cap_len);
          REQUIRE(p.payload_off + p.payload_len <= p.l3_off + p.l3_len);
        }
      }
    }
    const auto& c = src->counters();
    CHECK(c.count(decode_status::unsupported_link) == 0);
    packets += c.packets;
    ok += c.count(decode_status::ok);
    if (is_broken) {
      ++broken;
      MESSAGE(name << ": " << c.packets << " frames, ok " << c.count(decode_status::ok)
                   << ", non_ip " << c.count(decode_status::non_ip) << ", truncated "
                   << c.count(decode_status::truncated) << ", malformed "
                   << c.count(decode_status::malformed) << ", cut records "
                   << c.truncated_records);
    }
  }
  MESSAGE("corpus: " << packets << " frames, " << ok << " ok");
  CHECK(broken >= 5);
  CHECK(packets > 10000);
  CHECK(ok > packets * 9 / 10);
}
