// SPDX-License-Identifier: Apache-2.0
// Runs the HTTP parser over the corpus captures (naive reassembly, see
// corpus_util.hpp) and compares its records with the tshark truth.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <tuple>

#include "corpus_util.hpp"
#include "parsers/http/http_parser.hpp"

using namespace metaprobe;

namespace {

struct http_flow {
  bool decided = false;
  bool http = false;
  bool client_is_a = true;
  std::unique_ptr<stream_parser> parser;
  std::unique_ptr<datagram_parser> udp;
  corpus::tcp_dir dirs[2];
};

struct run_result {
  record_sink records;
};

run_result run_http(const std::string& pcap, parser_options opts, parser_counters& counters) {
  run_result res;
  const protocol_entry entry = http_protocol_entry();
  std::map<corpus::flow_key, http_flow> flows;
  corpus::for_each_packet(pcap, [&](const corpus::packet& p) {
    bool a_to_b = false;
    const corpus::flow_key k = corpus::key_of(p, a_to_b);
    http_flow& f = flows[k];
    if (!f.decided && !f.parser) {
      const bool synack = (p.flags & 0x12) == 0x12;
      f.client_is_a = synack ? !a_to_b : a_to_b;
    }
    if (!f.decided) {
      const auto& ports = p.proto == 6 ? entry.tcp_ports : entry.udp_ports;
      const bool port = std::find(ports.begin(), ports.end(), p.sport) != ports.end() ||
                        std::find(ports.begin(), ports.end(), p.dport) != ports.end();
      if (port) {
        f.decided = f.http = true;
      } else if (p.len > 0) {
        f.decided = true;
        f.http = entry.probe(p.payload, p.len, direction::client_to_server);
      }
      if (f.http && p.proto == 6)
        f.parser = entry.make_stream(opts, counters);
      else if (f.http)
        f.udp = entry.make_datagram(opts, counters);
    }
    if (!f.http)
      return;
    const direction d = (a_to_b == f.client_is_a) ? direction::client_to_server
                                                   : direction::server_to_client;
    if (f.udp) {
      f.udp->deliver(d, p.payload, p.len, p.ts_ns, res.records);
      return;
    }
    f.dirs[static_cast<int>(d)].feed(
      p,
      [&](const uint8_t* data, size_t n, uint32_t seq) {
        f.parser->deliver(d, data, n, p.ts_ns, seq, res.records);
      },
      [&](size_t n) { f.parser->gap(d, n); });
  });
  for (auto& [k, f] : flows)
    if (f.parser)
      f.parser->finish(0, res.records);
  return res;
}

using req_key = std::tuple<std::string, std::string, std::string>; // method, host, uri
using req_full = std::tuple<std::string, std::string, std::string, std::string, std::string,
                            std::string, std::string>; // + version, ua, referer, cookie
using resp_key = std::tuple<uint32_t, std::string, std::string>; // code, type, length

// tshark joins several Cookie fields with '|', which values may hold too:
// both sides are compared with '|' read as a separator.
std::string cookie_from_truth(const std::string& s) {
  std::string out;
  for (const auto& part : corpus::split(s, '|')) {
    if (part.empty())
      continue;
    if (!out.empty())
      out += "; ";
    out += part;
  }
  return out;
}

} // namespace

