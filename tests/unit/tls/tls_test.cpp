// SPDX-License-Identifier: Apache-2.0
// Unit tests of the TLS handshake decoders and the TLS stream parser, on
// hand-built handshakes (and a certificate made with OpenSSL at run time).
#include <doctest/doctest.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "parsers/tls/tls_handshake.hpp"
#include "parsers/tls/tls_parser.hpp"

using namespace metaprobe;

namespace {

using bytes = std::vector<uint8_t>;
constexpr auto c2s = direction::client_to_server;
constexpr auto s2c = direction::server_to_client;

void put16(bytes& b, size_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void put24(bytes& b, size_t v) {
  b.push_back(static_cast<uint8_t>(v >> 16));
  put16(b, v & 0xffff);
}
void append(bytes& b, const bytes& more) { b.insert(b.end(), more.begin(), more.end()); }
void append(bytes& b, const std::string& s) { b.insert(b.end(), s.begin(), s.end()); }

bytes handshake(uint8_t type, const bytes& body) {
  bytes m{type};
  put24(m, body.size());
  append(m, body);
  return m;
}

bytes extension(uint16_t type, const bytes& data) {
  bytes e;
  put16(e, type);
  put16(e, data.size());
  append(e, data);
  return e;
}

bytes sni_ext(const std::string& name) {
  bytes entry{0};
  put16(entry, name.size());
  append(entry, name);
  bytes list;
  put16(list, entry.size());
  append(list, entry);
  return extension(0, list);
}

struct ch_spec {
  uint16_t version = 0x0303;
  std::vector<uint16_t> suites = {0x1301, 0x1302, 0xc02b};
  std::string sni = "example.org";
  std::vector<std::string> alpn;
  std::vector<uint16_t> versions;
  std::vector<bytes> extra; // whole extensions appended after the others
  size_t session_id = 32;
};

bytes client_hello(const ch_spec& s) {
  bytes b;
  put16(b, s.version);
  b.insert(b.end(), 32, 0x11); // random
  b.push_back(static_cast<uint8_t>(s.session_id));
  b.insert(b.end(), s.session_id, 0x22);
  put16(b, s.suites.size() * 2);
  for (uint16_t v : s.suites)
    put16(b, v);
  b.push_back(1);
  b.push_back(0); // null compression
  bytes exts;
  if (!s.sni.empty())
    append(exts, sni_ext(s.sni));
  if (!s.alpn.empty()) {
    bytes list;
    for (const auto& a : s.alpn) {
      list.push_back(static_cast<uint8_t>(a.size()));
      append(list, a);
    }
    bytes data;
    put16(data, list.size());
    append(data, list);
    append(exts, extension(16, data));
  }
  if (!s.versions.empty()) {
    bytes data{static_cast<uint8_t>(s.versions.size() * 2)};
    for (uint16_t v : s.versions)
      put16(data, v);
    append(exts, extension(43, data));
  }
  for (const auto& e : s.extra)
    append(exts, e);
  put16(b, exts.size());
  append(b, exts);
  return handshake(1, b);
}

bytes hrr_random() {
  bytes r(32);
  const char* text = "HelloRetryRequest";
  SHA256(reinterpret_cast<const unsigned char*>(text), std::strlen(text), r.data());
  return r;
}

bytes server_hello(uint16_t suite, uint16_t selected = 0, bool hrr = false,
                   uint16_t legacy = 0x0303) {
  bytes b;
  put16(b, legacy);
  if (hrr)
    append(b, hrr_random());
  else
    b.insert(b.end(), 32, 0x33);
  b.push_back(32);
  b.insert(b.end(), 32, 0x22);
  put16(b, suite);
  b.push_back(0);
  if (selected) {
    bytes v;
    put16(v, selected);
    bytes exts = extension(43, v);
    put16(b, exts.size());
    append(b, exts);
  }
  return handshake(2, b);
}

// TLS records of `type` carrying `payload`, at most `frag` bytes each.
bytes records(uint8_t type, const bytes& payload, size_t frag = 16384,
              uint16_t version = 0x0303) {
  bytes out;
  size_t i = 0;
  do {
    const size_t n = std::min(frag, payload.size() - i);
    out.push_back(type);
    put16(out, version);
    put16(out, n);
    out.insert(out.end(), payload.begin() + static_cast<long>(i),
               payload.begin() + static_cast<long>(i + n));
    i += n;
  } while (i < payload.size());
  return out;
}

bytes ccs() { return records(20, bytes{1}); }
bytes app_data(size_t n = 40) { return records(23, bytes(n, 0xaa)); }

// A self-signed certificate (EC P-256) whose subject CN is `cn` (none when
// empty), as DER.
bytes make_certificate(const std::string& cn) {
  EVP_PKEY* key = nullptr;
  EVP_PKEY_CTX* kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr);
  REQUIRE(kctx != nullptr);
  REQUIRE(EVP_PKEY_keygen_init(kctx) == 1);
  REQUIRE(EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kctx, NID_X9_62_prime256v1) == 1);
  REQUIRE(EVP_PKEY_keygen(kctx, &key) == 1);
  EVP_PKEY_CTX_free(kctx);
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("metaprobe test"), -1, -1, 0);
  if (!cn.empty())
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, name);
  REQUIRE(X509_sign(x, key, EVP_sha256()) > 0);
  unsigned char* der = nullptr;
  const int n = i2d_X509(x, &der);
  REQUIRE(n > 0);
  bytes out(der, der + n);
  OPENSSL_free(der);
  X509_free(x);
  EVP_PKEY_free(key);
  return out;
}

