// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "classifier/tcp_stream.hpp"

using namespace metaprobe;

namespace {

struct chunk {
  bool gap;
  uint32_t seq;
  std::string bytes; // data (empty for gaps)
  uint32_t len;
  bool buffered;
  const uint8_t* ptr;
};

struct recorder final : tcp_stream_sink {
  std::vector<chunk> chunks;
  std::string text; // data with '#' for each gapped byte
  void on_data(uint32_t seq, const uint8_t* data, uint32_t len, bool buffered) override {
    std::string s = data ? std::string(reinterpret_cast<const char*>(data), len) : std::string();
    chunks.push_back({false, seq, s, len, buffered, data});
    text += data ? s : std::string(len, '?');
  }
  void on_gap(uint32_t seq, uint32_t len) override {
    chunks.push_back({true, seq, {}, len, false, nullptr});
    text += std::string(len, '#');
  }
};

struct fixture {
  tcp_stream_options opts;
  tcp_stream_counters counters;
  tcp_stream s;
  recorder r;
  fixture() { s.bind(&opts, &counters); }
  segment_result seg(uint32_t seq, const std::string& d, bool fin = false) {
    return s.segment(seq, reinterpret_cast<const uint8_t*>(d.data()),
                     static_cast<uint32_t>(d.size()), fin, r);
  }
};

} // namespace

TEST_CASE("tcp_stream: in-order data is delivered once, in place") {
  fixture f;
  f.s.syn(1000);
  std::string a = "hello ", b = "world";
  CHECK(f.s.segment(1001, reinterpret_cast<const uint8_t*>(a.data()), 6, false, f.r) ==
        segment_result::in_order);
  CHECK(f.seg(1007, b) == segment_result::in_order);
  CHECK(f.r.text == "hello world");
  REQUIRE(f.r.chunks.size() == 2);
  CHECK(f.r.chunks[0].seq == 1001);
  CHECK(f.r.chunks[0].ptr == reinterpret_cast<const uint8_t*>(a.data())); // zero copy
  CHECK_FALSE(f.r.chunks[0].buffered);
  CHECK(f.r.chunks[1].seq == 1007);
  CHECK(f.s.next_seq() == 1012);
  CHECK(f.counters.in_order == 2);
  CHECK(f.counters.out_of_order == 0);
}

TEST_CASE("tcp_stream: out-of-order segments wait for the hole") {
  fixture f;
  f.s.syn(0);
  CHECK(f.seg(7, "CCC") == segment_result::out_of_order);
  CHECK(f.seg(4, "BBB") == segment_result::out_of_order);
  CHECK(f.r.text.empty());
  CHECK(f.s.buffered_bytes() == 6);
  CHECK(f.seg(1, "AAA") == segment_result::in_order);
  CHECK(f.r.text == "AAABBBCCC");
  REQUIRE(f.r.chunks.size() == 3);
  CHECK_FALSE(f.r.chunks[0].buffered);
  CHECK(f.r.chunks[1].buffered);
  CHECK(f.r.chunks[1].seq == 4);
  CHECK(f.r.chunks[2].seq == 7);
  CHECK(f.s.buffered_bytes() == 0);
  CHECK(f.s.buffered_segments() == 0);
  CHECK(f.counters.out_of_order == 2);
  CHECK(f.counters.in_order == 1);
}

TEST_CASE("tcp_stream: overlaps are trimmed, first buffered copy wins") {
  fixture f;
  f.s.syn(0);
  CHECK(f.seg(5, "efgh") == segment_result::out_of_order);   // 5..8
  CHECK(f.seg(3, "cdEFGHij") == segment_result::out_of_order); // 3..10 overlaps 5..8
  CHECK(f.s.buffered_bytes() == 8);
  CHECK(f.s.buffered_segments() == 3);
  CHECK(f.seg(1, "abc") == segment_result::in_order);        // overlaps 3
  CHECK(f.r.text == "abcdefghij");
  // A segment partly behind the delivered point: only the new tail goes out.
  CHECK(f.seg(9, "ijkl") == segment_result::in_order);
  CHECK(f.r.text == "abcdefghijkl");
  CHECK(f.counters.retransmitted == 0);
}

