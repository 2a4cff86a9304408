// SPDX-License-Identifier: Apache-2.0
#pragma once
// Follows one SASL authentication exchange (RFC 4422) as POP3 AUTH (RFC
// 5034) and IMAP AUTHENTICATE (RFC 3501 §6.2.2, SASL-IR RFC 4959) carry it,
// and keeps the user name and, where the mechanism sends it in clear, the
// password. Plain C++, no I/O; the POP3 and IMAP parsers drive it.
//
// Protocol framing is the caller's: it calls start() with the mechanism
// name, response() with every client response (the initial response of the
// command line included; base64 text, "=" for an empty one, "*" cancels),
// challenge() with the text after each server "+ ".
//
// What each mechanism yields (decoded base64):
//   PLAIN (RFC 4616)      authzid NUL authcid NUL passwd -> user = authcid
//                         (authzid when authcid is empty), password = passwd
//   LOGIN (draft-murchison-sasl-login) first response = user, second =
//                         password; a challenge that decodes to a prompt
//                         with "user" or "pass" in it (the usual
//                         "Username:" / "Password:") decides which one a
//                         response is, so an initial response (curl sends
//                         the user name that way) counts as the user
//   CRAM-MD5 (RFC 2195)   "user SP hexdigest" -> user (no password)
//   DIGEST-MD5 (RFC 2831) username="..." of the response -> user
//   SCRAM-* (RFC 5802)    client-first "n,,n=user,r=..." -> user
//   XOAUTH2 (Google)      "user=...^Aauth=Bearer ...^A^A" -> user (the token
//                         is not a password and is not kept)
//   OAUTHBEARER (RFC 7628) GS2 header "n,a=user,^A..." -> user
//   EXTERNAL (RFC 4422)   the authzid sent, when not empty -> user
// Others (GSSAPI, NTLM, ...): nothing is read; the exchange still ends with
// the server's result.
//
// Limits: every decoded response is capped at max_decoded bytes (longer
// ones are cut, which at worst loses the password); user and password are
// cut at max_field on a UTF-8 boundary (ill-formed UTF-8 becomes U+FFFD).
// A response that is not base64 is ignored.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace metaprobe::sasl {

// What a login attempt (POP3 USER/PASS, APOP, AUTH; IMAP LOGIN,
// AUTHENTICATE) gave and how the server answered it.
enum class outcome : uint8_t {
  pending,   // no answer seen yet
  accepted,  // +OK / tagged OK
  rejected,  // -ERR / tagged NO or BAD
  cancelled, // the client answered a challenge with "*"
};

struct login_attempt {
  std::string mechanism; // "USER", "APOP", "LOGIN" (IMAP command), or the
                         // SASL mechanism name in upper case
  std::string user;
  std::string password;  // empty where the mechanism sends none in clear
  outcome result = outcome::pending;
  uint32_t responses = 0; // SASL client responses seen
};

class exchange {
public:
  static constexpr size_t max_decoded = 2048;
  // Client responses one exchange may take. Real mechanisms use at most
  // three; past this the caller stops treating client lines as responses
  // (the server's final answer was lost) and counts a limit hit.
  static constexpr uint32_t max_responses = 8;

  explicit exchange(size_t max_field) : max_field_(max_field) {}

  // A new exchange with mechanism `mech` (any case; cut at 40 bytes).
  void start(std::string_view mech);
  // The text a server "+" continuation carried (base64, maybe empty).
  void challenge(std::string_view b64);
  // One client response line. Returns false when it was "*" (cancelled).
  bool response(std::string_view b64);

  // Whether max_responses were taken.
  bool exhausted() const { return a_.responses >= max_responses; }
  const login_attempt& attempt() const { return a_; }
  login_attempt& attempt() { return a_; }
  // Fields cut at max_field so far (the caller counts them).
  uint64_t truncated() const { return truncated_; }

private:
  enum class expect : uint8_t { unknown, user, password };
  void set(std::string& dst, std::string_view v);

  size_t max_field_;
  login_attempt a_;
  expect next_ = expect::unknown; // what the last LOGIN challenge asked for
  uint64_t truncated_ = 0;
};

// Case-insensitive check that `text` contains `word` (ASCII).
bool icontains(std::string_view text, std::string_view word);

} // namespace metaprobe::sasl