bytes certificate_msg(const std::vector<bytes>& certs) {
  bytes list;
  for (const auto& c : certs) {
    put24(list, c.size());
    append(list, c);
  }
  bytes body;
  put24(body, list.size());
  append(body, list);
  return handshake(11, body);
}

struct fixture {
  parser_options opts;
  parser_counters counters;
  std::unique_ptr<stream_parser> p;
  record_sink out;
  uint32_t seq[2] = {1000, 70000};

  explicit fixture(bool replies = true) {
    opts.ssl_parse_reply = replies;
    p = make_tls_parser(opts, counters);
  }
  void reset() { p = make_tls_parser(opts, counters); }
  // Delivers `data` in pieces of `chunk` bytes (0: all at once).
  void send(direction d, const bytes& data, size_t chunk = 0, uint64_t ts = 1) {
    const size_t step = chunk ? chunk : data.size();
    for (size_t i = 0; i < data.size(); i += step) {
      const size_t n = std::min(step, data.size() - i);
      p->deliver(d, data.data() + i, n, ts, seq[static_cast<int>(d)], out);
      seq[static_cast<int>(d)] += static_cast<uint32_t>(n);
    }
  }
  void lose(direction d, size_t n) {
    p->gap(d, n);
    seq[static_cast<int>(d)] += static_cast<uint32_t>(n);
  }
  std::vector<const parsed_record*> clicks(uint32_t host_type) const {
    std::vector<const parsed_record*> v;
    for (const auto& r : out)
      if (r.record.has_clickstream() && r.record.clickstream().host_type() == host_type)
        v.push_back(&r);
    return v;
  }
  std::vector<const parsed_record*> replies() const {
    std::vector<const parsed_record*> v;
    for (const auto& r : out)
      if (r.record.has_ssl_reply())
        v.push_back(&r);
    return v;
  }
};

std::string suites_bytes(std::initializer_list<uint16_t> v) {
  std::string s;
  for (uint16_t x : v) {
    s.push_back(static_cast<char>(x >> 8));
    s.push_back(static_cast<char>(x & 0xff));
  }
  return s;
}

} // namespace

TEST_CASE("parse_client_hello decodes SNI, ALPN, versions, suites and GREASE") {
  ch_spec s;
  s.suites = {0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b};
  s.sni = "www.example.com";
  s.alpn = {"h2", "http/1.1"};
  s.versions = {0x1a1a, 0x0304, 0x0303};
  s.extra = {extension(0x2a2a, bytes{}), extension(0xff01, bytes{0})};
  const bytes m = client_hello(s);
  tls::client_hello ch;
  REQUIRE(tls::parse_client_hello(m.data(), m.size(), ch) == tls::hs_status::ok);
  CHECK(ch.legacy_version == 0x0303);
  CHECK(ch.sni == "www.example.com");
  CHECK(ch.alpn == std::vector<std::string>{"h2", "http/1.1"});
  CHECK(ch.supported_versions == std::vector<uint16_t>{0x1a1a, 0x0304, 0x0303});
  CHECK(ch.cipher_suites_len == 10);
  CHECK(ch.cipher_suites == std::vector<uint16_t>{0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b});
  CHECK(ch.extension_types == std::vector<uint16_t>{0, 16, 43, 0x2a2a, 0xff01});
  // Trailing bytes after the message are ignored.
  bytes more = m;
  more.push_back(0x16);
  REQUIRE(tls::parse_client_hello(more.data(), more.size(), ch) == tls::hs_status::ok);
  CHECK(ch.sni == "www.example.com");
}

