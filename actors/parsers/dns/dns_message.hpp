// SPDX-License-Identifier: Apache-2.0
#pragma once
// DNS wire format (RFC 1035 §4): header, names with compression, questions
// and resource records. Every read is bounds-checked against the message;
// nothing here allocates except the strings it fills (which keep their
// capacity when a message_view is reused).

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace metaprobe::dns {

constexpr size_t header_size = 12;

struct header {
  uint16_t id = 0;
  uint16_t flags = 0;
  uint16_t qdcount = 0;
  uint16_t ancount = 0;
  uint16_t nscount = 0;
  uint16_t arcount = 0;
  bool response() const { return (flags & 0x8000) != 0; }
  uint8_t opcode() const { return static_cast<uint8_t>((flags >> 11) & 0x0f); }
  uint8_t rcode() const { return static_cast<uint8_t>(flags & 0x0f); }
};

// False when `len` < 12.
bool read_header(const uint8_t* msg, size_t len, header& h);

enum class name_status : uint8_t {
  ok,        // decoded; text "<Root>" for the root name
  too_long,  // more than 253 characters: text "<Name too long>"
  loop,      // compression loop: text "<Name contains a pointer that loops>"
  malformed, // label type 0x40/0x80, or bytes past the end: nothing usable
  overload,  // the work budget ran out (crafted pointer chains): give up
};

// Labels and pointers a name may walk after its first pointer, per call of
// the budget-less read_name.
constexpr size_t default_name_budget = 8192;

// Decodes the name at msg[off] (message-relative compression pointers).
// `text` gets it as tshark 4.0 shows it: labels joined by '.', no trailing
// dot, "<Root>" for the root; label bytes \a \b \t \n \v \f \r as those C
// escapes, other bytes below 0x20 and 0x7f as "\ooo" (octal), bytes from 0x80
// as UTF-8 where well-formed and U+FFFD where not; the placeholders above
// for the failure cases. Loop rules are tshark's: a pointer to the two bytes
// just past itself, or more than 255 pointers in one name. Every label or
// pointer walked after the first pointer costs one unit of `budget`; when it
// runs out the result is overload (bounds the work on crafted messages).
// `wire` (optional) gets the uncompressed wire form (only for ok).
// `next` is set to the offset just after the name's bytes at `off` for every
// status but malformed.
name_status read_name(const uint8_t* msg, size_t len, size_t off, std::string& text,
                      std::string* wire, size_t& next, size_t& budget);
// Same with a budget of default_name_budget.
name_status read_name(const uint8_t* msg, size_t len, size_t off, std::string& text,
                      std::string* wire, size_t& next);
// Same walk and status, nothing rendered or allocated (probes).
name_status skip_name(const uint8_t* msg, size_t len, size_t off, size_t& next, size_t& budget);

enum class section : uint8_t { question = 0, answer = 1, authority = 2, additional = 3 };

// A question (type/class only) or a resource record.
struct entry {
  section sec = section::question;
  name_status name_st = name_status::ok;
  std::string name;
  uint16_t type = 0;
  uint16_t rrclass = 0;
  uint32_t ttl = 0;
  size_t rdata_off = 0;
  uint16_t rdlen = 0;
  bool rdata_complete = true; // RDATA inside the message (always, for decoded entries)
};

enum class decode_status : uint8_t {
  ok,        // every counted entry up to the last requested section decoded
  truncated, // the message ended before the header's counts were met
  malformed, // a bad name (label type) or an RR whose RDATA runs past the end
  limit,     // more entries than max_entries, or max_name_steps used up
};

struct decode_limits {
  size_t max_entries = 256;                   // questions + RRs decoded per message
  // Name budget (see read_name) per message. A legitimate message needs at
  // most about 256 entries x (127 labels + 255 pointers) ~ 10^5 steps; a
  // crafted one (dns-fwdptr-malformed.pcap: 63 KB of forward pointer
  // chains) would otherwise cost ~10 ms of CPU. 2^18 steps still decode the
  // first 16 entries of that capture, as tshark shows them.
  size_t max_name_steps = 1u << 18;
  section last_section = section::additional; // stop after this section
};

// The decoded part of one message. `entries[0..count)` are valid; the vector
// only grows, so its strings are reused from message to message.
struct message_view {
  header hdr;
  std::vector<entry> entries;
  size_t count = 0;
  size_t end = 0; // offset after the last fully decoded entry
};

// Decodes header, then entries section by section, in order, like tshark:
// whatever decoded before an error stays in `out`.
decode_status decode_message(const uint8_t* msg, size_t len, const decode_limits& limits,
                             message_view& out);

inline uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
inline uint32_t be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}

} // namespace metaprobe::dns
