// SPDX-License-Identifier: Apache-2.0
// metaprobe-keygen DIR [--force]: writes the CURVE key pairs of one
// appliance (security/curve_keys.hpp) for the `curve_keys` key. Wiring
// only.

#include <cstdio>
#include <cstring>
#include <string>

#include "security/curve_keys.hpp"

int main(int argc, char** argv) {
  std::string dir;
  bool force = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--force") {
      force = true;
    } else if (a == "--help" || a == "-h") {
      std::printf("usage: metaprobe-keygen DIR [--force]\n"
                  "Writes a CURVE server pair (server.pub, server.key) and a client pair\n"
                  "(client.pub, client.key) into DIR (created 0700; secret files 0600).\n"
                  "Set curve_keys=DIR for every process of the appliance. Existing keys\n"
                  "are kept unless --force.\n");
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "metaprobe-keygen: unknown option %s (see --help)\n", a.c_str());
      return 2;
    } else if (dir.empty()) {
      dir = a;
    } else {
      std::fprintf(stderr, "metaprobe-keygen: one DIR only (see --help)\n");
      return 2;
    }
  }
  if (dir.empty()) {
    std::fprintf(stderr, "metaprobe-keygen: DIR is required (see --help)\n");
    return 2;
  }
  const std::string error = metaprobe::write_curve_keys(dir, force);
  if (!error.empty()) {
    std::fprintf(stderr, "metaprobe-keygen: %s\n", error.c_str());
    return 1;
  }
  std::printf("CURVE keys written to %s (set curve_keys=%s)\n", dir.c_str(), dir.c_str());
  return 0;
}
