// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <unordered_set>

#include "classifier/session_id.hpp"

using metaprobe::session_id_generator;

TEST_CASE("session ids are unique across workers") {
  std::unordered_set<uint64_t> seen;
  session_id_generator w0(0, 1700000000), w1(1, 1700000000), w1023(1023, 1700000000);
  for (int i = 0; i < 50000; ++i) {
    CHECK(seen.insert(w0.next()).second);
    CHECK(seen.insert(w1.next()).second);
    CHECK(seen.insert(w1023.next()).second);
  }
  CHECK(seen.size() == 150000);
}

TEST_CASE("session id layout: epoch, worker, counter") {
  session_id_generator g(5, 0x1234567890ull);
  uint64_t a = g.next(), b = g.next();
  CHECK(session_id_generator::epoch_of(a) == 0x34567890u);
  CHECK(session_id_generator::worker_of(a) == 5);
  CHECK(session_id_generator::counter_of(a) == 0);
  CHECK(session_id_generator::counter_of(b) == 1);
  CHECK(b > a);
}

TEST_CASE("session ids of a restart (later boot second) differ from the previous run") {
  session_id_generator run1(3, 1000), run2(3, 1001);
  std::unordered_set<uint64_t> first;
  for (int i = 0; i < 10000; ++i)
    first.insert(run1.next());
  for (int i = 0; i < 10000; ++i)
    CHECK(first.count(run2.next()) == 0);
}

TEST_CASE("counter wrap advances the epoch and keeps ids increasing") {
  session_id_generator g(7, 50);
  uint64_t prev = 0;
  bool increasing = true;
  for (uint64_t i = 0; i <= session_id_generator::counter_mask; ++i) {
    uint64_t id = g.next();
    if (i > 0 && id <= prev)
      increasing = false;
    prev = id;
  }
  CHECK(increasing);
  CHECK(session_id_generator::epoch_of(prev) == 50);
  uint64_t wrapped = g.next();
  CHECK(wrapped > prev);
  CHECK(session_id_generator::epoch_of(wrapped) == 51);
  CHECK(session_id_generator::counter_of(wrapped) == 0);
  CHECK(session_id_generator::worker_of(wrapped) == 7);
}

TEST_CASE("worker is masked to 10 bits and id 0 is never returned") {
  session_id_generator g(0, 0);
  CHECK(g.next() != 0);
  session_id_generator big(1024 + 9, 1);
  CHECK(session_id_generator::worker_of(big.next()) == 9);
}