TEST_CASE("parse_client_hello: malformed lengths") {
  const bytes good = client_hello(ch_spec{});
  tls::client_hello ch;
  SUBCASE("message longer than the buffer") {
    CHECK(tls::parse_client_hello(good.data(), good.size() - 1, ch) == tls::hs_status::malformed);
  }
  SUBCASE("wrong type") {
    bytes m = good;
    m[0] = 2;
    CHECK(tls::parse_client_hello(m.data(), m.size(), ch) == tls::hs_status::malformed);
  }
  SUBCASE("session id longer than 32") {
    bytes m = good;
    m[4 + 2 + 32] = 33;
    CHECK(tls::parse_client_hello(m.data(), m.size(), ch) == tls::hs_status::malformed);
    CHECK(ch.cipher_suites_len == 0);
  }
  SUBCASE("cipher suite vector past the end") {
    bytes m = good;
    const size_t at = 4 + 2 + 32 + 1 + 32;
    m[at] = 0xff;
    CHECK(tls::parse_client_hello(m.data(), m.size(), ch) == tls::hs_status::malformed);
    CHECK(ch.cipher_suites_len == 0);
  }
  SUBCASE("extension past the extension block: suites kept") {
    ch_spec s;
    s.sni.clear();
    bytes bad_ext;
    put16(bad_ext, 0x000a);
    put16(bad_ext, 200); // longer than what follows
    bad_ext.push_back(0);
    s.extra = {bad_ext};
    const bytes m = client_hello(s);
    CHECK(tls::parse_client_hello(m.data(), m.size(), ch) == tls::hs_status::malformed);
    CHECK(ch.cipher_suites_len == 6);
    CHECK(ch.cipher_suites.size() == 3);
  }
  SUBCASE("broken server_name content is no SNI, not a broken message") {
    ch_spec s;
    s.sni.clear();
    s.extra = {extension(0, bytes{0})}; // one byte where a list length belongs
    const bytes m = client_hello(s);
    CHECK(tls::parse_client_hello(m.data(), m.size(), ch) == tls::hs_status::ok);
    CHECK(ch.sni.empty());
  }
  SUBCASE("no extensions at all (TLS 1.0 style)") {
    bytes body;
    put16(body, 0x0301);
    body.insert(body.end(), 32, 1);
    body.push_back(0);
    put16(body, 2);
    put16(body, 0x002f);
    body.push_back(1);
    body.push_back(0);
    const bytes m = handshake(1, body);
    CHECK(tls::parse_client_hello(m.data(), m.size(), ch) == tls::hs_status::ok);
    CHECK(ch.cipher_suites == std::vector<uint16_t>{0x002f});
    CHECK(ch.sni.empty());
  }
  SUBCASE("empty input") {
    CHECK(tls::parse_client_hello(nullptr, 0, ch) == tls::hs_status::malformed);
    CHECK(tls::parse_client_hello(good.data(), 3, ch) == tls::hs_status::malformed);
  }
}

TEST_CASE("parse_server_hello: TLS 1.2, TLS 1.3 and HelloRetryRequest") {
  tls::server_hello sh;
  bytes m = server_hello(0xc02f);
  REQUIRE(tls::parse_server_hello(m.data(), m.size(), sh) == tls::hs_status::ok);
  CHECK(sh.version() == 0x0303);
  CHECK(sh.selected_version == 0);
  CHECK(sh.cipher_suite == 0xc02f);
  CHECK_FALSE(sh.hello_retry_request);

  m = server_hello(0x1301, 0x0304);
  REQUIRE(tls::parse_server_hello(m.data(), m.size(), sh) == tls::hs_status::ok);
  CHECK(sh.legacy_version == 0x0303);
  CHECK(sh.version() == 0x0304);
  CHECK_FALSE(sh.hello_retry_request);

  m = server_hello(0x1302, 0x0304, true);
  REQUIRE(tls::parse_server_hello(m.data(), m.size(), sh) == tls::hs_status::ok);
  CHECK(sh.hello_retry_request);
  CHECK(sh.cipher_suite == 0x1302);

  m.resize(m.size() - 3);
  CHECK(tls::parse_server_hello(m.data(), m.size(), sh) == tls::hs_status::malformed);
}

TEST_CASE("parse_certificate_cn: leaf subject CN, none, garbage") {
  std::string cn;
  const bytes leaf = make_certificate("www.example.net");
  const bytes other = make_certificate("Example CA");
  bytes m = certificate_msg({leaf, other});
  REQUIRE(tls::parse_certificate_cn(m.data(), m.size(), cn) == tls::hs_status::ok);
  CHECK(cn == "www.example.net");
  // Cut after the leaf: still decoded.
  REQUIRE(tls::parse_certificate_cn(m.data(), 4 + 3 + 3 + leaf.size(), cn) == tls::hs_status::ok);
  CHECK(cn == "www.example.net");
  // Cut inside the leaf: not.
  CHECK(tls::parse_certificate_cn(m.data(), 4 + 3 + 3 + leaf.size() - 1, cn) ==
        tls::hs_status::malformed);

  m = certificate_msg({make_certificate("")});
  REQUIRE(tls::parse_certificate_cn(m.data(), m.size(), cn) == tls::hs_status::ok);
  CHECK(cn.empty());

  m = certificate_msg({});
  CHECK(tls::parse_certificate_cn(m.data(), m.size(), cn) == tls::hs_status::ok);

  m = certificate_msg({bytes(50, 0x30)});
  CHECK(tls::parse_certificate_cn(m.data(), m.size(), cn) == tls::hs_status::malformed);
}

TEST_CASE("probe") {
  const bytes ch = records(22, client_hello(ch_spec{}), 16384, 0x0301);
  CHECK(tls_probe(ch.data(), ch.size(), c2s));
  CHECK(tls_probe(ch.data(), 6, c2s));
  CHECK_FALSE(tls_probe(ch.data(), 5, c2s));
  const bytes sh = records(22, server_hello(0x1301));
  CHECK(tls_probe(sh.data(), sh.size(), s2c));
  bytes bad = ch;
  bad[2] = 5;
  CHECK_FALSE(tls_probe(bad.data(), bad.size(), c2s));
  bad = ch;
  bad[5] = 11;
  CHECK_FALSE(tls_probe(bad.data(), bad.size(), c2s));
  const std::string get = "GET / HTTP/1.1\r\n";
  CHECK_FALSE(tls_probe(reinterpret_cast<const uint8_t*>(get.data()), get.size(), c2s));
  const bytes app = app_data();
  CHECK_FALSE(tls_probe(app.data(), app.size(), c2s));
}

