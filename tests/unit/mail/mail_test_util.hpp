// SPDX-License-Identifier: Apache-2.0
#pragma once
// Test-only fixture the SMTP, POP3 and IMAP unit tests share: one stream
// parser on one flow, fed whole strings or strings cut into fixed chunks,
// with a sequence number counted per direction, and the records it emitted.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "parsers/parser.hpp"
#include "parsers/registry.hpp"

namespace metaprobe::test {

constexpr auto c2s = direction::client_to_server;
constexpr auto s2c = direction::server_to_client;

template <class Parser>
std::unique_ptr<Parser> construct_parser(const parser_options& opts, parser_counters& counters) {
  return std::make_unique<Parser>(opts, counters);
}

// `Parser` is the type the tests reach through `p` (the concrete parser for
// its accessors, or stream_parser); `Make` builds a fresh one.
template <class Parser,
          std::unique_ptr<Parser> (*Make)(const parser_options&, parser_counters&) =
              construct_parser<Parser>>
struct stream_fixture {
  parser_options opts;
  parser_counters counters;
  std::unique_ptr<Parser> p;
  record_sink out;
  uint32_t seq[2] = {1000, 5000};

  stream_fixture() { reset(); }
  // A fresh parser (with the current opts) and no records; seq runs on.
  void reset() {
    p = Make(opts, counters);
    out.clear();
  }
  // `data` from `d` in segments of `chunk` bytes (0: one segment), ts 7.
  void send(direction d, const std::string& data, size_t chunk = 0) {
    const size_t step = chunk ? chunk : data.size();
    for (size_t i = 0; i < data.size(); i += step) {
      const size_t n = std::min(step, data.size() - i);
      p->deliver(d, reinterpret_cast<const uint8_t*>(data.data() + i), n, 7,
                 seq[static_cast<int>(d)], out);
      seq[static_cast<int>(d)] += static_cast<uint32_t>(n);
    }
  }
  const v1::Mail& mail(size_t i) const { return out.at(i).record.mail(); }
};

} // namespace metaprobe::test

namespace metaprobe::test {

// One message of a recorded conversation.
struct turn {
  direction dir;
  std::string text;
};
using script = std::vector<turn>;

// Plays `s` into `f`, each message cut into two segments at byte `split`
// (0 or past the end: one segment), so that every line is tried split at
// every position.
template <class Fixture>
void play(Fixture& f, const script& s, size_t split = 0) {
  for (const turn& t : s) {
    if (split == 0 || split >= t.text.size()) {
      f.send(t.dir, t.text);
    } else {
      f.send(t.dir, t.text.substr(0, split));
      f.send(t.dir, t.text.substr(split));
    }
  }
}

// The longest message of `s` (the split positions a test walks).
inline size_t longest(const script& s) {
  size_t n = 0;
  for (const turn& t : s)
    n = std::max(n, t.text.size());
  return n;
}

} // namespace metaprobe::test
