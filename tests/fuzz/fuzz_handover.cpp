// SPDX-License-Identifier: Apache-2.0
// Fuzzes the parser stage's re-detection path (parsers/common/redetect.hpp,
// parser_host.hpp): a flow of HTTP, SMTP, POP3, IMAP or XMPP whose fixed
// opening hands over (CONNECT 200, STARTTLS accepted, <proceed/>), followed
// by the fuzz bytes of both sides in random segments (and gaps), so what
// follows the hand-over is random: nested CONNECTs, TLS, HTTP, noise.
// Invariants (abort on violation): no more records than
// max_records_per_flow, every clickstream string valid UTF-8 within
// max_field, at most max_layers protocols in a chain, the bytes held for
// re-detection within max_redetect_bytes per hand-over.
//
// Input: [0] flags (bit0 ssl_parse_reply, bit1 tiny limits, bit2 gaps,
//        bits 4..6 outer protocol: http, smtp, pop3, imap, xmpp)
//        [1..4] PRNG seed   [5..6] client byte count (big endian)
//        then the client bytes, then the server bytes.

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_driver.hpp"
#include "parsers/stage/parser_host.hpp"

using namespace metaprobe;
using fuzz::check;
using fuzz::check_text;

namespace {

// A parser_host seen as one stream parser, for fuzz::feed_both_sides.
class host_flow {
public:
  host_flow(const protocol_entry& e, const parser_options& o, uint16_t port, bool lean)
    : host_(e, o), opts_(o) {
    in_.proto = e.id;
    flow_info info;
    info.lean = lean; // created while memory was short (core/memory_budget.hpp)
    info.flow_id = 1;
    info.l4_proto = 6;
    info.proto = e.id;
    info.server_port = port;
    in_.infos.push_back(info);
    stream_event ev;
    ev.kind = stream_event_kind::open;
    ev.flow_id = 1;
    in_.events.push_back(ev);
  }
  void deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts, uint32_t seq,
               record_sink&) {
    stream_event ev;
    ev.kind = stream_event_kind::data;
    ev.dir = dir;
    ev.flow_id = 1;
    ev.ts_ns = ts;
    ev.seq = seq;
    ev.source = stream_event::own_bytes;
    ev.offset = static_cast<uint32_t>(in_.bytes.size());
    ev.len = static_cast<uint32_t>(len);
    in_.bytes.insert(in_.bytes.end(), data, data + len);
    in_.events.push_back(ev);
    if (in_.events.size() >= 64)
      run(); // several batches, as the classifier sends them
  }
  void deliver(direction dir, const std::string& s) {
    record_sink none;
    deliver(dir, reinterpret_cast<const uint8_t*>(s.data()), s.size(), 1, 0, none);
  }
  void gap(direction dir, size_t len) {
    stream_event ev;
    ev.kind = stream_event_kind::gap;
    ev.dir = dir;
    ev.flow_id = 1;
    ev.len = static_cast<uint32_t>(len);
    in_.events.push_back(ev);
  }
  void finish(uint64_t ts, record_sink& out) {
    flow_summary s;
    s.info = in_.infos.empty() ? flow_info{} : in_.infos[0];
    s.reason = flow_end_reason::end;
    in_.summaries.push_back(s);
    stream_event ev;
    ev.kind = stream_event_kind::close;
    ev.flow_id = 1;
    ev.ts_ns = ts;
    in_.events.push_back(ev);
    run();
    out = std::move(records_);
  }
  const parser_host& host() const { return host_; }

private:
  void run() {
    record_batch out;
    host_.process(in_, out);
    for (auto& it : out.items)
      records_.push_back(std::move(it.rec));
    in_.events.clear();
    in_.bytes.clear();
    in_.summaries.clear();
    in_.infos.clear();
  }
  parser_host host_;
  parser_options opts_;
  stream_batch in_;
  record_sink records_;
};

struct opening {
  app_protocol proto;
  uint16_t port;
  const char* client[3];
  const char* server[3];
};

const opening openings[] = {
  {app_protocol::http, 3128,
   {"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", nullptr, nullptr},
   {"HTTP/1.1 200 Connection established\r\n\r\n", nullptr, nullptr}},
  {app_protocol::smtp, 25,
   {"EHLO c\r\n", "STARTTLS\r\n", nullptr},
   {"220 mx ESMTP\r\n", "250 STARTTLS\r\n", "220 Go ahead\r\n"}},
  {app_protocol::pop3, 110, {"STLS\r\n", nullptr, nullptr}, {"+OK ready\r\n", "+OK Begin\r\n", nullptr}},
  {app_protocol::imap, 143, {"a STARTTLS\r\n", nullptr, nullptr}, {"* OK ready\r\n", "a OK Begin\r\n", nullptr}},
  {app_protocol::xmpp, 5222,
   {"<?xml version='1.0'?><stream:stream to='x' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
    "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", nullptr},
   {"<?xml version='1.0'?><stream:stream from='x' id='1' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>",
    "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", nullptr}},
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::two_sided_input in;
  if (!fuzz::split_two_sided(data, size, in))
    return 0;
  parser_options o;
  o.ssl_parse_reply = (in.flags & 1) != 0;
  if (in.flags & 2)
    fuzz::set_tiny_limits(o);
  const bool gaps = (in.flags & 4) != 0;
  const opening& op = openings[((in.flags >> 4) & 7) % (sizeof openings / sizeof openings[0])];
  const protocol_entry* e = find_protocol(op.proto);
  check(e != nullptr);
  // Every flow is charged to a budget; flag 8: a lean flow under a budget
  // that is always full (its parsers are left once they hold 16 KiB).
  const bool short_of_memory = (in.flags & 8) != 0;
  memory_budget budget(short_of_memory ? 1 : uint64_t{1} << 30);
  o.budget = &budget;
  host_flow flow(*e, o, op.port, short_of_memory);
  // The opening: server and client lines alternate, the server first.
  for (size_t i = 0; i < 3; ++i) {
    if (op.server[i])
      flow.deliver(direction::server_to_client, op.server[i]);
    if (op.client[i])
      flow.deliver(direction::client_to_server, op.client[i]);
  }
  record_sink out;
  fuzz::feed_both_sides(flow, in, gaps, out);
  check(out.size() <= o.max_records_per_flow);
  // The flow has ended (feed_both_sides finishes it): nothing stays charged.
  check(flow.host().charged_bytes() == 0);
  check(flow.host().active_flows() == 0);
  for (const auto& r : out) {
    if (!r.record.has_clickstream())
      continue;
    const auto& c = r.record.clickstream();
    for (const std::string* s : {&c.hostname(), &c.path(), &c.referer(), &c.user_agent(),
                                 &c.cookie(), &c.method_name()})
      check_text(*s, o.max_field);
  }
  const parser_host_counters& hc = flow.host().host_counters();
  uint64_t handovers = 0;
  for (uint64_t n : hc.handovers)
    handovers += n;
  check(hc.redetect_bytes <= (handovers + 1) * parser_host::max_redetect_bytes * 2);
  for (const auto& [chain, n] : flow.host().chains()) {
    size_t layers = 1;
    for (char ch : chain)
      layers += ch == '>';
    check(layers <= parser_host::max_layers + 1); // "+ >unknown"
    (void)n;
  }
  return 0;
}
