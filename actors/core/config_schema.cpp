// SPDX-License-Identifier: Apache-2.0
// The one list of configuration keys. config/metaprobe.conf documents the
// same keys in the same order (a unit test checks that every key appears
// there and in docs/configuration.md).

#include <algorithm>
#include <cstdlib>
#include <unordered_map>

#include "core/config.hpp"
#include "core/decap_config.hpp"
#include "core/raw_meta.hpp"

namespace metaprobe {
namespace {

// ---- small builders so the table below reads like documentation ----

key_spec make(std::string name, key_type type, std::string def, std::string doc) {
  key_spec k;
  k.name = std::move(name);
  k.type = type;
  k.default_value = std::move(def);
  k.doc = std::move(doc);
  return k;
}

key_spec str_key(std::string name, std::string def, std::string doc) {
  return make(std::move(name), key_type::string, std::move(def), std::move(doc));
}

key_spec path_key(std::string name, std::string def, std::string doc) {
  return make(std::move(name), key_type::path, std::move(def), std::move(doc));
}

key_spec int_key(std::string name, int64_t min, int64_t max, std::string def, std::string doc) {
  key_spec k = make(std::move(name), key_type::integer, std::move(def), std::move(doc));
  k.min = min;
  k.max = max;
  return k;
}

key_spec mask_key(std::string name, int64_t max, std::string def, std::string doc) {
  key_spec k = make(std::move(name), key_type::mask, std::move(def), std::move(doc));
  k.min = 0;
  k.max = max;
  return k;
}

key_spec bool_key(std::string name, std::string def, std::string doc) {
  return make(std::move(name), key_type::boolean, std::move(def), std::move(doc));
}

key_spec duration_key(std::string name, double min_s, double max_s, std::string def,
                      std::string doc, double bare_unit_s = 1) {
  key_spec k = make(std::move(name), key_type::duration, std::move(def), std::move(doc));
  k.min_s = min_s;
  k.max_s = max_s;
  k.bare_unit_s = bare_unit_s;
  return k;
}

key_spec size_key(std::string name, int64_t min, int64_t max, std::string def, std::string doc) {
  key_spec k = make(std::move(name), key_type::size, std::move(def), std::move(doc));
  k.min = min;
  k.max = max;
  return k;
}

key_spec endpoints_key(std::string name, std::string doc) {
  return make(std::move(name), key_type::endpoints, "", std::move(doc));
}

key_spec enum_key(std::string name, std::vector<std::string> choices, std::string def,
                  std::string doc) {
  key_spec k = make(std::move(name), key_type::enumeration, std::move(def), std::move(doc));
  k.choices = std::move(choices);
  return k;
}

key_spec format_key(std::string name, std::string kind, std::string def, std::string doc) {
  key_spec k = make(std::move(name), key_type::format, std::move(def), std::move(doc));
  k.format_kind = std::move(kind);
  return k;
}

// ---- extra checks ----

std::string check_input(const std::string& v) {
  if (v.empty() || v == "dpdk")
    return {};
  auto has_arg = [&](std::string_view prefix) {
    return v.size() > prefix.size() && v.compare(0, prefix.size(), prefix) == 0;
  };
  if (has_arg("pcap:") || has_arg("iface:") || has_arg("afpacket:"))
    return {};
  return "expected pcap:PATH, iface:NAME, afpacket:NAME or dpdk, got '" + v + "'";
}

// control_listen: auto, off, empty, ipc://PATH or tcp://HOST:PORT (each
// process adds its offset to PORT: control/control_endpoints.hpp).
std::string check_control_listen(const std::string& v) {
  const std::string expected = "expected auto, off, ipc://PATH or tcp://HOST:PORT, got '" + v + "'";
  if (v.empty() || v == "auto" || v == "off")
    return {};
  if (v.find_first_of(" \t") != std::string::npos)
    return expected;
  if (v.rfind("ipc://", 0) == 0 && v.size() > 6 && v[6] != '*')
    return {};
  if (v.rfind("tcp://", 0) == 0) {
    auto colon = v.rfind(':');
    if (colon > 6 && colon + 1 < v.size()) {
      char* end = nullptr;
      long port = std::strtol(v.c_str() + colon + 1, &end, 10);
      if (*end == '\0' && port > 0 && port <= 65535)
        return {};
    }
    return "expected tcp://HOST:PORT with a port 1..65535, got '" + v + "'";
  }
  return expected;
}

// The record channels (core/channels.hpp) derive 8 endpoints from this
// base: ipc://PATH-<group>-<sink> or tcp://HOST:(PORT + 0..7).
std::string check_channel_endpoint(const std::string& v) {
  std::string_view s(v);
  if (s == "auto")
    return {};
  if (s.size() > 6 && s.compare(0, 6, "ipc://") == 0 && s.find_first_of(" \t") == std::string_view::npos)
    return {};
  if (s.size() > 6 && s.compare(0, 6, "tcp://") == 0) {
    size_t colon = s.rfind(':');
    if (colon > 6 && colon + 1 < s.size()) {
      std::string_view port = s.substr(colon + 1);
      bool digits = port.size() <= 5 && std::all_of(port.begin(), port.end(),
                                                    [](char c) { return c >= '0' && c <= '9'; });
      if (digits && std::stoi(std::string(port)) >= 1 && std::stoi(std::string(port)) <= 65528)
        return {};
    }
    return "expected tcp://HOST:PORT with PORT 1..65528 (channels use PORT+0..7), got '" + v + "'";
  }
  return "expected auto, ipc://PATH or tcp://HOST:PORT, got '" + v + "'";
}

std::vector<key_spec> build_schema() {
  std::vector<key_spec> s;
  std::string section;
  auto add = [&](key_spec k) {
    k.section = section;
    s.push_back(std::move(k));
  };

  section = "Capture";
  {
    key_spec k = str_key("input", "",
                         "packet source: pcap:PATH (capture file), iface:NAME (live "
                         "interface through libpcap), afpacket:NAME (live interface through "
                         "AF_PACKET rings, one socket per worker) or dpdk; must be set for "
                         "capture");
    k.check = check_input;
    add(std::move(k));
  }
  add(int_key("workers", 1, 64, "1", "worker pipelines (flow-hash shards)"));
  add(int_key("snaplen", 64, 262144, "65535", "bytes captured per packet"));
  add(str_key("bpf_filter", "",
              "BPF filter (libpcap syntax) applied to live inputs, iface: and afpacket: "
              "(empty: all traffic; capture files are read whole)"));
  {
    key_spec k = str_key("decap", "all",
                         "tunnels the decoder opens (records carry the innermost packet): all, "
                         "none, or a comma list of gre, erspan, vxlan, vxlan_gpe, geneve, gtpu, "
                         "ip_in_ip, l2tp, teredo; all,-KIND removes one (docs/protocols.md)");
    k.check = [](const std::string& v) { return parse_decap_kinds(v, nullptr); };
    add(std::move(k));
  }
  {
    key_spec k = str_key("vxlan_ports", "",
                         "extra UDP destination ports that carry VXLAN besides 4789 (comma "
                         "list, at most 8; e.g. 8472, the Linux kernel's old default)");
    k.check = [](const std::string& v) { return parse_vxlan_ports(v, nullptr); };
    add(std::move(k));
  }
  add(str_key("dpdk_eal_args", "",
              "DPDK EAL arguments for input=dpdk, e.g. --no-huge --vdev=net_pcap0,rx_pcap=FILE"));
  add(str_key("dpdk_port", "",
              "DPDK port for input=dpdk: empty for the first port the EAL found, a port "
              "number, or a device name (net_pcap0, 0000:03:00.0)"));
  add(int_key("dpdk_mempool_size", 1023, 16777215, "32767",
              "mbufs in the DPDK RX pool (about 2.3 KiB each); must cover every queue's RX "
              "descriptors and the batches in flight (batch_size x 65)"));
  add(int_key("dpdk_mbuf_cache", 0, 512, "256", "per-lcore cache of the DPDK mbuf pool"));
  add(int_key("dpdk_rx_desc", 64, 32768, "1024", "RX descriptors per DPDK queue"));
  add(duration_key("dpdk_file_idle_end", 0.1, 3600, "2",
                   "a net_pcap queue reading a capture file that is short of the file's "
                   "frames ends after this long without a frame (frames lost in the PMD)"));
  add(int_key("batch_size", 1, 4096, "256", "packets per capture burst (DPDK: per rx_burst round)"));
  add(size_key("afpacket_block_size", 4096, int64_t{1} << 30, "1M",
               "input=afpacket: bytes per ring block, a multiple of the page size that holds "
               "one frame of snaplen"));
  add(int_key("afpacket_block_count", 2, 1048576, "32",
              "input=afpacket: blocks per ring (one ring per worker socket)"));
  add(int_key("afpacket_fanout_id", 0, 65535, "0",
              "input=afpacket: PACKET_FANOUT group id of the worker sockets (0: the kernel "
              "picks an unused one)"));

  section = "Subscribers";
  add(path_key("subscribers_file", "",
               "file of `ip login` lines giving LOGIN for subscriber addresses (empty: no logins)"));

  section = "Flows and reassembly";
  add(size_key("memory_budget", 0, int64_t{1} << 42, "0",
               "bytes the capture may hold for traffic (flow table, TCP and IP reassembly, "
               "detection, parser buffers), over all workers; under pressure new flows are "
               "lean, then flows are evicted, oldest unconfirmed first (0: half of the "
               "machine's memory or of the cgroup limit, whichever is smaller)"));
  add(int_key("flow_max", 0, 100000000, "0",
              "flow table capacity per worker (0: derived from memory_budget, 40% of it "
              "for flow slots, between 4096 and 1048576 per worker)"));
  add(duration_key("flow_inactive_timeout", 1, 86400, "30",
                   "a flow idle this long is exported and forgotten"));
  add(duration_key("flow_active_timeout", 1, 86400, "300",
                   "a long flow is exported (and counting restarts) after this long"));
  add(duration_key("tcp_close_linger", 0, 300, "2",
                   "time a TCP flow is kept after FIN/RST for late packets"));
  add(size_key("tcp_max_ooo_bytes", 0, int64_t{1} << 30, "65536",
               "out-of-order TCP bytes buffered per direction before a gap is declared"));
  add(duration_key("frag_timeout", 1, 3600, "30", "incomplete IP datagrams are dropped after this long"));
  add(int_key("frag_max_datagrams", 0, 10000000, "4096",
              "IP datagrams under reassembly per worker (0: fragments are not reassembled)"));

  section = "Parsers";
  add(bool_key("http_parse_reply", "0", "also export HTTP responses (http_reply template)"));
  add(bool_key("ssl_parse_reply", "0", "also export TLS ServerHello data (ssl_reply template)"));
  add(size_key("parser_max_line", 64, 1 << 20, "8192",
               "longest protocol line (HTTP/SIP/FTP/mail) a parser accepts"));
  add(size_key("parser_max_field", 16, 1 << 20, "4096",
               "longest single field value kept; longer values are truncated"));
  add(int_key("parser_max_headers", 1, 10000, "128", "header lines parsed per message"));

  section = "Raw metadata";
  {
    key_spec k = str_key("raw_meta_protocols", "",
                         "protocols whose packets are exported as raw records (template raw, "
                         "meta group): comma-separated sip, ftp, smtp, pop3, imap, xmpp or "
                         "their META_PROTO codes 3..8 (empty: off)");
    k.check = [](const std::string& v) { return parse_raw_meta_protocols(v, nullptr); };
    add(std::move(k));
  }
  add(int_key("raw_meta_max_bytes", 20, 65535, "1024",
              "RAW_DATA keeps this many bytes of each IP packet (IP header included)"));
  add(int_key("raw_meta_max_packets", 0, 1000000000, "512",
              "raw records per flow at most; later packets are counted, not exported "
              "(0: no bound)"));

  section = "IPFIX export";
  add(str_key("ipfix_dev", "",
              "network interface the export sockets are bound to (SO_BINDTODEVICE; empty: "
              "routing table decides)"));
  add(endpoints_key("ipfix_udp_collectors", "clickstream collectors over UDP, host:port list"));
  add(endpoints_key("ipfix_tcp_collectors", "clickstream collectors over TCP, host:port list"));
  add(endpoints_key("ipfix_meta_udp_collectors",
                    "metadata (SIP, FTP, IM, mail, raw) collectors over UDP"));
  add(endpoints_key("ipfix_meta_tcp_collectors", "metadata collectors over TCP"));
  add(endpoints_key("ipfix_dns_udp_collectors", "DNS collectors over UDP"));
  add(endpoints_key("ipfix_dns_tcp_collectors", "DNS collectors over TCP"));
  add(endpoints_key("ipfix_full_udp_collectors", "full-flow collectors over UDP"));
  add(endpoints_key("ipfix_full_tcp_collectors", "full-flow collectors over TCP"));
  add(path_key("ipfix_file", "", "clickstream IPFIX file (RFC 5655); empty: none"));
  add(path_key("ipfix_meta_file", "", "metadata IPFIX file; empty: none"));
  add(path_key("ipfix_dns_file", "", "DNS IPFIX file; empty: none"));
  add(path_key("ipfix_full_file", "", "full-flow IPFIX file; empty: none"));
  add(duration_key("ipfix_udp_template_timer", 1, 3600, "20",
                   "templates are resent to UDP collectors this often"));
  add(int_key("ipfix_mtu", 512, 65535, "1400", "largest IPFIX message sent (bytes)"));
  add(int_key("ipfix_observation_domain", 0, 4294967295LL - 64, "1",
              "observation domain id of the first exporter instance; instance N uses base+N"));
  add(int_key("ipfix_tcp_buffer", 0, 100000000, "100000",
              "records buffered per TCP collector while it is unreachable or not reading; more are dropped"));
  add(duration_key("ipfix_tcp_reconnect_max", 0.01, 3600, "30",
                   "longest wait between two connection attempts to a TCP collector (the wait "
                   "starts at 1 s, or this if smaller, and doubles)"));
  add(int_key("ipfix_max_string", 16, 65535, "4096",
              "longest string field exported; longer values are truncated"));
  add(enum_key("output_mode", {"0600", "0640", "0660", "0644"}, "0640",
               "permissions of the files the exporters create (IPFIX files, text files): "
               "they hold cookies, logins and passwords; the umask still applies"));
  add(duration_key("netflow_timeout", 1, 3600, "30",
                   "period of the `Statistics on NFLW_export` log line"));
  add(mask_key("dbg_log_mask", 0xffffffffLL, "0",
               "debug log mask, decimal or hex; 0x80 logs export statistics"));

  section = "Text export: HTTP (url)";
  add(int_key("ajb_save_url", -1, 1, "0", "write HTTP requests to text files: 0 off, 1 or -1 on"));
  add(path_key("ajb_url_path", "/var/dump/dpi", "directory of the url text files"));
  add(duration_key("ajb_url_ftimeout", 1, 86400, "30",
                   "a non-empty file is finished after this many seconds"));
  add(size_key("ajb_url_fsize", 1024, int64_t{1} << 40, "100M", "a file is finished at this size"));
  add(size_key("ajb_url_bufsize", 0, 64 << 20, "64K", "write buffer (0: write every record)"));
  add(format_key("ajb_save_url_format", "url",
                 "ts:prg:login:ipsrc:ipdst:host:path:ref:uagent:cookie:tphost:blockd:method",
                 "fields of a url line, colon-separated"));

  section = "Text export: TLS/QUIC server names (ssl)";
  add(int_key("ajb_save_ssl", -1, 7, "0",
              "mask of names written to ssl text files: 1 TLS SNI, 2 CNAME, 4 QUIC SNI, -1 all, "
              "0 off"));
  add(path_key("ajb_ssl_path", "/var/dump/dpi", "directory of the ssl text files"));
  add(duration_key("ajb_ssl_ftimeout", 1, 86400, "30",
                   "a non-empty file is finished after this many seconds"));
  add(size_key("ajb_ssl_fsize", 1024, int64_t{1} << 40, "100M", "a file is finished at this size"));
  add(size_key("ajb_ssl_bufsize", 0, 64 << 20, "64K", "write buffer (0: write every record)"));
  add(format_key("ajb_save_ssl_format", "ssl", "ts:prg:login:ipsrc:ipdst:host:tphost:blockd:method",
                 "fields of an ssl line, colon-separated"));

  section = "Text export: SIP (sip)";
  add(int_key("ajb_save_sip", -1, 1, "0", "write SIP messages to text files: 0 off, 1 or -1 on"));
  add(path_key("ajb_sip_path", "/var/dump/dpi", "directory of the sip text files"));
  add(duration_key("ajb_sip_ftimeout", 1, 86400, "30",
                   "a non-empty file is finished after this many seconds"));
  add(size_key("ajb_sip_fsize", 1024, int64_t{1} << 40, "100M", "a file is finished at this size"));
  add(size_key("ajb_sip_bufsize", 0, 64 << 20, "64K", "write buffer (0: write every record)"));
  add(format_key("ajb_save_sip_format", "sip", "ts:ssid:ipsrc:ipdst:login:msg:scode:from:to:callid:uagent",
                 "fields of a sip line, colon-separated"));

  section = "Text export: DNS (dns)";
  add(int_key("ajb_save_dns", 0, 2, "0",
              "0 off, 1 or 2 write DNS text files (2 is the seed's \"also IPFIX\"; DNS IPFIX "
              "export follows ipfix_dns_*)"));
  add(path_key("ajb_dns_path", "/var/dump/dpi", "directory of the dns text files"));
  add(duration_key("ajb_dns_ftimeout", 1, 86400, "1",
                   "a non-empty file is finished after this many MINUTES (or 90s, 5m, ...)", 60));
  add(size_key("ajb_dns_fsize", 1024, int64_t{1} << 40, "100M", "a file is finished at this size"));
  add(size_key("ajb_dns_bufsize", 0, 64 << 20, "64K", "write buffer (0: write every record)"));
  add(format_key("ajb_save_dns_format", "dns",
                 "ts:ssid:login:ipsrc:ipdst:psrc:pdst:transport:host:rrtype:rrclass:ttl:rdlen:rdata",
                 "fields of a dns line, colon-separated"));

  section = "Processes and channels";
  {
    key_spec k = str_key("channel_endpoint", "auto",
                         "ZeroMQ base of the record channels: auto (ipc://<run_dir>/channel), "
                         "ipc://PATH gives PATH-<group>-<sink>, tcp://HOST:PORT gives PORT+0..7");
    k.check = check_channel_endpoint;
    add(std::move(k));
  }
  add(int_key("publisher_hwm", 1, 10000000, "1000",
              "record batches queued per channel before the publisher drops (counted)"));
  add(int_key("publisher_block_ms", -1, 60000, "-1",
              "how long the publisher waits on a full channel: -1 auto (block on capture-file "
              "input, never on live input), 0 never, N milliseconds"));
  {
    key_spec k = int_key("exporter_instances", 1, 64, "1",
                         "exporter processes per sink group (suffix: clickstream, meta, dns, "
                         "fullflow, text)");
    k.pattern = true;
    k.suffixes = {"clickstream", "meta", "dns", "fullflow", "text"};
    add(std::move(k));
  }
  add(duration_key("exporter_wait", 0, 3600, "10",
                   "capture-file input: how long metaprobe-capture waits before reading for "
                   "every channel to have exporter_instances.<group> exporters connected (then "
                   "it warns and reads anyway); 0 no wait; live input never waits"));
  add(duration_key("exporter_restart_min", 0.01, 3600, "0.5",
                   "delay before the appliance restarts a crashed exporter; doubles per "
                   "consecutive crash"));
  add(duration_key("exporter_restart_max", 0.01, 3600, "30",
                   "longest restart delay; an exporter that ran this long (at least 10 s) "
                   "before it crashed restarts after exporter_restart_min again"));
  add(int_key("bridge_channel_num", 0, 65535, "0", "BRIDGE_CHANNEL_NUM put into every record"));
  add(enum_key("log_level", {"trace", "debug", "info", "warn", "error", "critical", "off"}, "info",
               "least severe message logged"));
  add(path_key("log_dir", "./log", "directory of the statistics and alert logs"));
  {
    key_spec k = str_key("control_listen", "auto",
                         "base of the control endpoints metaprobe-console talks to: auto "
                         "(ipc://<run_dir>/control), off, ipc://PATH or tcp://HOST:PORT; each "
                         "process binds its own endpoint derived from it (docs/console.md)");
    k.check = check_control_listen;
    add(std::move(k));
  }
  add(str_key("control_secret", "",
              "shared secret every control request must carry (empty: none; the endpoint is "
              "still owner-only for ipc:// and loopback-only when so configured)"));
  add(path_key("curve_keys", "",
               "directory of the CURVE keys written by metaprobe-keygen (server.pub/.key, "
               "client.pub/.key): record channels and control endpoints authenticate and "
               "encrypt with them (empty: off)"));
  add(bool_key("allow_plaintext_tcp", "0",
               "allow a tcp:// channel_endpoint or control_listen on a non-loopback address "
               "without curve_keys (records and the control secret then cross the network in "
               "clear)"));
  {
    key_spec k = endpoints_key("metrics_listen",
                               "host:port base of the Prometheus /metrics endpoints (empty: off); "
                               "appliance PORT, capture PORT+1, exporters PORT+2+64*channel+"
                               "instance");
    k.check = [](const std::string& v) {
      return v.find(',') == std::string::npos ? std::string()
                                              : std::string("expected one host:port, got '") + v +
                                                  "'";
    };
    add(std::move(k));
  }
  add(path_key("run_dir", "./run",
               "the instance's own directory (created 0700): pid lock, delivery state and the "
               "default ipc:// sockets of the channels and control endpoints"));
  return s;
}

} // namespace

const std::vector<key_spec>& config_schema() {
  static const std::vector<key_spec> schema = build_schema();
  return schema;
}

const key_spec* find_key_spec(std::string_view key) {
  // Index of the plain keys; pattern keys are few and checked in order.
  static const std::unordered_map<std::string_view, const key_spec*> plain = [] {
    std::unordered_map<std::string_view, const key_spec*> m;
    for (const auto& k : config_schema())
      if (!k.pattern)
        m.emplace(k.name, &k);
    return m;
  }();
  auto it = plain.find(key);
  if (it != plain.end())
    return it->second;
  for (const auto& k : config_schema()) {
    if (!k.pattern)
      continue;
    if (key.size() <= k.name.size() + 1 || key.compare(0, k.name.size(), k.name) != 0 ||
        key[k.name.size()] != '.')
      continue;
    std::string_view suffix = key.substr(k.name.size() + 1);
    if (k.suffixes.empty()) {
      bool ok = std::all_of(suffix.begin(), suffix.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
      });
      return ok ? &k : nullptr;
    }
    for (const auto& s : k.suffixes)
      if (suffix == s)
        return &k;
    return nullptr;
  }
  return nullptr;
}

const std::vector<std::string>& text_format_fields(std::string_view kind) {
  // Seed names first, metaprobe additions (psrc, pdst, methodname, uri,
  // ctype, gateways) after.
  static const std::vector<std::string> url = {
      "ts",     "prg",    "login", "ipsrc", "ipdst",  "host", "path",   "ref",        "uagent",
      "cookie", "ssid",   "tphost", "blockd", "method", "psrc", "pdst", "methodname"};
  static const std::vector<std::string> sip = {
      "ts",     "ssid", "ipsrc", "ipdst", "login", "msg",  "scode", "from", "to",
      "callid", "uagent", "psrc", "pdst", "uri",   "ctype", "gateways"};
  static const std::vector<std::string> dns = {
      "ts",   "ipsrc",  "ipdst",   "ssid", "login", "host", "rrtype",   "rrclass",
      "ttl",  "rdlen",  "rdata",   "psrc", "pdst",  "transport"};
  static const std::vector<std::string> none;
  if (kind == "url" || kind == "ssl")
    return url;
  if (kind == "sip")
    return sip;
  if (kind == "dns")
    return dns;
  return none;
}

} // namespace metaprobe
