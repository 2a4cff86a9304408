// SPDX-License-Identifier: Apache-2.0
#pragma once
// Builds WebSocket frames (RFC 6455 §5.2) for the tests, broken ones too:
// any opcode, FIN and RSV bits, masked or not, and the length in the
// 7-, 16- or 64-bit form (the shortest by default, a longer one on request).

#include <cstddef>
#include <cstdint>
#include <string>

namespace metaprobe::test {

struct frame_spec {
  uint8_t opcode = 0x1; // text
  bool fin = true;
  uint8_t rsv = 0;      // RSV1..3 as bits 0x4, 0x2, 0x1
  bool masked = false;
  uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  int length_form = 0;  // 0 shortest, 7, 16 or 64
  bool top_bit = false; // set the forbidden top bit of a 64-bit length
};

inline std::string ws_frame(const std::string& payload, const frame_spec& f = {}) {
  std::string out;
  out.push_back(static_cast<char>((f.fin ? 0x80 : 0) | ((f.rsv & 7) << 4) | (f.opcode & 0x0f)));
  const uint64_t n = payload.size();
  int form = f.length_form;
  if (form == 0)
    form = n < 126 ? 7 : n <= 0xffff ? 16 : 64;
  const uint8_t mask_bit = f.masked ? 0x80 : 0;
  if (form == 7) {
    out.push_back(static_cast<char>(mask_bit | static_cast<uint8_t>(n)));
  } else if (form == 16) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>((n >> 8) & 0xff));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) {
      uint8_t b = static_cast<uint8_t>((n >> (8 * i)) & 0xff);
      if (i == 7 && f.top_bit)
        b |= 0x80;
      out.push_back(static_cast<char>(b));
    }
  }
  if (f.masked)
    out.append(reinterpret_cast<const char*>(f.key), 4);
  for (size_t i = 0; i < payload.size(); ++i)
    out.push_back(static_cast<char>(payload[i] ^ (f.masked ? f.key[i & 3] : 0)));
  return out;
}

// A client frame: masked, as RFC 6455 §5.3 requires (JsSIP, sipML5, browsers).
inline std::string client_frame(const std::string& payload, uint8_t opcode = 0x1,
                                bool fin = true) {
  frame_spec f;
  f.opcode = opcode;
  f.fin = fin;
  f.masked = true;
  return ws_frame(payload, f);
}

// A server frame: unmasked (Kamailio's websocket module, Asterisk).
inline std::string server_frame(const std::string& payload, uint8_t opcode = 0x1,
                                bool fin = true) {
  frame_spec f;
  f.opcode = opcode;
  f.fin = fin;
  return ws_frame(payload, f);
}

} // namespace metaprobe::test
