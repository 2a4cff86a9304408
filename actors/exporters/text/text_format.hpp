// SPDX-License-Identifier: Apache-2.0
#pragma once
// Line formatting of the text export (no I/O). One record becomes one line:
// the fields named in `ajb_save_<kind>_format`, in that order, separated by
// text_field_separator (TAB), ended by '\n'. Values are escaped so a line
// never contains a raw TAB, CR or LF: see append_escaped(). The meaning of
// each field is documented in docs/configuration.md ("Text export").

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "metaprobe/v1/records.pb.h"

namespace metaprobe {

// The four text files of the seeds: url (HTTP requests), ssl (TLS SNI,
// CNAME, QUIC SNI), sip, dns.
enum class text_kind : uint8_t { url, ssl, sip, dns };

constexpr char text_field_separator = '\t';

std::string_view text_kind_name(text_kind k);
std::optional<text_kind> text_kind_from_name(std::string_view name);

// ajb_save_ssl bits: which Clickstream host types the ssl file takes.
constexpr int64_t ssl_mask_sni = 1;   // HOST_TYPE 3, TLS SNI
constexpr int64_t ssl_mask_cname = 2; // HOST_TYPE 2, CNAME
constexpr int64_t ssl_mask_quic = 4;  // HOST_TYPE 4, QUIC SNI

// Appends `s` with '\\' -> "\\\\", TAB -> "\\t", CR -> "\\r", LF -> "\\n"
// and other control bytes (0x00-0x1f, 0x7f) -> "\\xHH". Other bytes,
// including non-ASCII UTF-8, are copied unchanged.
void append_escaped(std::string& out, std::string_view s);

class text_line_formatter {
public:
  // `fields` must be names of text_format_fields(kind); throws config_error
  // otherwise. `ssl_mask` (ajb_save_ssl; -1 all) matters for kind ssl only.
  text_line_formatter(text_kind kind, const std::vector<std::string>& fields,
                      int64_t ssl_mask = -1);

  // True when `rec` belongs in this kind's file: url takes Clickstream with
  // HOST_TYPE 1, ssl Clickstream with HOST_TYPE 2/3/4 selected by the mask,
  // sip Sip records, dns Dns records.
  bool selects(const v1::Record& rec) const;
  // Appends the line for `rec` (with '\n') and returns true, or returns
  // false and appends nothing when selects(rec) is false.
  bool append(const v1::Record& rec, std::string& out) const;

  text_kind kind() const { return kind_; }

  enum class field : uint8_t {
    ts, prg, login, ipsrc, ipdst, psrc, pdst, ssid,
    host, path, ref, uagent, cookie, tphost, blockd, method, methodname,
    msg, scode, from, to, callid, uri, ctype, gateways,
    transport, rrtype, rrclass, ttl, rdlen, rdata,
  };

private:
  text_kind kind_;
  int64_t ssl_mask_;
  std::vector<field> fields_;
};

} // namespace metaprobe