TEST_CASE("tcp_stream: retransmissions are dropped and counted") {
  fixture f;
  f.s.syn(100);
  f.seg(101, "abcd");
  CHECK(f.seg(101, "abcd") == segment_result::retransmission);
  CHECK(f.seg(102, "bc") == segment_result::retransmission);
  CHECK(f.seg(110, "xyz") == segment_result::out_of_order);
  CHECK(f.seg(110, "xyz") == segment_result::retransmission); // already buffered
  CHECK(f.seg(111, "y") == segment_result::retransmission);
  CHECK(f.counters.retransmitted == 4);
  CHECK(f.r.text == "abcd");
  // Keep-alive probe: the one old byte just before the next expected one.
  CHECK(f.seg(104, "d") == segment_result::keepalive);
  CHECK(f.counters.keepalives == 1);
  CHECK(f.counters.retransmitted == 4);
  // One old byte further back is a retransmission.
  CHECK(f.seg(103, "c") == segment_result::retransmission);
  CHECK(f.counters.retransmitted == 5);
  CHECK(f.r.text == "abcd");
}

TEST_CASE("tcp_stream: sequence wraparound") {
  fixture f;
  f.s.syn(0xfffffff8u);
  f.seg(0xfffffff9u, "0123456");   // up to 0xffffffff
  f.seg(0x00000007u, "BB");        // out of order, after the wrap
  f.seg(0x00000000u, "abcdefg");   // fills 0..6
  CHECK(f.r.text == "0123456abcdefgBB");
  CHECK(f.s.next_seq() == 9);
  CHECK(f.seg(0xfffffffcu, "3456") == segment_result::retransmission);
  CHECK(f.s.consumed() == 16);
}

TEST_CASE("tcp_stream: the byte limit declares a gap, then buffered data continues") {
  fixture f;
  f.opts.max_ooo_bytes = 8;
  f.s.syn(0);
  f.seg(1, "ab");                   // delivered: next = 3
  CHECK(f.seg(6, "FGHI") == segment_result::out_of_order);   // hole 3..5
  CHECK(f.seg(10, "JKLM") == segment_result::out_of_order);  // 8 bytes buffered
  CHECK(f.counters.limit_drops == 0);
  CHECK(f.seg(20, "T") == segment_result::out_of_order);     // does not fit: hole 3..5 given up
  CHECK(f.counters.limit_drops == 1);
  CHECK(f.counters.gaps == 1);
  CHECK(f.counters.bytes_gapped == 3);
  CHECK(f.r.text == "ab###FGHIJKLM");
  CHECK(f.s.buffered_bytes() == 1);
  // Late bytes of the given-up hole are now old.
  CHECK(f.seg(3, "cde") == segment_result::retransmission);
  f.s.flush(f.r);
  CHECK(f.r.text == "ab###FGHIJKLM######T");
  CHECK(f.counters.gaps == 2);
}

TEST_CASE("tcp_stream: the gap stops where the new segment starts") {
  fixture f;
  f.opts.max_ooo_bytes = 4;
  f.s.syn(0);
  f.seg(9, "WXYZ");                  // hole 1..8
  f.seg(5, "efgh");                  // inside the hole: no room
  // The hole is given up only up to the new segment, which is then in order.
  CHECK(f.r.text == "####efghWXYZ");
  CHECK(f.counters.limit_drops == 1);
}

TEST_CASE("tcp_stream: the segment-count limit declares a gap") {
  fixture f;
  f.opts.max_ooo_segments = 2;
  f.s.syn(0);
  f.seg(3, "c");
  f.seg(5, "e");
  CHECK(f.s.buffered_segments() == 2);
  f.seg(7, "g");
  CHECK(f.counters.limit_drops == 1);
  CHECK(f.r.text == "##c");
  CHECK(f.s.buffered_segments() == 2);
}

TEST_CASE("tcp_stream: a segment larger than the whole buffer") {
  fixture f;
  f.opts.max_ooo_bytes = 4;
  f.s.syn(0);
  f.seg(3, "cdefghij");
  CHECK(f.r.text == "##cdefghij");
  CHECK(f.counters.limit_drops == 1);
}

TEST_CASE("tcp_stream: mid-stream pickup starts at the first data segment") {
  fixture f;
  CHECK(f.s.segment(5000, nullptr, 0, false, f.r) == segment_result::empty); // pure ACK
  CHECK_FALSE(f.s.started());
  f.seg(123456, "mid");
  CHECK(f.s.started());
  CHECK_FALSE(f.s.syn_seen());
  f.seg(123459, "dle");
  CHECK(f.r.text == "middle");
  CHECK(f.r.chunks[0].seq == 123456);
  // Bytes before the pickup point are old.
  CHECK(f.seg(123450, "abcdef") == segment_result::retransmission);
}

