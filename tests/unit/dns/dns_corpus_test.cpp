// SPDX-License-Identifier: Apache-2.0
// Runs the DNS parsers over the corpus captures (naive reassembly, see
// corpus_util.hpp) and compares their records with the tshark truth,
// following the mapping documented in dns_parser.hpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <tuple>

#include "../http/corpus_util.hpp"
#include "parsers/dns/dns_parser.hpp"

using namespace metaprobe;

namespace {

struct dns_flow {
  bool decided = false;
  bool dns = false;
  bool client_is_a = true;
  std::unique_ptr<datagram_parser> udp;
  std::unique_ptr<stream_parser> tcp;
  corpus::tcp_dir dirs[2];
};

record_sink run_dns(const std::string& pcap, const parser_options& opts,
                    parser_counters& counters) {
  record_sink out;
  const protocol_entry entry = dns_protocol_entry();
  std::map<corpus::flow_key, dns_flow> flows;
  corpus::for_each_packet(pcap, [&](const corpus::packet& p) {
    bool a_to_b = false;
    const corpus::flow_key k = corpus::key_of(p, a_to_b);
    const bool new_flow = flows.find(k) == flows.end();
    dns_flow& f = flows[k];
    if (new_flow)
      f.client_is_a = (p.proto == 6 && (p.flags & 0x12) == 0x12) ? !a_to_b : a_to_b;
    if (!f.decided) {
      const auto& ports = p.proto == 17 ? entry.udp_ports : entry.tcp_ports;
      const bool port = std::find(ports.begin(), ports.end(), p.sport) != ports.end() ||
                        std::find(ports.begin(), ports.end(), p.dport) != ports.end();
      if (port) {
        f.decided = f.dns = true;
      } else if (p.len > 0) {
        f.decided = true;
        f.dns = entry.probe(p.payload, p.len, direction::client_to_server);
      }
      if (f.dns) {
        if (p.proto == 17)
          f.udp = entry.make_datagram(opts, counters);
        else
          f.tcp = entry.make_stream(opts, counters);
      }
    }
    if (!f.dns)
      return;
    const direction d = (a_to_b == f.client_is_a) ? direction::client_to_server
                                                   : direction::server_to_client;
    if (f.udp) {
      f.udp->deliver(d, p.payload, p.len, p.ts_ns, out);
    } else {
      f.dirs[static_cast<int>(d)].feed(
        p,
        [&](const uint8_t* data, size_t n, uint32_t seq) {
          f.tcp->deliver(d, data, n, p.ts_ns, seq, out);
        },
        [&](size_t n) { f.tcp->gap(d, n); });
    }
  });
  for (auto& [k, f] : flows)
    if (f.tcp)
      f.tcp->finish(0, out);
  return out;
}

// response, section (0 question / 1 answer), name, type, class-or-ttl, rdata text
using row = std::tuple<int, int, std::string, uint32_t, uint64_t, std::string>;

std::vector<std::string> list(const corpus::truth_table& t, size_t r, const char* col) {
  const std::string v = t.get(r, col);
  if (v.empty())
    return {};
  return corpus::split(v, '|');
}

// The comparable part of rdata_text for a type, "" when not compared.
std::string our_rdata(const v1::Dns& d) {
  switch (d.rrtype()) {
  case 1:
  case 2:
  case 5:
  case 12:
  case 28:
    return d.rdata_text();
  case 15: {
    const auto sp = d.rdata_text().find(' ');
    return sp == std::string::npos ? std::string() : d.rdata_text().substr(sp + 1);
  }
  default:
    return {};
  }
}

const char* truth_column(uint32_t type) {
  switch (type) {
  case 1: return "dns.a";
  case 2: return "dns.ns";
  case 5: return "dns.cname";
  case 12: return "dns.ptr.domain_name";
  case 15: return "dns.mx.mail_exchange";
  case 28: return "dns.aaaa";
  default: return nullptr;
  }
}

// Per the mapping, at most max_entries_per_message questions + answers of a
// message are decoded; truth rows past that are not expected.
std::vector<row> truth_rows(const corpus::truth_table& t) {
  std::vector<row> out;
  const size_t cap = dns_message_decoder::max_entries_per_message;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    if (t.get(r, "_ws.col.Protocol") == "ICMP")
      continue;
    const int response = t.get(r, "dns.flags.response") == "1" ? 1 : 0;
    const auto qn = list(t, r, "dns.qry.name");
    const auto qt = list(t, r, "dns.qry.type");
    const auto qc = list(t, r, "dns.qry.class");
    const auto rn = list(t, r, "dns.resp.name");
    const auto rt = list(t, r, "dns.resp.type");
    const auto rl = list(t, r, "dns.resp.ttl");
    const size_t count_an = static_cast<size_t>(std::atoi(t.get(r, "dns.count.answers").c_str()));
    // dns.resp.type lists every RR tshark decoded, answers first; dns.resp.name
    // skips SRV RRs (tshark files their owner under dns.srv.*).
    const size_t n_ans = std::min(count_an, rt.size());
    const bool use_answers = response ? n_ans > 0 : qn.empty();
    if (!use_answers) {
      for (size_t i = 0; i < qn.size() && i < qt.size() && i < qc.size() && i < cap; ++i)
        out.emplace_back(response, 0, qn[i], std::stoul(qt[i]), std::stoul(qc[i], nullptr, 16),
                         std::string());
      continue;
    }
    std::map<uint32_t, size_t> used; // per type: values taken from its column
    size_t name_i = 0;
    for (size_t i = 0; i < n_ans && i + qn.size() < cap; ++i) {
      const uint32_t type = static_cast<uint32_t>(std::stoul(rt[i]));
      std::string name;
      if (type != 33)
        name = name_i < rn.size() ? rn[name_i++] : std::string();
      std::string rdata;
      if (const char* col = truth_column(type)) {
        const auto vals = list(t, r, col);
        const size_t k = used[type]++;
        if (k < vals.size())
          rdata = vals[k];
      }
      const uint64_t ttl = i < rl.size() ? std::stoull(rl[i]) : 0;
      out.emplace_back(response, 1, name, type, ttl, rdata);
    }
  }
  return out;
}

} // namespace

