// SPDX-License-Identifier: Apache-2.0
#include "classifier/session_id.hpp"

namespace metaprobe {

session_id_generator::session_id_generator(uint16_t worker, uint64_t boot_seed)
  : worker_(worker & worker_mask), epoch_(static_cast<uint32_t>(boot_seed)) {
}

uint64_t session_id_generator::next() {
  for (;;) {
    uint64_t id = (uint64_t{epoch_} << 32) | (worker_ << counter_bits) | counter_;
    if (++counter_ > counter_mask) {
      counter_ = 0;
      ++epoch_; // wraps modulo 2^32 (see header)
    }
    if (id != 0)
      return id;
  }
}

} // namespace metaprobe
