// SPDX-License-Identifier: Apache-2.0
// Loss accounting across exporter crashes: the per-instance ledger on
// batch positions, the channel sum over instances, and the mapped file
// that outlives a SIGKILLed process.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>

#include "exporters/delivery_state.hpp"
#include "temp_dir.hpp"

using namespace metaprobe;

namespace {

using test::temp_dir;

constexpr uint64_t producer = 77;

} // namespace

TEST_CASE("one instance: publisher drops and transit loss from positions") {
  delivery_record rec;
  delivery_state st(&rec, true);
  CHECK(st.start() == 0);
  CHECK(rec.running == 1);
  CHECK(rec.incarnations == 1);
  st.on_batch(producer, 0, 0, 10, false);   // [0,10)
  st.on_held(0);
  st.on_batch(producer, 10, 0, 5, false);   // [10,15)
  st.on_held(0);
  // [15,20) dropped by the publisher, then [20,30)
  st.on_batch(producer, 20, 5, 10, false);
  st.on_held(0);
  CHECK(rec.publisher_dropped == 5);
  CHECK(rec.lost_in_transit == 0);
  CHECK(rec.received == 25);
  // [30,34) sent but never received (e.g. a dead pipe), [34,40) dropped
  st.on_batch(producer, 40, 11, 2, false);
  CHECK(rec.publisher_dropped == 11);
  CHECK(rec.lost_in_transit == 4);
  CHECK(rec.held == 2); // counted held until the sinks report
  st.on_held(1);
  CHECK(rec.held == 1);
  // end of stream: 3 more offered, none dropped, none received
  st.on_batch(producer, 45, 11, 0, true);
  CHECK(rec.lost_in_transit == 7);
  CHECK(rec.eos_seen == 1);
  CHECK(rec.eos_offered == 45);
  CHECK(rec.eos_dropped == 11);
  st.clean_exit(0);
  CHECK(rec.running == 0);
  // offered 45 = dropped 11 + received 27 + transit 7
  CHECK(rec.received == 27);
}

TEST_CASE("a restarted instance counts what its predecessor held and what was in transit") {
  delivery_record rec;
  {
    delivery_state first(&rec, true);
    first.start();
    first.on_batch(producer, 0, 0, 100, false);
    first.on_held(0);
    first.on_batch(producer, 100, 0, 50, false);
    first.on_held(20); // 20 records still in an unsent message: then SIGKILL
  }
  delivery_state second(&rec, true);
  CHECK(second.start() == 20);
  CHECK(rec.lost_in_process == 20);
  CHECK(rec.crashes == 1);
  CHECK(rec.incarnations == 2);
  CHECK(rec.held == 0);
  // batches [150,180) were queued to the dead one; [180,190) dropped while
  // no exporter was connected; the new one receives from 190
  second.on_batch(producer, 190, 10, 5, false);
  CHECK(rec.lost_in_transit == 30);
  CHECK(rec.publisher_dropped == 10);
  second.on_held(0);
  second.clean_exit(0);
  // a clean exit is not a crash for the next start
  delivery_state third(&rec, true);
  CHECK(third.start() == 0);
  CHECK(rec.crashes == 1);
}

TEST_CASE("a new producer restarts the positions at 0") {
  delivery_record rec;
  delivery_state st(&rec, true);
  st.start();
  st.on_batch(producer, 0, 0, 10, false);
  st.on_batch(producer + 1, 0, 0, 4, false); // capture restarted
  CHECK(rec.lost_in_transit == 0);
  st.on_batch(producer + 1, 6, 0, 4, false);
  CHECK(rec.lost_in_transit == 2);
  CHECK(rec.received == 18);
}

TEST_CASE("several instances: no live transit count, the channel sum is exact") {
  delivery_record a, b;
  delivery_state sa(&a, false), sb(&b, false);
  sa.start();
  sb.start();
  // round-robin: a gets [0,10) and [20,30), b gets [10,20) and dies with
  // 4 held; [30,40) sat in b's pipe; [40,45) dropped; a gets end of stream
  sa.on_batch(producer, 0, 0, 10, false);
  sa.on_held(0);
  sb.on_batch(producer, 10, 0, 10, false);
  sb.on_held(4);
  sa.on_batch(producer, 20, 0, 10, false);
  sa.on_held(0);
  CHECK(a.lost_in_transit == 0); // the gap [10,20) is b's share, not a loss
  sa.on_batch(producer, 45, 5, 0, true);
  sa.clean_exit(0);
  // b's restart
  delivery_state sb2(&b, false);
  CHECK(sb2.start() == 4);
  sb2.clean_exit(0); // got no more batches (say the end of stream went to a)
  auto loss = sum_channel_loss({a, b});
  CHECK(loss.complete);
  CHECK(loss.offered == 45);
  CHECK(loss.publisher_dropped == 5);
  CHECK(loss.received == 30);
  CHECK(loss.lost_in_process == 4);
  CHECK(loss.lost_in_transit == 10);
  CHECK(loss.lost() == 14);
  CHECK(loss.crashes == 1);
}

TEST_CASE("channel sum: an instance that died last counts its held records; no eos, no transit") {
  delivery_record a;
  delivery_state sa(&a, true);
  sa.start();
  sa.on_batch(producer, 0, 0, 8, false);
  sa.on_held(3); // killed now, never restarted
  auto loss = sum_channel_loss({a});
  CHECK_FALSE(loss.complete);
  CHECK(loss.lost_in_process == 3);
  CHECK(loss.crashes == 1);
  CHECK(loss.lost_in_transit == 0);
}

TEST_CASE("the mapped file outlives a SIGKILLed process") {
  temp_dir dir;
  const channel ch{sink_group::clickstream, sink_kind::ipfix};
  const std::string path = delivery_state_path(dir.path, ch, 0);
  CHECK(path == dir.path + "/clickstream.ipfix-0.delivery");
  CHECK_FALSE(read_delivery_state(path).has_value());
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto st = delivery_state::open(path, true);
    st->start();
    st->on_batch(producer, 0, 0, 12, false);
    st->on_held(5);
    ::raise(SIGKILL); // no destructor, no msync, no clean exit
    ::_exit(3);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFSIGNALED(status));
  auto seen = read_delivery_state(path);
  REQUIRE(seen.has_value());
  CHECK(seen->running == 1);
  CHECK(seen->received == 12);
  CHECK(seen->held == 5);
  // the next incarnation finds it
  auto next = delivery_state::open(path, true);
  CHECK(next->start() == 5);
  CHECK(next->record().incarnations == 2);
  CHECK(next->record().lost_in_process == 5);
}

TEST_CASE("a file that is not ours is reinitialised") {
  temp_dir dir;
  const std::string path = dir.path + "/x.delivery";
  {
    FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f);
    std::fputs("garbage", f);
    std::fclose(f);
  }
  CHECK_FALSE(read_delivery_state(path).has_value());
  auto st = delivery_state::open(path, true);
  CHECK(st->start() == 0);
  CHECK(st->record().incarnations == 1);
  REQUIRE(read_delivery_state(path).has_value());
  CHECK(std::filesystem::file_size(path) == sizeof(delivery_record));
}
