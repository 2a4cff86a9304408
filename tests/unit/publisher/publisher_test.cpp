// SPDX-License-Identifier: Apache-2.0
// The publisher's ipc:// socket files: removed on a clean close, a stale
// one from a crashed run does not stop start-up, a live or foreign one is
// never taken over.
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "publisher/publisher.hpp"
#include "temp_dir.hpp"

using namespace metaprobe;

namespace {

namespace fs = std::filesystem;

using test::temp_dir;

const channel clickstream_ipfix{sink_group::clickstream, sink_kind::ipfix};
const channel dns_ipfix{sink_group::dns, sink_kind::ipfix};

publisher_options options(const std::string& dir) {
  publisher_options o;
  o.endpoint_base = "ipc://" + dir + "/ch";
  o.channels = {clickstream_ipfix, dns_ipfix};
  o.linger_ms = 1000;
  o.block_ms = 2000;
  return o;
}

std::string file_of(const publisher_options& o, const channel& ch) {
  return channel_endpoint(o.endpoint_base, ch).substr(6);
}

bool is_socket(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// A unix stream socket bound at `path`; listening or not.
int unix_socket_at(const std::string& path, bool listening) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strcpy(a.sun_path, path.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  if (listening)
    REQUIRE(::listen(fd, 4) == 0);
  return fd;
}

v1::Record one_record() {
  v1::Record r;
  r.mutable_clickstream()->set_hostname("example.org");
  return r;
}

// Publishes one record and end of stream; a PULL socket must get both.
void check_round_trip(publisher& pub, const std::string& endpoint) {
  zmq::context_t ctx(1);
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  pull.set(zmq::sockopt::rcvtimeo, 5000);
  pull.set(zmq::sockopt::linger, 0);
  pull.connect(endpoint);
  std::vector<v1::Record> recs{one_record()};
  pub.publish(sink_group::clickstream, std::move(recs));
  pub.finish();
  zmq::message_t m;
  REQUIRE(pull.recv(m));
  v1::RecordBatch b;
  REQUIRE(b.ParseFromArray(m.data(), static_cast<int>(m.size())));
  REQUIRE(b.records_size() == 1);
  CHECK(b.records(0).clickstream().hostname() == "example.org");
  REQUIRE(pull.recv(m));
  REQUIRE(b.ParseFromArray(m.data(), static_cast<int>(m.size())));
  CHECK(b.end_of_stream());
}

} // namespace

TEST_CASE("publisher: ipc socket files exist while bound and are removed by finish()") {
  temp_dir d;
  auto o = options(d.path);
  auto f1 = file_of(o, clickstream_ipfix), f2 = file_of(o, dns_ipfix);
  {
    publisher pub(o);
    CHECK(is_socket(f1));
    CHECK(is_socket(f2));
    check_round_trip(pub, channel_endpoint(o.endpoint_base, clickstream_ipfix));
    CHECK_FALSE(fs::exists(f1)); // removed at finish(), before destruction
    CHECK_FALSE(fs::exists(f2));
  }
  CHECK(fs::is_empty(d.path));
}

TEST_CASE("publisher: destruction without finish() removes the socket files too") {
  temp_dir d;
  auto o = options(d.path);
  {
    publisher pub(o);
    CHECK(is_socket(file_of(o, clickstream_ipfix)));
  }
  CHECK(fs::is_empty(d.path));
}

TEST_CASE("publisher: a stale socket file from a crashed run does not stop start-up") {
  temp_dir d;
  auto o = options(d.path);
  auto f1 = file_of(o, clickstream_ipfix);
  ::close(unix_socket_at(f1, true)); // bound, then the owner "died": the file stays
  REQUIRE(is_socket(f1));
  {
    publisher pub(o);
    check_round_trip(pub, channel_endpoint(o.endpoint_base, clickstream_ipfix));
  }
  CHECK(fs::is_empty(d.path));
}

TEST_CASE("publisher: a path a running process listens on is not taken over") {
  temp_dir d;
  auto o = options(d.path);
  auto f2 = file_of(o, dns_ipfix);
  int live = unix_socket_at(f2, true);
  std::string what;
  try {
    publisher pub(o);
  } catch (const std::runtime_error& e) {
    what = e.what();
  }
  CHECK(what.find("dns.ipfix") != std::string::npos);
  CHECK(what.find("in use by a running process") != std::string::npos);
  CHECK(is_socket(f2)); // still the other process's
  CHECK_FALSE(fs::exists(file_of(o, clickstream_ipfix))); // bound first, removed again
  ::close(live);

  // Another publisher on the same endpoint fails the same way.
  temp_dir d2;
  auto o2 = options(d2.path);
  publisher first(o2);
  CHECK_THROWS_WITH_AS(publisher{o2}, doctest::Contains("in use by a running process"),
                       std::runtime_error);
  CHECK(is_socket(file_of(o2, clickstream_ipfix)));
}

TEST_CASE("publisher: a path that is not a socket is never replaced") {
  temp_dir d;
  auto o = options(d.path);
  auto f1 = file_of(o, clickstream_ipfix);
  std::ofstream(f1) << "precious";
  CHECK_THROWS_WITH_AS(publisher{o}, doctest::Contains("exists and is not a socket"),
                       std::runtime_error);
  std::ifstream in(f1);
  std::string text;
  in >> text;
  CHECK(text == "precious");
}

TEST_CASE("publisher: a socket file taken over by another process is left alone") {
  temp_dir d;
  auto o = options(d.path);
  auto f1 = file_of(o, clickstream_ipfix);
  int other = -1;
  {
    publisher pub(o);
    // Someone removed our file and bound their own at the same path.
    REQUIRE(::unlink(f1.c_str()) == 0);
    other = unix_socket_at(f1, true);
  }
  CHECK(is_socket(f1));
  ::close(other);
}

TEST_CASE("publisher: tcp endpoints have no file to manage") {
  publisher_options o;
  o.endpoint_base = "tcp://127.0.0.1:0"; // port 0 + index: the kernel picks
  o.channels = {clickstream_ipfix};
  o.linger_ms = 0;
  publisher pub(o);
  pub.finish();
}

TEST_CASE("publisher: batches carry their channel position and the drops before them") {
  temp_dir d;
  auto o = options(d.path);
  o.channels = {clickstream_ipfix};
  o.block_ms = 0; // no exporter yet: a send is a counted drop
  publisher pub(o);
  pub.publish(sink_group::clickstream, std::vector<v1::Record>(3, one_record())); // dropped
  CHECK(pub.counters(clickstream_ipfix).records_dropped == 3);

  zmq::context_t ctx(1);
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  pull.set(zmq::sockopt::rcvtimeo, 5000);
  pull.set(zmq::sockopt::linger, 0);
  pull.connect(channel_endpoint(o.endpoint_base, clickstream_ipfix));
  // wait until the connection is up: a send succeeds
  int sent_before = 0;
  for (int i = 0; i < 200 && pub.counters(clickstream_ipfix).batches_sent == 0; ++i) {
    pub.publish(sink_group::clickstream, std::vector<v1::Record>(1, one_record()));
    if (pub.counters(clickstream_ipfix).batches_sent == 0)
      ::usleep(10000);
    ++sent_before;
  }
  REQUIRE(pub.counters(clickstream_ipfix).batches_sent == 1);
  const uint64_t dropped = pub.counters(clickstream_ipfix).records_dropped;
  pub.publish(sink_group::clickstream, std::vector<v1::Record>(2, one_record()));
  pub.finish();

  zmq::message_t m;
  v1::RecordBatch b;
  REQUIRE(pull.recv(m));
  REQUIRE(b.ParseFromArray(m.data(), static_cast<int>(m.size())));
  CHECK(b.records_before() == 3 + static_cast<uint64_t>(sent_before) - 1);
  CHECK(b.dropped_before() == dropped);
  CHECK(b.records_size() == 1);
  REQUIRE(pull.recv(m));
  REQUIRE(b.ParseFromArray(m.data(), static_cast<int>(m.size())));
  CHECK(b.records_before() == 3 + static_cast<uint64_t>(sent_before));
  CHECK(b.dropped_before() == dropped);
  REQUIRE(pull.recv(m));
  REQUIRE(b.ParseFromArray(m.data(), static_cast<int>(m.size())));
  CHECK(b.end_of_stream());
  CHECK(b.records_before() == 3 + static_cast<uint64_t>(sent_before) + 2);
  CHECK(b.dropped_before() == dropped);
  CHECK(b.total_records() == 3);
}