TEST_CASE("ClientHello -> SNI clickstream record, any segmentation") {
  ch_spec s;
  s.sni = "a.example.com";
  s.suites.clear();
  for (uint16_t i = 0; i < 20; ++i)
    s.suites.push_back(static_cast<uint16_t>(0xc000 + i));
  const bytes msg = client_hello(s);
  for (size_t frag : {size_t{16384}, size_t{1}, size_t{7}, size_t{100}}) {
    for (size_t chunk : {size_t{0}, size_t{1}, size_t{3}, size_t{50}}) {
      CAPTURE(frag);
      CAPTURE(chunk);
      fixture f;
      const uint32_t start = f.seq[0];
      f.send(c2s, records(22, msg, frag, 0x0301), chunk, 42);
      auto v = f.clicks(3);
      REQUIRE(v.size() == 1);
      const auto& c = v[0]->record.clickstream();
      CHECK(c.hostname() == "a.example.com");
      CHECK(c.cipher_suites_len() == 40);
      CHECK(c.cipher_suites().size() == 32);
      CHECK(c.cipher_suites().substr(0, 4) == suites_bytes({0xc000, 0xc001}));
      CHECK(c.tcp_sequence() == start);
      CHECK(v[0]->tcp_seq == start);
      CHECK(v[0]->dir == c2s);
      CHECK(v[0]->ts_ns == 42);
      CHECK(f.p->state() == parser_state::confirmed);
      CHECK(f.p->flow_host() == "a.example.com");
    }
  }
}

TEST_CASE("post-quantum sized ClientHello (about 1.8 KB) over segments") {
  ch_spec s;
  s.sni = "pq.example";
  s.extra = {extension(51, bytes(1250, 0x5a))}; // a big key_share
  const bytes msg = client_hello(s);
  REQUIRE(msg.size() > 1300);
  fixture f;
  f.send(c2s, records(22, msg), 1448);
  REQUIRE(f.clicks(3).size() == 1);
  CHECK(f.clicks(3)[0]->record.clickstream().hostname() == "pq.example");
}

TEST_CASE("ClientHello without SNI is exported with an empty host name") {
  ch_spec s;
  s.sni.clear();
  fixture f;
  f.send(c2s, records(22, client_hello(s)));
  REQUIRE(f.clicks(3).size() == 1);
  CHECK(f.clicks(3)[0]->record.clickstream().hostname().empty());
  CHECK(f.p->flow_host().empty());
}

TEST_CASE("TLS 1.3 with HelloRetryRequest") {
  fixture f;
  ch_spec s;
  s.versions = {0x0304, 0x0303};
  f.send(c2s, records(22, client_hello(s), 16384, 0x0301));
  f.send(s2c, records(22, server_hello(0x1302, 0x0304, true)), 0, 2);
  f.send(s2c, ccs());
  // HRR reported as soon as the server's CCS shows no certificate follows.
  REQUIRE(f.replies().size() == 1);
  {
    const auto& r = f.replies()[0]->record.ssl_reply();
    CHECK(r.ssl_version() == 0x0304);
    CHECK(r.cipher_suite() == 0x1302);
    CHECK(r.host_type() == 3);
    CHECK(r.cname() == "example.org");
    CHECK(f.replies()[0]->dir == s2c);
    CHECK(f.replies()[0]->ts_ns == 2);
  }
  // The client's dummy CCS does not end its clear-text handshake.
  f.send(c2s, ccs());
  s.sni = "second.example.org";
  f.send(c2s, records(22, client_hello(s)), 5);
  REQUIRE(f.clicks(3).size() == 2);
  CHECK(f.clicks(3)[1]->record.clickstream().hostname() == "second.example.org");
  f.send(s2c, records(22, server_hello(0x1302, 0x0304)));
  f.send(s2c, app_data());
  REQUIRE(f.replies().size() == 2);
  CHECK(f.replies()[1]->record.ssl_reply().ssl_version() == 0x0304);
  CHECK(f.p->state() == parser_state::confirmed);
  f.send(c2s, app_data());
  CHECK(f.p->state() == parser_state::done);
  // Nothing after done.
  f.send(c2s, records(22, client_hello(s)));
  CHECK(f.clicks(3).size() == 2);
  CHECK(f.p->flow_host() == "example.org");
}

