// SPDX-License-Identifier: Apache-2.0
#pragma once
// Unit tests' private folder: /tmp/mp-unit-XXXXXX, made by the constructor
// (the test fails when it cannot be) and removed with everything in it when
// the object goes out of scope. Short on purpose: ipc:// socket paths made
// inside it must fit sun_path (108 bytes).

#include <stdlib.h>

#include <filesystem>
#include <string>

#include <doctest/doctest.h>

namespace metaprobe::test {

struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/mp-unit-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

} // namespace metaprobe::test