TEST_CASE("tcp_stream: a keep-alive probe picked up mid-stream is not delivered") {
  // An idle HTTP connection picked up by its keep-alive probes (Windows: one
  // zero byte at next - 1), then the next request (corpus
  // mixed-many-protocols-vlan-ipv6.pcap, frames 33, 212, 1286).
  fixture f;
  CHECK(f.seg(977128254u, std::string(1, '\0')) == segment_result::held);
  CHECK_FALSE(f.s.started());
  CHECK(f.s.segment(2149533182u, nullptr, 0, false, f.r) == segment_result::empty);
  CHECK(f.seg(977128254u, std::string(1, '\0')) == segment_result::keepalive); // repeated
  CHECK(f.seg(977128255u, "GET /ping HTTP/1.1\r\n") == segment_result::in_order);
  CHECK(f.s.started());
  CHECK(f.r.text == "GET /ping HTTP/1.1\r\n");
  REQUIRE(f.r.chunks.size() == 1);
  CHECK(f.r.chunks[0].seq == 977128255u);
  CHECK(f.counters.keepalives == 2);
  CHECK(f.counters.retransmitted == 0);
  // Later probes sit at next - 1 again.
  CHECK(f.seg(977128255u + 19, "\n") == segment_result::keepalive);
  CHECK(f.counters.keepalives == 3);
  CHECK(f.seg(977128255u + 20, "GET /b HTTP/1.1\r\n") == segment_result::in_order);
  CHECK(f.r.text == "GET /ping HTTP/1.1\r\nGET /b HTTP/1.1\r\n");
  CHECK(f.s.consumed() == 37);
}

TEST_CASE("tcp_stream: a held one-byte pickup segment that was data is delivered first") {
  fixture f;
  CHECK(f.seg(5000, "A") == segment_result::held);
  // Not adjacent: the held byte starts the stream, the new segment waits.
  CHECK(f.seg(5003, "DE") == segment_result::out_of_order);
  CHECK(f.s.started());
  CHECK(f.r.text == "A");
  REQUIRE(f.r.chunks.size() == 1);
  CHECK(f.r.chunks[0].seq == 5000);
  CHECK(f.r.chunks[0].buffered);
  CHECK(f.seg(5001, "BC") == segment_result::in_order);
  CHECK(f.r.text == "ABCDE");
  CHECK(f.counters.keepalives == 0);

  // A segment overlapping the held byte also starts the stream there.
  fixture g;
  CHECK(g.seg(7000, "x") == segment_result::held);
  CHECK(g.seg(7000, "xyz") == segment_result::in_order);
  CHECK(g.r.text == "xyz");

  // A flow that shows only the held byte delivers nothing.
  fixture h;
  CHECK(h.seg(9000, "q") == segment_result::held);
  h.s.flush(h.r);
  CHECK(h.r.chunks.empty());
  CHECK(h.s.consumed() == 0);

  // A one-byte FIN segment is not held.
  fixture k;
  CHECK(k.seg(300, "z", true) == segment_result::in_order);
  CHECK(k.r.text == "z");

  // A SYN after a held byte fixes the start.
  fixture m;
  CHECK(m.seg(401, "a") == segment_result::held);
  m.s.syn(400);
  CHECK(m.seg(401, "abc") == segment_result::in_order);
  CHECK(m.r.text == "abc");
}

TEST_CASE("tcp_stream: a held byte cut by the capture becomes a gap") {
  fixture f;
  CHECK(f.s.segment(100, nullptr, 0, false, f.r, 1) == segment_result::held);
  CHECK(f.seg(105, "F") == segment_result::out_of_order);
  REQUIRE(f.r.chunks.size() == 1);
  CHECK(f.r.chunks[0].gap);
  CHECK(f.r.chunks[0].seq == 100);
  CHECK(f.r.chunks[0].len == 1);
}

TEST_CASE("tcp_stream: data in the SYN and FIN sequence") {
  fixture f;
  f.s.syn(10);
  f.seg(11, "syn-data");
  f.seg(19, "end", true);
  CHECK(f.s.fin_seen());
  CHECK(f.r.text == "syn-dataend");
  f.s.flush(f.r);
  CHECK(f.r.text == "syn-dataend"); // nothing missing
  CHECK(f.counters.gaps == 0);
}