TEST_CASE("TLS 1.2: Certificate -> CNAME record and ssl_reply with the CN") {
  fixture f;
  f.send(c2s, records(22, client_hello(ch_spec{})));
  const bytes cert = make_certificate("srv.example.net");
  bytes flight = server_hello(0xc02f);
  append(flight, certificate_msg({cert, make_certificate("Some CA")}));
  append(flight, handshake(14, bytes{})); // ServerHelloDone
  const uint32_t start = f.seq[1];
  f.send(s2c, records(22, flight, 1000), 300, 9);
  auto cn = f.clicks(2);
  REQUIRE(cn.size() == 1);
  CHECK(cn[0]->record.clickstream().hostname() == "srv.example.net");
  CHECK(cn[0]->dir == c2s);
  CHECK(cn[0]->tcp_seq == start); // the Certificate starts in the first record
  REQUIRE(f.replies().size() == 1);
  const auto& r = f.replies()[0]->record.ssl_reply();
  CHECK(r.ssl_version() == 0x0303);
  CHECK(r.cipher_suite() == 0xc02f);
  CHECK(r.compression_method() == 0);
  CHECK(r.host_type() == 2);
  CHECK(r.cname() == "srv.example.net");
  CHECK(f.p->flow_host() == "example.org"); // SNI first
  // Client: key exchange, CCS, encrypted Finished; server: CCS, Finished.
  f.send(c2s, records(22, handshake(16, bytes(33, 4))));
  f.send(c2s, ccs());
  f.send(c2s, records(22, bytes(40, 0x01))); // encrypted: not parsed
  f.send(s2c, ccs());
  CHECK(f.p->state() == parser_state::done);
  CHECK(f.clicks(3).size() == 1);
  CHECK(f.clicks(2).size() == 1);
}

TEST_CASE("CN is the flow host without SNI; no ssl_reply without ssl_parse_reply") {
  fixture f(false);
  ch_spec s;
  s.sni.clear();
  f.send(c2s, records(22, client_hello(s)));
  bytes flight = server_hello(0x009c);
  append(flight, certificate_msg({make_certificate("only-cn.example")}));
  f.send(s2c, records(22, flight));
  f.p->finish(5, f.out);
  CHECK(f.replies().empty());
  REQUIRE(f.clicks(2).size() == 1);
  CHECK(f.p->flow_host() == "only-cn.example");
}

TEST_CASE("ssl_reply pending at the end of the flow is reported by finish") {
  fixture f;
  f.send(s2c, records(22, server_hello(0x0035, 0, false, 0x0301)));
  CHECK(f.replies().empty());
  f.p->finish(5, f.out);
  REQUIRE(f.replies().size() == 1);
  CHECK(f.replies()[0]->record.ssl_reply().ssl_version() == 0x0301);
  CHECK(f.replies()[0]->record.ssl_reply().host_type() == 0);
}

TEST_CASE("not TLS: violation while probing") {
  fixture f;
  const std::string get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  f.send(c2s, bytes(get.begin(), get.end()));
  CHECK(f.p->state() == parser_state::violated);
  CHECK(f.counters.violations == 1);
  CHECK(f.out.empty());
  fixture g;
  bytes huge = records(22, bytes(10, 1));
  huge[3] = 0xff; // length 65290 > 2^14 + 2048
  g.send(c2s, huge);
  CHECK(g.p->state() == parser_state::violated);
}

TEST_CASE("ClientHello with bad cipher suite length: no record, framing survives") {
  fixture f;
  bytes msg = client_hello(ch_spec{});
  msg[4 + 2 + 32 + 1 + 32] = 0xff;
  f.send(c2s, records(22, msg));
  CHECK(f.clicks(3).empty());
  CHECK(f.p->state() == parser_state::confirmed);
  f.send(s2c, records(22, server_hello(0x1301)));
  f.p->finish(2, f.out);
  CHECK(f.replies().size() == 1);
}

TEST_CASE("gaps: inside a record, at a record boundary, at an unknown place") {
  const bytes ch = records(22, client_hello(ch_spec{}));
  SUBCASE("a gap cutting the ClientHello drops it; the next record parses") {
    fixture f;
    f.send(c2s, bytes(ch.begin(), ch.begin() + 20));
    f.lose(c2s, 30);
    f.send(c2s, bytes(ch.begin() + 50, ch.end()));
    CHECK(f.clicks(3).empty());
    ch_spec s;
    s.sni = "after.gap";
    f.send(c2s, records(22, client_hello(s)));
    REQUIRE(f.clicks(3).size() == 1);
    CHECK(f.clicks(3)[0]->record.clickstream().hostname() == "after.gap");
  }
  SUBCASE("a gap over a whole record and into the next: resync") {
    fixture f;
    f.send(c2s, ch);
    f.lose(c2s, ch.size() + 7);
    f.send(c2s, bytes(ch.begin() + 7, ch.end())); // rest of the lost record
    ch_spec s;
    s.sni = "resynced.example";
    f.send(c2s, records(22, client_hello(s)));
    auto v = f.clicks(3);
    REQUIRE(v.size() == 2);
    CHECK(v[1]->record.clickstream().hostname() == "resynced.example");
  }
  SUBCASE("too much garbage after a gap gives the direction up") {
    fixture f;
    f.opts.max_buffered = 160; // the ClientHello (about 130 bytes) fits
    f.reset();
    f.send(c2s, ch);
    f.lose(c2s, 3);
    f.send(c2s, bytes(300, 0x00));
    f.send(c2s, records(22, client_hello(ch_spec{})));
    CHECK(f.clicks(3).size() == 1);
    CHECK(f.counters.limit_hits >= 1);
  }
}

