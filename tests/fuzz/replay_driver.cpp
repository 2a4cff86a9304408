// SPDX-License-Identifier: Apache-2.0
// Runs a libFuzzer target without libFuzzer: every file named on the
// command line (directories are walked) is fed once to
// LLVMFuzzerTestOneInput. Used to replay the kept crash/seed corpus as a
// regression test in the ordinary (gcc, ASan) build.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace fs = std::filesystem;

static int run_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<uint8_t> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(buf.data(), buf.size());
  return 1;
}

int main(int argc, char** argv) {
  int n = 0;
  for (int i = 1; i < argc; ++i) {
    fs::path p(argv[i]);
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      for (const auto& e : fs::recursive_directory_iterator(p, ec))
        if (e.is_regular_file())
          n += run_file(e.path());
    } else if (fs::exists(p, ec)) {
      n += run_file(p);
    }
  }
  // a few fixed inputs so the target runs even without a corpus
  const uint8_t zeros[64] = {};
  for (size_t len : {0, 1, 2, 4, 8, 16, 64}) {
    LLVMFuzzerTestOneInput(zeros, len);
    ++n;
  }
  std::printf("replayed %d inputs\n", n);
  return 0;
}