TEST_CASE("corpus: DNS records agree with tshark") {
  const std::string dir = corpus::corpus_dir();
  if (!corpus::file_exists(dir + "/truth/COUNTS.tsv")) {
    MESSAGE("corpus not found at " << dir << ": skipped");
    return;
  }
  // dns-fwdptr-malformed holds one crafted message whose every question walks
  // long forward-pointer chains: the per-message name work budget stops it
  // early (tshark decodes 10518 questions of it). It must still yield
  // records, all of them right.
  const std::string budget_file = "dns-fwdptr-malformed.pcap";
  corpus::score total, clean;
  const char* only = std::getenv("CORPUS_FILE");
  const size_t show_n = std::getenv("CORPUS_VERBOSE") ? 100000 : 3;
  for (const auto& file : corpus::truth_files(".dns.tsv")) {
    if (only && file != only)
      continue;
    parser_options opts;
    opts.max_field = 1 << 20;
    parser_counters counters;
    const record_sink recs = run_dns(dir + "/" + file, opts, counters);
    corpus::truth_table t;
    REQUIRE(corpus::read_truth(dir + "/truth/" + file + ".dns.tsv", t));
    const std::vector<row> truth = truth_rows(t);
    std::vector<row> ours;
    for (const auto& r : recs) {
      const auto& d = r.record.dns();
      if (d.section() == v1::Dns::QUESTION)
        ours.emplace_back(d.response() ? 1 : 0, 0, d.domain(), d.rrtype(), d.rrclass(),
                          std::string());
      else
        ours.emplace_back(d.response() ? 1 : 0, 1, d.rrtype() == 33 ? std::string() : d.domain(),
                          d.rrtype(), d.ttl(),
                          truth_column(d.rrtype()) ? our_rdata(d) : std::string());
    }
    std::vector<row> missing, extra;
    const corpus::score s = corpus::compare(truth, ours, &missing, &extra);
    total.add(s);
    if (file == budget_file) {
      CHECK(s.ours >= 16);
      CHECK(s.matched == s.ours);
    } else {
      clean.add(s);
    }
    char line[256];
    std::snprintf(line, sizeof line, "%-45s %5zu/%5zu (ours %5zu) viol %llu", file.c_str(),
                  s.matched, s.truth, s.ours,
                  static_cast<unsigned long long>(counters.violations));
    MESSAGE(line);
    auto show = [](const char* what, const row& x) {
      MESSAGE("  " << std::string(what) << " r=" << std::get<0>(x) << " s=" << std::get<1>(x) << " "
                   << (std::getenv("CORPUS_FULL") ? std::get<2>(x) : std::get<2>(x).substr(0, 80))
                   << " t=" << std::get<3>(x)
                   << " c/ttl=" << std::get<4>(x) << " rd=" << std::get<5>(x).substr(0, 60));
    };
    for (size_t i = 0; i < missing.size() && i < show_n; ++i)
      show("missing", missing[i]);
    for (size_t i = 0; i < extra.size() && i < show_n; ++i)
      show("extra  ", extra[i]);
  }
  MESSAGE("dns: recall " << total.recall() << " precision " << total.precision() << " ("
                         << total.matched << "/" << total.truth << ", ours " << total.ours
                         << "); without " << budget_file << ": recall " << clean.recall()
                         << " precision " << clean.precision());
  if (only)
    return;
  CHECK(clean.truth > 3500);
  CHECK(clean.recall() >= 0.995);
  CHECK(clean.precision() >= 0.995);
}