TEST_CASE("limits: oversize handshake message skipped, long SNI cut, record cap") {
  SUBCASE("message larger than max_buffered") {
    fixture f;
    f.opts.max_buffered = 256;
    f.reset();
    ch_spec s;
    s.extra = {extension(21, bytes(400, 0))}; // padding
    f.send(c2s, records(22, client_hello(s)), 64);
    CHECK(f.clicks(3).empty());
    CHECK(f.counters.limit_hits == 1);
    // The framing is kept: a following ClientHello still parses.
    f.send(c2s, records(22, client_hello(ch_spec{})), 64);
    CHECK(f.clicks(3).size() == 1);
  }
  SUBCASE("Certificate larger than max_buffered: leaf still decoded") {
    fixture f;
    f.opts.max_buffered = 1024;
    f.reset();
    const bytes leaf = make_certificate("big.example");
    REQUIRE(leaf.size() < 900);
    f.send(s2c, records(22, certificate_msg({leaf, bytes(3000, 0x30)})), 500);
    REQUIRE(f.clicks(2).size() == 1);
    CHECK(f.clicks(2)[0]->record.clickstream().hostname() == "big.example");
    CHECK(f.counters.limit_hits == 1);
  }
  SUBCASE("SNI longer than max_field, invalid UTF-8") {
    fixture f;
    f.opts.max_field = 10;
    f.reset();
    ch_spec s;
    s.sni = "abcdefgh\xff\xfe.example.com";
    f.send(c2s, records(22, client_hello(s)));
    REQUIRE(f.clicks(3).size() == 1);
    CHECK(f.clicks(3)[0]->record.clickstream().hostname() == "abcdefgh");
    CHECK(f.counters.truncated_fields == 1);
  }
  SUBCASE("max_records_per_flow") {
    fixture f;
    f.opts.max_records_per_flow = 2;
    f.reset();
    bytes three = client_hello(ch_spec{});
    append(three, client_hello(ch_spec{}));
    append(three, client_hello(ch_spec{}));
    f.send(c2s, records(22, three));
    CHECK(f.clicks(3).size() == 2);
    CHECK(f.counters.limit_hits == 1);
  }
}

TEST_CASE("registry entry") {
  const protocol_entry e = tls_protocol_entry();
  CHECK(e.id == app_protocol::tls);
  CHECK(std::string(e.name) == "tls");
  CHECK((e.make_stream != nullptr));
  CHECK((e.make_datagram == nullptr));
  CHECK(std::find(e.tcp_ports.begin(), e.tcp_ports.end(), 443) != e.tcp_ports.end());
}

// ---------------------------------------------------------------------------
// SSLv2-compatible ClientHello (RFC 5246 E.2) and TLS 1.3 draft ServerHellos.

namespace {

// An SSLv2-compatible CLIENT-HELLO as OpenSSL 0.9.8 sent it with its default
// "SSLv23" method (TLS 1.0 offered): 2-byte header with the high bit set,
// msg_type 1, version 3.1, the cipher specs (SSL 2.0 kinds 0x07..., 0x03...,
// 0x01... among the TLS ones 0x00xxxx), no session id, a 16-byte challenge.
bytes v2_client_hello(uint16_t version = 0x0301, size_t sid = 0) {
  const uint32_t specs[] = {0x000039, 0x000038, 0x000035, 0x000016, 0x000013,
                            0x00000a, 0x0700c0, 0x000033, 0x000032, 0x00002f,
                            0x030080, 0x000005, 0x000004, 0x010080, 0x0000ff};
  bytes body{1};
  put16(body, version);
  put16(body, sizeof(specs) / sizeof(specs[0]) * 3);
  put16(body, sid);
  put16(body, 16);
  for (uint32_t s : specs) {
    body.push_back(static_cast<uint8_t>(s >> 16));
    put16(body, s & 0xffff);
  }
  body.insert(body.end(), sid, 0x5e);
  for (uint8_t i = 0; i < 16; ++i)
    body.push_back(static_cast<uint8_t>(0xa0 + i)); // challenge
  body.insert(body.begin(), static_cast<uint8_t>(body.size()));
  body.insert(body.begin(), static_cast<uint8_t>(0x80 | (body.size() - 1) >> 8));
  return body;
}

// The TLS suites of v2_client_hello(), in order.
const std::string v2_suites = suites_bytes({0x0039, 0x0038, 0x0035, 0x0016, 0x0013, 0x000a,
                                            0x0033, 0x0032, 0x002f, 0x0005, 0x0004, 0x00ff});

// A ServerHello of TLS 1.3 draft-NN (NN < 22) as draft servers (Chrome /
// Firefox era 2016-2017, e.g. draft-18 0x7f12) sent it: version 0x7fNN,
// random, cipher suite, extensions (key_share x25519) - no session id echo,
// no compression method.
bytes draft_server_hello(uint16_t version, uint16_t suite) {
  bytes b;
  put16(b, version);
  b.insert(b.end(), 32, 0x44);
  put16(b, suite);
  bytes ks;
  put16(ks, 0x001d);
  put16(ks, 32);
  ks.insert(ks.end(), 32, 0x77);
  bytes exts = extension(51, ks);
  put16(b, exts.size());
  append(b, exts);
  return handshake(2, b);
}

// Sends `data` as two segments split at `cut` (0: whole; SIZE_MAX: byte by byte).
void send_split(fixture& f, direction d, const bytes& data, size_t cut) {
  if (cut == SIZE_MAX) {
    f.send(d, data, 1);
    return;
  }
  if (cut == 0 || cut >= data.size()) {
    f.send(d, data);
    return;
  }
  f.send(d, bytes(data.begin(), data.begin() + static_cast<long>(cut)));
  f.send(d, bytes(data.begin() + static_cast<long>(cut), data.end()));
}

} // namespace

