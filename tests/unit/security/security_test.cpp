// SPDX-License-Identifier: Apache-2.0
// CURVE keys as metaprobe-keygen writes them, the ZAP handler's decisions
// (and a real CURVE PUSH/PULL pair with it), the run_dir lock and the
// appliance's claim of its endpoints.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <netinet/in.h>

#include <cstring>
#include <fstream>
#include <string>

#include <zmq.hpp>

#include "core/run_dir.hpp"
#include "security/curve_keys.hpp"
#include "security/zap_handler.hpp"
#include "temp_dir.hpp"

using namespace metaprobe;

namespace {

mode_t mode_of(const std::string& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

std::string first_line(const std::string& p) {
  std::ifstream in(p);
  std::string l;
  std::getline(in, l);
  return l;
}

} // namespace

TEST_CASE("keygen: two Z85 pairs, secrets 0600 in a 0700 dir, never overwritten without force") {
  test::temp_dir t;
  const std::string dir = t.path + "/keys";
  REQUIRE(write_curve_keys(dir, false) == "");
  CHECK(mode_of(dir) == 0700);
  CHECK(mode_of(dir + "/server.key") == 0600);
  CHECK(mode_of(dir + "/client.key") == 0600);
  CHECK(mode_of(dir + "/server.pub") == 0644);
  for (const char* f : curve_key_files) {
    const std::string l = first_line(dir + "/" + f);
    CHECK(l.size() == 40);
    uint8_t raw[32];
    CHECK(zmq_z85_decode(raw, l.c_str()) != nullptr);
  }
  char pub[41] = {};
  REQUIRE(zmq_curve_public(pub, first_line(dir + "/server.key").c_str()) == 0);
  CHECK(std::string(pub) == first_line(dir + "/server.pub"));
  CHECK(first_line(dir + "/server.pub") != first_line(dir + "/client.pub"));

  const std::string before = first_line(dir + "/server.key");
  const std::string refused = write_curve_keys(dir, false);
  CHECK(refused.find("exists") != std::string::npos);
  CHECK(first_line(dir + "/server.key") == before);
  REQUIRE(write_curve_keys(dir, true) == "");
  CHECK(first_line(dir + "/server.key") != before);

  curve_keys k;
  REQUIRE(load_curve_keys(dir, k) == "");
  CHECK(k.on());
  CHECK(k.server_public == first_line(dir + "/server.pub"));
  CHECK(k.client_secret == first_line(dir + "/client.key"));
}

TEST_CASE("keys: unusable files are refused with the reason") {
  test::temp_dir t;
  const std::string dir = t.path + "/keys";
  curve_keys k;
  CHECK(load_curve_keys(t.path, k).find("no CURVE key") != std::string::npos);
  REQUIRE(write_curve_keys(dir, false) == "");
  ::chmod((dir + "/client.key").c_str(), 0644);
  CHECK(load_curve_keys(dir, k).find("readable by other users") != std::string::npos);
  ::chmod((dir + "/client.key").c_str(), 0600);
  { std::ofstream(dir + "/server.pub") << "not a key\n"; }
  CHECK(load_curve_keys(dir, k).find("is not a CURVE key") != std::string::npos);
  // a public key of the other pair
  { std::ofstream(dir + "/server.pub") << first_line(dir + "/client.pub") << "\n"; }
  CHECK(load_curve_keys(dir, k).find("does not belong") != std::string::npos);
  // a connecting process without its secret
  curve_keys half;
  half.dir = dir;
  half.server_public = first_line(dir + "/client.pub");
  zmq::context_t ctx;
  zmq::socket_t s(ctx, zmq::socket_type::pull);
  CHECK(make_curve_client(s.handle(), half).find("client.key") != std::string::npos);
  CHECK(make_curve_server(s.handle(), half).find("server.key") != std::string::npos);
}

TEST_CASE("zap: only the allowed client key is admitted; decisions are counted") {
  char pub[41], sec[41], other[41];
  REQUIRE(zmq_curve_keypair(pub, sec) == 0);
  REQUIRE(zmq_curve_keypair(other, sec) == 0);
  zmq::context_t ctx;
  zap_handler zap(ctx.handle(), {pub});
  auto req = [](const char* z85, const std::string& mech) {
    uint8_t raw[32];
    zmq_z85_decode(raw, z85);
    return std::vector<std::string>{"1.0", "id7", "", "127.0.0.1", "", mech,
                                    std::string(reinterpret_cast<char*>(raw), 32)};
  };
  auto ok = zap.answer(req(pub, "CURVE"));
  CHECK(ok[1] == "id7");
  CHECK(ok[2] == "200");
  CHECK(zap.answer(req(other, "CURVE"))[2] == "400");
  CHECK(zap.answer(req(pub, "PLAIN"))[2] == "400");
  CHECK(zap.answer({"1.0"})[2] == "400");
  CHECK(zap.counters().admitted == 1);
  CHECK(zap.counters().denied == 3);
}

TEST_CASE("curve channel: the key holder gets the message, a client with another key nothing") {
  test::temp_dir t;
  const std::string dir = t.path + "/keys";
  REQUIRE(write_curve_keys(dir, false) == "");
  curve_keys keys;
  REQUIRE(load_curve_keys(dir, keys) == "");
  zmq::context_t server_ctx;
  zap_handler zap(server_ctx.handle(), {keys.client_public});
  REQUIRE(zap.start() == "");
  zmq::socket_t push(server_ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::linger, 0);
  REQUIRE(make_curve_server(push.handle(), keys) == "");
  const std::string ep = "ipc://" + t.path + "/ch";
  push.bind(ep);

  zmq::context_t client_ctx;
  curve_keys rogue = keys;
  char pub[41], sec[41];
  REQUIRE(zmq_curve_keypair(pub, sec) == 0);
  rogue.client_public = pub;
  rogue.client_secret = sec;
  zmq::socket_t bad(client_ctx, zmq::socket_type::pull);
  bad.set(zmq::sockopt::linger, 0);
  REQUIRE(make_curve_client(bad.handle(), rogue) == "");
  bad.connect(ep);
  for (int i = 0; i < 100 && zap.counters().denied == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(zap.counters().denied >= 1);

  zmq::socket_t good(client_ctx, zmq::socket_type::pull);
  good.set(zmq::sockopt::linger, 0);
  REQUIRE(make_curve_client(good.handle(), keys) == "");
  good.connect(ep);
  push.set(zmq::sockopt::sndtimeo, 5000);
  for (int i = 0; i < 10; ++i)
    REQUIRE(push.send(zmq::str_buffer("batch"), zmq::send_flags::none));
  int got_good = 0, got_bad = 0;
  zmq::message_t m;
  good.set(zmq::sockopt::rcvtimeo, 2000);
  while (got_good < 10 && good.recv(m))
    ++got_good;
  while (bad.recv(m, zmq::recv_flags::dontwait))
    ++got_bad;
  CHECK(got_good == 10);
  CHECK(got_bad == 0);
  CHECK(zap.counters().admitted >= 1);
  push.close();
  zap.stop();
}

TEST_CASE("run_dir: created 0700, an open one warned about") {
  test::temp_dir t;
  std::string warning;
  CHECK(prepare_run_dir(t.path + "/a/run", warning) == "");
  CHECK(warning.empty());
  CHECK(mode_of(t.path + "/a/run") == 0700);
  ::chmod((t.path + "/a/run").c_str(), 0755);
  CHECK(prepare_run_dir(t.path + "/a/run", warning) == "");
  CHECK(warning.find("accessible to other users") != std::string::npos);
  { std::ofstream(t.path + "/file") << "x"; }
  CHECK(prepare_run_dir(t.path + "/file", warning).find("not a directory") != std::string::npos);
}

TEST_CASE("pid lock: one holder; the next one learns its pid; symlinks are not followed") {
  test::temp_dir t;
  const std::string path = appliance_lock_path(t.path);
  pid_lock first = pid_lock::acquire(path);
  REQUIRE(first.held());
  CHECK(mode_of(path) == 0600);
  CHECK(first_line(path) == std::to_string(::getpid()));
  pid_lock second = pid_lock::acquire(path); // its own open file: flock conflicts
  CHECK_FALSE(second.held());
  CHECK(second.holder() == ::getpid());
  CHECK(second.error() == "held by pid " + std::to_string(::getpid()));
  first = pid_lock{};
  CHECK_FALSE(std::filesystem::exists(path)); // released: removed
  CHECK(pid_lock::acquire(path).held());
  REQUIRE(::symlink((t.path + "/elsewhere").c_str(), (t.path + "/link.pid").c_str()) == 0);
  pid_lock l = pid_lock::acquire(t.path + "/link.pid");
  CHECK_FALSE(l.held());
  CHECK_FALSE(std::filesystem::exists(t.path + "/elsewhere"));
}

TEST_CASE("claim_instance: run_dir lock, explicit ipc base lock, endpoints in use") {
  test::temp_dir t;
  const std::vector<channel> chans = {{sink_group::dns, sink_kind::ipfix}};
  std::vector<pid_lock> held;
  const std::string run = t.path + "/run";
  std::string w;
  REQUIRE(prepare_run_dir(run, w) == "");
  REQUIRE(claim_instance(run, "ipc://" + run + "/channel", chans, held) == "");
  CHECK(held.size() == 1);
  std::vector<pid_lock> again;
  const std::string msg = claim_instance(run, "ipc://" + run + "/channel", chans, again);
  CHECK(msg == "run_dir " + run + " is in use by metaprobe pid " + std::to_string(::getpid()) +
                 " (another appliance); give this one its own run_dir");
  CHECK(again.empty());

  // another run_dir, the same explicit channel base
  const std::string run2 = t.path + "/run2";
  REQUIRE(prepare_run_dir(run2, w) == "");
  const std::string base = "ipc://" + t.path + "/ch";
  std::vector<pid_lock> a, b;
  REQUIRE(claim_instance(run, base, chans, a).find("run_dir") != std::string::npos);
  held.clear();
  REQUIRE(claim_instance(run, base, chans, a) == "");
  CHECK(a.size() == 2);
  const std::string msg2 = claim_instance(run2, base, chans, b);
  CHECK(msg2.find("channel_endpoint " + base + " is in use by metaprobe pid") == 0);
  a.clear();
  b.clear();

  // a process listening on the channel's ipc path
  const std::string path = t.path + "/ch-dns-ipfix";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(::listen(fd, 4) == 0);
  const std::string msg3 = claim_instance(run, base, chans, a);
  CHECK(msg3.find("channel dns.ipfix (" + base + "-dns-ipfix): " + path +
                  " is in use by a running process") == 0);
  CHECK(a.empty()); // nothing stays held after a failed claim
  ::close(fd);

  // a tcp port in use (dns.ipfix is PORT + 4)
  int tfd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(tfd, reinterpret_cast<sockaddr*>(&in), sizeof(in)) == 0);
  REQUIRE(::listen(tfd, 4) == 0);
  socklen_t len = sizeof(in);
  ::getsockname(tfd, reinterpret_cast<sockaddr*>(&in), &len);
  const int port = ntohs(in.sin_port);
  if (port > 4) {
    const std::string tbase = "tcp://127.0.0.1:" + std::to_string(port - 4);
    const std::string msg4 = claim_instance(run, tbase, chans, a);
    CHECK(msg4.find("tcp port " + std::to_string(port) + " on 127.0.0.1 is in use") !=
          std::string::npos);
  }
  ::close(tfd);
}