TEST_CASE("tcp_stream: flush turns holes and a missing tail into gaps") {
  fixture f;
  f.s.syn(0);
  f.seg(1, "ab");
  f.seg(6, "fg");
  f.seg(12, "lm");
  f.s.segment(20, nullptr, 0, true, f.r); // FIN at 20 (bytes 14..19 never seen)
  CHECK(f.r.text == "ab");
  f.s.flush(f.r);
  CHECK(f.r.text == "ab###fg####lm######");
  CHECK(f.counters.gaps == 3);
  CHECK(f.counters.bytes_gapped == 3 + 4 + 6);
  REQUIRE(f.r.chunks.size() == 6);
  CHECK(f.r.chunks[1].gap);
  CHECK(f.r.chunks[1].seq == 3);
  CHECK(f.r.chunks[5].seq == 14);
}

TEST_CASE("tcp_stream: a segment cut by the snap length leaves a gap for its tail") {
  fixture f;
  f.s.syn(0);
  std::string a = "abcd";
  // 4 bytes captured of 10 on the wire: in order, the tail is a gap at once.
  f.s.segment(1, reinterpret_cast<const uint8_t*>(a.data()), 4, false, f.r, 6);
  CHECK(f.r.text == "abcd######");
  CHECK(f.s.next_seq() == 11);
  // Out of order: the cut tail waits in the buffer and becomes a gap in turn.
  f.s.segment(15, reinterpret_cast<const uint8_t*>("op"), 2, false, f.r, 3); // 15..19
  f.seg(20, "uv");
  f.seg(11, "klmn");
  CHECK(f.r.text == "abcd######klmnop###uv");
  CHECK(f.counters.gaps == 2);
  CHECK(f.counters.bytes_gapped == 9);
  CHECK(f.counters.retransmitted == 0);
}

TEST_CASE("tcp_stream: track-only mode keeps ranges without bytes") {
  fixture f;
  f.s.set_store(false);
  f.s.syn(0);
  f.seg(4, "def");
  f.seg(1, "abc");
  CHECK(f.r.text == "abc???");
  CHECK(f.seg(2, "b") == segment_result::retransmission);
}

TEST_CASE("tcp_stream: storage is compacted, never above the limit") {
  fixture f;
  f.opts.max_ooo_bytes = 8;
  f.s.syn(0);
  f.seg(3, "CCCC");  // waits behind 1..2
  f.seg(9, "EEEE");  // waits behind 7..8; buffer full (8 bytes)
  f.seg(1, "ab");    // delivers ab + CCCC; EEEE stays, its storage not yet reclaimed
  CHECK(f.r.text == "abCCCC");
  CHECK(f.s.buffered_bytes() == 4);
  f.seg(14, "GGGG"); // fits in bytes (4 + 4) only after compaction
  CHECK(f.counters.limit_drops == 0);
  f.seg(7, "dd");
  f.seg(13, "f");
  CHECK(f.r.text == "abCCCCddEEEEfGGGG");
  // Many out-of-order pairs: the buffer drains each time, nothing lost.
  uint32_t seq = 18;
  std::string expect = f.r.text;
  for (int i = 0; i < 100; ++i) {
    f.seg(seq + 4, "WXYZ");
    f.seg(seq, "wxyz");
    expect += "wxyzWXYZ";
    seq += 8;
  }
  CHECK(f.r.text == expect);
  CHECK(f.counters.limit_drops == 0);
  CHECK(f.counters.gaps == 0);
}

TEST_CASE("tcp_stream: reset returns to the initial state") {
  fixture f;
  f.s.syn(0);
  f.seg(5, "x");
  f.s.reset();
  CHECK_FALSE(f.s.started());
  CHECK(f.s.buffered_bytes() == 0);
  CHECK(f.s.store());
  f.seg(42, "yz");
  CHECK(f.r.text == "yz");
  // A held pickup byte is forgotten too.
  fixture g;
  CHECK(g.seg(10, "a") == segment_result::held);
  g.s.reset();
  CHECK(g.seg(11, "bc") == segment_result::in_order);
  CHECK(g.r.text == "bc");
  CHECK(g.counters.keepalives == 0);
}
