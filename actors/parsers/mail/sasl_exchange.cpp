// SPDX-License-Identifier: Apache-2.0
#include "parsers/mail/sasl_exchange.hpp"

#include "parsers/common/field_text.hpp"
#include "parsers/common/text_line.hpp"
#include "parsers/mail/sasl.hpp"

namespace metaprobe::sasl {

namespace {

using text::ascii_upper;
using text::trim_ows;

bool starts_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.compare(0, p.size(), p) == 0;
}

// A SASL name with "=2C" and "=3D" decoded (RFC 5802 §5.1, RFC 7628 §3.1).
std::string sasl_name(std::string_view v) {
  std::string out;
  for (size_t i = 0; i < v.size();) {
    if (v.substr(i, 3) == "=2C") {
      out.push_back(',');
      i += 3;
    } else if (v.substr(i, 3) == "=3D") {
      out.push_back('=');
      i += 3;
    } else {
      out.push_back(v[i++]);
    }
  }
  return out;
}

// a=<authzid> of a GS2 header "n,a=user,..." (OAUTHBEARER); empty if none.
std::string gs2_authzid(std::string_view msg) {
  const size_t c = msg.find(',');
  if (c == std::string_view::npos)
    return {};
  std::string_view rest = msg.substr(c + 1);
  if (!starts_with(rest, "a="))
    return {};
  rest.remove_prefix(2);
  return sasl_name(rest.substr(0, rest.find(',')));
}

// user=<name> of an XOAUTH2 initial response; empty if none.
std::string_view xoauth2_user(std::string_view msg) {
  if (!starts_with(msg, "user="))
    return {};
  const std::string_view v = msg.substr(5);
  return v.substr(0, v.find('\x01'));
}

} // namespace

bool icontains(std::string_view text, std::string_view word) {
  if (word.empty())
    return true;
  if (text.size() < word.size())
    return false;
  for (size_t i = 0; i + word.size() <= text.size(); ++i) {
    size_t k = 0;
    while (k < word.size() && ascii_upper(text[i + k]) == ascii_upper(word[k]))
      ++k;
    if (k == word.size())
      return true;
  }
  return false;
}

void exchange::start(std::string_view mech) {
  a_ = login_attempt{};
  mech = mech.substr(0, 40);
  a_.mechanism.reserve(mech.size());
  for (char c : mech)
    a_.mechanism.push_back(ascii_upper(c));
  next_ = expect::unknown;
}

void exchange::set(std::string& dst, std::string_view v) {
  if (text::assign_utf8(dst, v, max_field_))
    ++truncated_;
}

void exchange::challenge(std::string_view b64) {
  if (a_.mechanism != "LOGIN")
    return;
  std::string prompt;
  base64_decode(trim_ows(b64), prompt, 256);
  if (icontains(prompt, "pass"))
    next_ = expect::password;
  else if (icontains(prompt, "user") || icontains(prompt, "name"))
    next_ = expect::user;
  else
    next_ = expect::unknown;
}

bool exchange::response(std::string_view b64) {
  b64 = trim_ows(b64);
  if (b64 == "*") {
    a_.result = outcome::cancelled;
    return false;
  }
  ++a_.responses;
  std::string dec;
  if (b64 != "=" && !base64_decode(b64, dec, max_decoded))
    return true; // not base64: nothing to read
  const std::string& m = a_.mechanism;
  if (m == "PLAIN") {
    plain_credentials c;
    if (a_.user.empty() && split_plain(dec, c)) {
      set(a_.user, c.authcid.empty() ? c.authzid : c.authcid);
      set(a_.password, c.passwd);
    }
  } else if (m == "LOGIN") {
    expect what = next_;
    if (what == expect::unknown)
      what = a_.user.empty() ? expect::user : expect::password;
    if (what == expect::user)
      set(a_.user, dec);
    else
      set(a_.password, dec);
    next_ = expect::unknown;
  } else if (m == "CRAM-MD5") {
    const size_t sp = dec.rfind(' ');
    if (a_.user.empty() && sp != std::string::npos && sp > 0)
      set(a_.user, std::string_view(dec).substr(0, sp));
  } else if (m == "DIGEST-MD5") {
    if (a_.user.empty()) {
      const std::string u = digest_md5_username(dec);
      if (!u.empty())
        set(a_.user, u);
    }
  } else if (starts_with(m, "SCRAM-")) {
    if (a_.user.empty())
      set(a_.user, scram_username(dec));
  } else if (m == "XOAUTH2") {
    if (a_.user.empty())
      set(a_.user, xoauth2_user(dec));
  } else if (m == "OAUTHBEARER") {
    if (a_.user.empty())
      set(a_.user, gs2_authzid(dec));
  } else if (m == "EXTERNAL") {
    if (a_.user.empty() && !dec.empty())
      set(a_.user, dec);
  }
  return true;
}

} // namespace metaprobe::sasl
