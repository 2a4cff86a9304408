// SPDX-License-Identifier: Apache-2.0
// `metaprobe-exporter --instance auto`: the lowest free slot is claimed,
// held while the claimer lives, freed when it ends (also by SIGKILL), and
// the instance file is replaced atomically.
#include <doctest/doctest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "exporters/instance_slot.hpp"
#include "temp_dir.hpp"

using namespace metaprobe;

namespace {

namespace fs = std::filesystem;

using test::temp_dir;

const channel dns_ipfix{sink_group::dns, sink_kind::ipfix};
const channel dns_text{sink_group::dns, sink_kind::text};

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A child process that claims a slot, reports its number through a pipe and
// then waits to be killed.
struct claimer {
  pid_t pid = -1;
  int instance = -1;
  claimer(const std::string& dir, const channel& ch) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      int n = -1;
      try {
        auto slot = instance_slot::claim(dir, ch);
        n = slot.instance();
        (void)!::write(fds[1], &n, sizeof(n));
        for (;;)
          ::pause();
      } catch (...) {
        (void)!::write(fds[1], &n, sizeof(n));
      }
      ::_exit(1);
    }
    ::close(fds[1]);
    REQUIRE(::read(fds[0], &instance, sizeof(instance)) == static_cast<ssize_t>(sizeof(instance)));
    ::close(fds[0]);
  }
  void kill_hard() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      pid = -1;
    }
  }
  ~claimer() { kill_hard(); }
};

} // namespace

TEST_CASE("instance_slot: claims the lowest free instance, a released one is reused") {
  temp_dir d;
  auto a = instance_slot::claim(d.path, dns_ipfix);
  auto b = instance_slot::claim(d.path, dns_ipfix);
  auto c = instance_slot::claim(d.path, dns_ipfix);
  CHECK(a.instance() == 0);
  CHECK(b.instance() == 1);
  CHECK(c.instance() == 2);
  CHECK(b.path() == d.path + "/dns.ipfix-1.slot");
  CHECK(read_all(b.path()) == std::to_string(::getpid()) + "\n");
  // another channel has its own numbers
  auto t = instance_slot::claim(d.path, dns_text);
  CHECK(t.instance() == 0);
  {
    instance_slot gone = std::move(b); // moved-from b releases nothing
    CHECK(gone.instance() == 1);
  }
  auto again = instance_slot::claim(d.path, dns_ipfix);
  CHECK(again.instance() == 1);
  auto next = instance_slot::claim(d.path, dns_ipfix);
  CHECK(next.instance() == 3);
  // the files stay (removing a lock file would race with a claimer)
  CHECK(fs::exists(d.path + "/dns.ipfix-1.slot"));
}

TEST_CASE("instance_slot: every slot taken is an error naming the channel") {
  temp_dir d;
  std::vector<instance_slot> held;
  for (int i = 0; i < 3; ++i)
    held.push_back(instance_slot::claim(d.path, dns_ipfix, 3));
  CHECK_THROWS_WITH_AS(instance_slot::claim(d.path, dns_ipfix, 3),
                       doctest::Contains("every instance slot of channel dns.ipfix (0..2) is taken"),
                       std::runtime_error);
  held.erase(held.begin() + 1);
  CHECK(instance_slot::claim(d.path, dns_ipfix, 3).instance() == 1);
}

TEST_CASE("instance_slot: the default limit is 64 instances") {
  temp_dir d;
  std::vector<instance_slot> held;
  for (int i = 0; i < max_channel_instances; ++i)
    held.push_back(instance_slot::claim(d.path, dns_ipfix));
  CHECK(held.back().instance() == 63);
  CHECK_THROWS_AS(instance_slot::claim(d.path, dns_ipfix), std::runtime_error);
}

TEST_CASE("instance_slot: a missing run_dir is an error naming the path") {
  temp_dir d;
  const std::string want = d.path + "/nope/dns.ipfix-0.slot";
  CHECK_THROWS_WITH_AS(instance_slot::claim(d.path + "/nope", dns_ipfix),
                       doctest::Contains(want.c_str()), std::runtime_error);
}

TEST_CASE("instance_slot: claims of other processes count; a killed claimer frees its slot") {
  temp_dir d;
  claimer first(d.path, dns_ipfix);
  claimer second(d.path, dns_ipfix);
  CHECK(first.instance == 0);
  CHECK(second.instance == 1);
  {
    auto mine = instance_slot::claim(d.path, dns_ipfix);
    CHECK(mine.instance() == 2);
  }
  first.kill_hard(); // no clean-up of its own: the kernel drops the lock
  auto mine = instance_slot::claim(d.path, dns_ipfix);
  CHECK(mine.instance() == 0);
  // and the child could not have taken a slot this process holds
  claimer third(d.path, dns_ipfix);
  CHECK(third.instance == 2);
}

TEST_CASE("write_instance_file: the number and a newline, replaced atomically") {
  temp_dir d;
  const std::string f = d.path + "/instance";
  write_instance_file(f, 7);
  CHECK(read_all(f) == "7\n");
  write_instance_file(f, 12);
  CHECK(read_all(f) == "12\n");
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(d.path)) {
    (void)e;
    ++files;
  }
  CHECK(files == 1); // no temporary left behind
  CHECK_THROWS_WITH_AS(write_instance_file(d.path + "/missing/instance", 1),
                       doctest::Contains("missing/instance"), std::runtime_error);
}