TEST_CASE("corpus: HTTP requests and responses agree with tshark") {
  const std::string dir = corpus::corpus_dir();
  if (!corpus::file_exists(dir + "/truth/COUNTS.tsv")) {
    MESSAGE("corpus not found at " << dir << ": skipped");
    return;
  }
  // tshark (with TCP desegmentation) shows a message only once its body has
  // arrived too; these captures lose or cut bodies (capture ends, segments
  // missing), so the parser, which reports a message when its header block
  // is complete, rightly reports more there. They count for recall only.
  const std::vector<std::string> bodies_cut = {
    "http-4k-requests.pcap",         "http-650-responses.pcap",
    "mixed-netflix-http-tls-dns.pcap", "mixed-instagram.pcap",
    "smtp-emotet-malspam.pcap",      "tcp-missing-packet-unidir.pcap",
    "http-ndpi-1kxun-mixed-ipv6.pcap", "mixed-browsing-pcpp-example.pcap",
    "mixed-many-protocols-vlan-ipv6.pcap", "http-manipulated.pcap",
  };
  corpus::score req_total, full_total, resp_total, req_clean, resp_clean;
  std::vector<std::string> files = corpus::truth_files(".http_req.tsv");
  for (const auto& f : corpus::truth_files(".http_resp.tsv"))
    if (std::find(files.begin(), files.end(), f) == files.end())
      files.push_back(f);
  const char* only = std::getenv("CORPUS_FILE");
  for (const auto& file : files) {
    if (only && file != only)
      continue;
    parser_options opts;
    opts.http_parse_reply = true;
    opts.max_field = 1 << 20; // compare whole values
    opts.max_line = 1 << 20;
    parser_counters counters;
    const run_result res = run_http(dir + "/" + file, opts, counters);

    std::vector<req_key> t_req, o_req;
    std::vector<req_full> t_full, o_full;
    std::vector<resp_key> t_resp, o_resp;
    corpus::truth_table t;
    if (corpus::read_truth(dir + "/truth/" + file + ".http_req.tsv", t)) {
      for (size_t i = 0; i < t.rows.size(); ++i) {
        t_req.emplace_back(t.get(i, "http.request.method"), t.get(i, "http.host"),
                           t.get(i, "http.request.uri"));
        t_full.emplace_back(t.get(i, "http.request.method"), t.get(i, "http.host"),
                            t.get(i, "http.request.uri"), t.get(i, "http.request.version"),
                            t.get(i, "http.user_agent"), t.get(i, "http.referer"),
                            cookie_from_truth(t.get(i, "http.cookie")));
      }
    }
    corpus::truth_table tr;
    if (corpus::read_truth(dir + "/truth/" + file + ".http_resp.tsv", tr)) {
      for (size_t i = 0; i < tr.rows.size(); ++i)
        t_resp.emplace_back(
          static_cast<uint32_t>(std::atoi(tr.get(i, "http.response.code").c_str())),
          tr.get(i, "http.content_type"), tr.get(i, "http.content_length_header"));
    }
    for (const auto& r : res.records) {
      if (r.record.has_clickstream()) {
        const auto& c = r.record.clickstream();
        o_req.emplace_back(c.method_name(), c.hostname(), c.path());
        o_full.emplace_back(c.method_name(), c.hostname(), c.path(), c.http_version(),
                            c.user_agent(), c.referer(), cookie_from_truth(c.cookie()));
      } else if (r.record.has_http_reply()) {
        const auto& h = r.record.http_reply();
        // The truth shows the Content-Length header as sent; ours is 0 when absent.
        o_resp.emplace_back(h.result_code(), h.content_type(),
                            std::to_string(h.content_length()));
      }
    }
    for (auto& x : t_resp) {
      std::string& len = std::get<2>(x);
      if (len.empty())
        len = "0";
      else if (len.find('|') != std::string::npos)
        len = len.substr(0, len.find('|')); // several headers: the first counts
    }
    std::vector<req_key> missing, extra;
    const corpus::score s = corpus::compare(t_req, o_req, &missing, &extra);
    std::vector<req_full> fmissing, fextra;
    const corpus::score sf = corpus::compare(t_full, o_full, &fmissing, &fextra);
    if (std::getenv("CORPUS_FULL"))
      for (const auto& m : fextra)
        MESSAGE("  field extra: " << std::get<2>(m) << " | v=" << std::get<3>(m)
                                  << " | ua=" << std::get<4>(m) << " | ref=" << std::get<5>(m)
                                  << " | cookie=" << std::get<6>(m));
    if (std::getenv("CORPUS_VERBOSE"))
      for (const auto& m : fmissing)
        MESSAGE("  field mismatch: " << std::get<2>(m) << " | v=" << std::get<3>(m)
                                     << " | ua=" << std::get<4>(m) << " | ref=" << std::get<5>(m)
                                     << " | cookie=" << std::get<6>(m));
    std::vector<resp_key> rmissing, rextra;
    const corpus::score sr = corpus::compare(t_resp, o_resp, &rmissing, &rextra);
    req_total.add(s);
    full_total.add(sf);
    resp_total.add(sr);
    if (std::find(bodies_cut.begin(), bodies_cut.end(), file) == bodies_cut.end()) {
      req_clean.add(s);
      resp_clean.add(sr);
    }
    char line[512];
    std::snprintf(line, sizeof line,
                  "%-45s req %4zu/%4zu (ours %4zu) full %4zu  resp %4zu/%4zu (ours %4zu)",
                  file.c_str(), s.matched, s.truth, s.ours, sf.matched, sr.matched, sr.truth,
                  sr.ours);
    MESSAGE(line);
    const size_t show = std::getenv("CORPUS_VERBOSE") ? 100000 : 3;
    for (size_t i = 0; i < missing.size() && i < show; ++i)
      MESSAGE("  missing req: " << std::get<0>(missing[i]) << " " << std::get<1>(missing[i])
                                << " " << std::get<2>(missing[i]).substr(0, 120));
    for (size_t i = 0; i < extra.size() && i < show; ++i)
      MESSAGE("  extra req:   " << std::get<0>(extra[i]) << " " << std::get<1>(extra[i]) << " "
                                << std::get<2>(extra[i]).substr(0, 120));
    for (size_t i = 0; i < rmissing.size() && i < show; ++i)
      MESSAGE("  missing resp: " << std::get<0>(rmissing[i]) << " " << std::get<1>(rmissing[i])
                                 << " len " << std::get<2>(rmissing[i]));
    for (size_t i = 0; i < rextra.size() && i < show; ++i)
      MESSAGE("  extra resp:   " << std::get<0>(rextra[i]) << " " << std::get<1>(rextra[i])
                                 << " len " << std::get<2>(rextra[i]));
  }
  MESSAGE("requests: recall " << req_total.recall() << " precision " << req_total.precision()
                              << " (complete captures: " << req_clean.precision()
                              << "); all fields: recall " << full_total.recall()
                              << "; responses: recall " << resp_total.recall() << " precision "
                              << resp_total.precision() << " (complete captures: "
                              << resp_clean.precision() << ")");
  if (only)
    return;
  CHECK(req_total.truth > 1900);
  CHECK(resp_total.truth > 1100);
  CHECK(req_total.recall() >= 0.995);
  CHECK(full_total.recall() >= 0.99);
  CHECK(resp_total.recall() >= 0.995);
  CHECK(req_clean.precision() >= 0.995);
  CHECK(resp_clean.precision() >= 0.995);
}