TEST_CASE("parse_v2_client_hello: TLS suites of the cipher specs, lengths checked") {
  const bytes rec = v2_client_hello();
  REQUIRE(rec.size() == 2 + 70);
  CHECK(rec[0] == 0x80);
  CHECK(rec[1] == 70);
  CHECK(tls::v2_hello_header(rec.data(), rec.size()));
  CHECK(tls::v2_hello_header(rec.data(), 5));
  tls::client_hello ch;
  REQUIRE(tls::parse_v2_client_hello(rec.data() + 2, rec.size() - 2, ch) == tls::hs_status::ok);
  CHECK(ch.legacy_version == 0x0301);
  CHECK(ch.cipher_suites_len == 24);
  REQUIRE(ch.cipher_suites.size() == 12);
  CHECK(ch.cipher_suites.front() == 0x0039);
  CHECK(ch.cipher_suites[6] == 0x0033); // 0x0700c0 (SSL 2.0 DES-EDE3) skipped
  CHECK(ch.cipher_suites.back() == 0x00ff);
  CHECK(ch.sni.empty());
  // With a 16-byte session id (SSL 2.0 resumption form) and SSL 3.0.
  const bytes sid = v2_client_hello(0x0300, 16);
  CHECK(tls::v2_hello_header(sid.data(), sid.size()));
  REQUIRE(tls::parse_v2_client_hello(sid.data() + 2, sid.size() - 2, ch) == tls::hs_status::ok);
  CHECK(ch.legacy_version == 0x0300);
  // One invalid input per rule.
  auto broken = [&](size_t at, uint8_t v) {
    bytes b = rec;
    b[at] = v;
    return b;
  };
  for (const auto& b : {broken(0, 0x00), broken(2, 4), broken(3, 2), broken(4, 4),
                        broken(6, 44), broken(8, 5), broken(10, 15), broken(10, 33),
                        broken(1, 71)}) {
    CHECK_FALSE(tls::v2_hello_header(b.data(), b.size()));
  }
  bytes cut = rec;
  cut.resize(cut.size() - 1);
  CHECK(tls::parse_v2_client_hello(cut.data() + 2, cut.size() - 2, ch) ==
        tls::hs_status::malformed);
  const bytes not_spec = broken(6, 44); // 44: not a multiple of 3
  CHECK(tls::parse_v2_client_hello(not_spec.data() + 2, not_spec.size() - 2, ch) ==
        tls::hs_status::malformed);
}

TEST_CASE("probe: SSLv2-compatible ClientHello, strictly") {
  const bytes rec = v2_client_hello();
  CHECK(tls_probe(rec.data(), rec.size(), c2s));
  CHECK(tls_probe(rec.data(), tls::v2_header_check, c2s));
  CHECK_FALSE(tls_probe(rec.data(), tls::v2_header_check - 1, c2s)); // lengths not seen yet
  bytes b = rec;
  b[8] = 3; // session_id_length 3
  CHECK_FALSE(tls_probe(b.data(), b.size(), c2s));
  b = rec;
  b[1] = 0x47; // record length does not add up
  CHECK_FALSE(tls_probe(b.data(), b.size(), c2s));
  b = rec;
  b[2] = 4; // SSL 2.0 SERVER-HELLO is not a ClientHello
  CHECK_FALSE(tls_probe(b.data(), b.size(), c2s));
  b = rec;
  b[3] = 0; // a pure SSL 2.0 hello (version 0.2): not parsed
  CHECK_FALSE(tls_probe(b.data(), b.size(), c2s));
  const bytes binary(64, 0x80);
  CHECK_FALSE(tls_probe(binary.data(), binary.size(), c2s));
}

TEST_CASE("SSLv2-compatible ClientHello + TLS 1.0 ServerHello, split at every byte") {
  const bytes hello = v2_client_hello();
  bytes flight = server_hello(0x0039, 0, false, 0x0301);
  append(flight, certificate_msg({make_certificate("legacy.example")}));
  append(flight, handshake(14, bytes{}));
  const bytes server = records(22, flight, 16384, 0x0301);
  bytes client2 = records(22, handshake(16, bytes(130, 4)), 16384, 0x0301);
  append(client2, records(20, bytes{1}, 16384, 0x0301));
  std::vector<size_t> cuts;
  for (size_t i = 0; i <= hello.size(); ++i)
    cuts.push_back(i);
  cuts.push_back(SIZE_MAX);
  for (size_t cut : cuts) {
    CAPTURE(cut);
    fixture f;
    const uint32_t start = f.seq[0];
    send_split(f, c2s, hello, cut);
    REQUIRE(f.clicks(3).size() == 1);
    const auto& c = f.clicks(3)[0]->record.clickstream();
    CHECK(c.hostname().empty());
    CHECK(c.cipher_suites_len() == 24);
    CHECK(c.cipher_suites() == v2_suites);
    CHECK(c.tcp_sequence() == start);
    CHECK(f.clicks(3)[0]->dir == c2s);
    CHECK(f.p->state() == parser_state::confirmed);
    send_split(f, s2c, server, cut == SIZE_MAX ? SIZE_MAX : cut * 3);
    f.send(c2s, client2);
    f.send(s2c, ccs());
    CHECK(f.p->state() == parser_state::done);
    CHECK(f.counters.violations == 0);
    REQUIRE(f.replies().size() == 1);
    const auto& r = f.replies()[0]->record.ssl_reply();
    CHECK(r.ssl_version() == 0x0301);
    CHECK(r.cipher_suite() == 0x0039);
    CHECK(r.compression_method() == 0);
    CHECK(r.host_type() == 2);
    CHECK(r.cname() == "legacy.example");
    REQUIRE(f.clicks(2).size() == 1);
    CHECK(f.clicks(2)[0]->record.clickstream().hostname() == "legacy.example");
  }
}

