// SPDX-License-Identifier: Apache-2.0
#pragma once
// XMPP client-to-server stream parser (RFC 6120 / 6121, legacy XEP-0078):
// Im records (template "im", IM_PROTOCOL 7).
//
// Records:
//   - one login record per authentication: IM_LOGIN = the SASL PLAIN
//     authcid (the authzid when the authcid is empty), the DIGEST-MD5
//     username, the SCRAM n= user, or the jabber:iq:auth <username>;
//     IM_PASSW = the PLAIN password or the jabber:iq:auth <password> (empty
//     for challenge-response mechanisms); IM_SCREEN_NAME = the full JID the
//     server bound (<bind><jid>, RFC 6120 §7.6.1) or, for jabber:iq:auth,
//     username@domain/resource; RESULT_CODE 0 on success, 1 on SASL
//     <failure/> or an iq error. It leaves at the bind result (after SASL
//     <success/>), at the iq result/error (legacy), at <failure/>, or at the
//     end of the flow when the stream authenticated but never bound.
//     IP_SOURCE is the client.
//   - one record per <message> stanza that has a 'to', in either direction:
//     IM_RECEIVERS = its 'to' JID, IM_LOGIN / IM_SCREEN_NAME = those known on
//     the flow so far, RESULT_CODE 0. IP_SOURCE is the sender.
//   IM_UIN is empty (ICQ numbers). tshark truth: xmpp.auth / xmpp.to /
//   xmpp.message of xmpp.tsv; tests/integration/truth_xmpp.py.
// <starttls/> answered with <proceed/> ends parsing (state done). A stream
// that is not XML (e.g. WhatsApp's binary FunXMPP on port 5222) is a
// violation while probing.
//
// The XML reader is a small incremental tokenizer, not a validating parser:
// start/end/empty tags with quoted attributes, text, CDATA, comments and
// processing instructions; namespace prefixes are dropped from element
// names; the five predefined entities and numeric character references are
// decoded in exported values. The stream header may be missing (capture
// started mid-stream): stanzas are read at any depth.
// Limits: max_buffered bytes of an unfinished tag per direction (longer:
// the tag is skipped, counted), 32 nested elements, captured text (SASL
// payloads, credentials, JIDs) at most 4 * max_field bytes, exported values
// max_field (UTF-8 safe), max_records_per_flow. Each hit counts in
// parser_counters::limit_hits / truncated_fields.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/parser.hpp"
#include "parsers/registry.hpp"

namespace metaprobe {

// Registry entry: TCP port 5222; probe = xmpp_probe.
protocol_entry xmpp_protocol_entry();

// "<stream:stream", or "<?xml" followed by a stream header or a "jabber"
// namespace in the first bytes (after optional white space).
bool xmpp_probe(const uint8_t* data, size_t len, direction dir);

std::unique_ptr<stream_parser> make_xmpp_parser(const parser_options& opts,
                                                parser_counters& counters);

// Decodes XML predefined entities and character references (exposed for
// tests); an unknown or broken reference is kept as written.
std::string xml_unescape(std::string_view s);

class xmpp_parser final : public stream_parser {
public:
  xmpp_parser(const parser_options& opts, parser_counters& counters);

  void deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
               uint32_t seq, record_sink& out) override;
  size_t memory_bytes() const override;
  void gap(direction dir, size_t len) override;
  void finish(uint64_t ts_ns, record_sink& out) override;

private:
  static constexpr size_t max_depth = 32;
  enum class capture : uint8_t { none, auth, response, username, password, resource, jid };

  struct side {
    std::string buf;                 // bytes not yet tokenized
    std::vector<std::string> stack;  // open element local names
    bool seen_markup = false;
    bool skipping = false;           // dropping an oversized tag up to its '>'
    size_t scan = 0;                 // bytes of the unfinished markup at buf[0]
    char scan_quote = 0;             // already searched (and the quote open there)
    capture cap = capture::none;
    size_t cap_depth = 0;
    std::string cap_text;
    bool in_iq_auth = false;         // inside <query xmlns='jabber:iq:auth'>
    size_t iq_auth_depth = 0;
    std::string iq_id;               // id of the current iq stanza
    bool iq_result = false;          // inside <iq type='result'>
    bool iq_set = false;             // inside <iq type='set'>
  };

  void parse(side& s, direction dir, uint64_t ts_ns, record_sink& out);
  void on_start(side& s, direction dir, std::string_view qname, std::string_view attrs,
                bool empty, uint64_t ts_ns, record_sink& out);
  void on_end(side& s, direction dir, std::string_view name, uint64_t ts_ns, record_sink& out);
  void on_text(side& s, std::string_view text);
  void end_capture(side& s, uint64_t ts_ns, record_sink& out);
  void emit_login(uint32_t result, uint64_t ts_ns, record_sink& out);
  void emit(parsed_record&& rec, record_sink& out);
  void set(std::string& dst, std::string_view v);
  void violate();

  const parser_options opts_;
  parser_counters& counters_;
  side sides_[2];
  std::string mechanism_;
  std::string login_, passw_, screen_, resource_, domain_;
  direction auth_dir_ = direction::client_to_server;
  bool auth_seen_ = false;       // credentials or an <auth> were sent
  bool login_pending_ = false;   // authenticated, record not yet out
  std::string legacy_id_;        // id of the jabber:iq:auth set
  bool starttls_ = false;
  size_t records_ = 0;
};

} // namespace metaprobe