TEST_CASE("SSLv2 form only as a side's first record; oversize and gaps are counted") {
  // After a TLS record on the same side, 0x80... is no record header.
  fixture f;
  f.send(c2s, records(22, client_hello(ch_spec{})));
  f.send(c2s, v2_client_hello());
  CHECK(f.clicks(3).size() == 1);
  // Larger than max_buffered: counted, no record, framing survives.
  fixture g;
  g.opts.max_buffered = 32;
  g.reset();
  g.send(c2s, v2_client_hello(), 7);
  CHECK(g.clicks(3).empty());
  CHECK(g.counters.limit_hits == 1);
  g.send(c2s, records(22, handshake(16, bytes(20, 4)), 16384, 0x0301));
  CHECK(g.p->state() == parser_state::confirmed);
  CHECK(g.counters.violations == 0);
  CHECK(g.counters.limit_hits == 1);
  // A gap inside the hello: no record, the next record still parses.
  fixture h;
  const bytes hello = v2_client_hello();
  h.send(c2s, bytes(hello.begin(), hello.begin() + 20));
  h.lose(c2s, 10);
  h.send(c2s, bytes(hello.begin() + 30, hello.end()));
  CHECK(h.clicks(3).empty());
  h.send(c2s, records(22, handshake(16, bytes(33, 4)), 16384, 0x0301));
  CHECK(h.p->state() == parser_state::confirmed);
  CHECK(h.counters.violations == 0);
}

TEST_CASE("parse_server_hello: TLS 1.3 draft layout (0x7fNN, no session id)") {
  tls::server_hello sh;
  bytes m = draft_server_hello(0x7f12, 0x1301);
  REQUIRE(tls::parse_server_hello(m.data(), m.size(), sh) == tls::hs_status::ok);
  CHECK(sh.draft_layout);
  CHECK(sh.legacy_version == 0x7f12);
  CHECK(sh.version() == 0x7f12);
  CHECK(sh.cipher_suite == 0x1301);
  CHECK(sh.compression_method == 0);
  m = draft_server_hello(0x7f15, 0x1303);
  REQUIRE(tls::parse_server_hello(m.data(), m.size(), sh) == tls::hs_status::ok);
  CHECK(sh.version() == 0x7f15);
  CHECK(sh.cipher_suite == 0x1303);
  m.resize(4 + 2 + 32 + 1); // cut inside the cipher suite
  m[3] = static_cast<uint8_t>(m.size() - 4);
  CHECK(tls::parse_server_hello(m.data(), m.size(), sh) == tls::hs_status::malformed);
  // Draft 22+ moved to legacy_version 0x0303 + supported_versions 0x7f16.
  m = server_hello(0x1301, 0x7f17);
  REQUIRE(tls::parse_server_hello(m.data(), m.size(), sh) == tls::hs_status::ok);
  CHECK_FALSE(sh.draft_layout);
  CHECK(sh.version() == 0x7f17);
}

TEST_CASE("TLS 1.3 draft-18 ServerHello -> ssl_reply, split at every byte") {
  ch_spec s;
  s.sni = "draft18.example";
  s.versions = {0x7f12, 0x0303, 0x0302};
  const bytes ch = records(22, client_hello(s), 16384, 0x0301);
  const bytes sh = records(22, draft_server_hello(0x7f12, 0x1301));
  std::vector<size_t> cuts;
  for (size_t i = 0; i <= sh.size(); ++i)
    cuts.push_back(i);
  cuts.push_back(SIZE_MAX);
  for (size_t cut : cuts) {
    CAPTURE(cut);
    fixture f;
    f.send(c2s, ch);
    const uint32_t start = f.seq[1];
    send_split(f, s2c, sh, cut);
    f.send(s2c, app_data()); // EncryptedExtensions... as opaque type 23
    REQUIRE(f.replies().size() == 1);
    const auto* rec = f.replies()[0];
    const auto& r = rec->record.ssl_reply();
    CHECK(r.ssl_version() == 0x7f12);
    CHECK(r.cipher_suite() == 0x1301);
    CHECK(r.compression_method() == 0);
    CHECK(r.host_type() == 3);
    CHECK(r.cname() == "draft18.example");
    CHECK(rec->tcp_seq == start);
    CHECK(rec->dir == s2c);
    REQUIRE(f.clicks(3).size() == 1);
    CHECK(f.clicks(3)[0]->record.clickstream().hostname() == "draft18.example");
  }
}
