// SPDX-License-Identifier: Apache-2.0
#include "exporters/delivery_state.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace metaprobe {

namespace {

bool ours(const delivery_record& r) {
  return r.magic == delivery_record::magic_value && r.size == sizeof(delivery_record);
}

} // namespace

delivery_state::delivery_state(delivery_record* rec, bool single_instance)
  : rec_(rec), single_(single_instance) {
  if (!ours(*rec_)) {
    *rec_ = delivery_record{};
    rec_->magic = delivery_record::magic_value;
    rec_->size = sizeof(delivery_record);
  }
}

std::unique_ptr<delivery_state> delivery_state::open(const std::string& path,
                                                     bool single_instance) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    throw std::runtime_error("delivery state " + path + ": cannot open: " + std::strerror(errno) +
                             (errno == ELOOP ? " (a symbolic link: refused)" : ""));
  struct stat st {};
  if (::fstat(fd, &st) != 0 ||
      (static_cast<size_t>(st.st_size) != sizeof(delivery_record) &&
       ::ftruncate(fd, sizeof(delivery_record)) != 0)) {
    int err = errno;
    ::close(fd);
    throw std::runtime_error("delivery state " + path + ": cannot size: " + std::strerror(err));
  }
  // The blocks are allocated now: a full file system fails here with a
  // clear error, not later with SIGBUS when the mapping is written.
  if (int err = ::posix_fallocate(fd, 0, sizeof(delivery_record)); err != 0) {
    ::close(fd);
    throw std::runtime_error("delivery state " + path + ": cannot allocate: " + std::strerror(err));
  }
  void* p = ::mmap(nullptr, sizeof(delivery_record), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int err = errno;
  ::close(fd); // the mapping keeps the file
  if (p == MAP_FAILED)
    throw std::runtime_error("delivery state " + path + ": cannot map: " + std::strerror(err));
  auto st_ptr = std::make_unique<delivery_state>(static_cast<delivery_record*>(p), single_instance);
  st_ptr->map_ = p;
  return st_ptr;
}

delivery_state::~delivery_state() {
  if (map_)
    ::munmap(map_, sizeof(delivery_record));
}

uint64_t delivery_state::start() {
  uint64_t lost = 0;
  if (rec_->running) {
    // the previous incarnation never reached clean_exit(): what it held is gone
    lost = rec_->held;
    rec_->lost_in_process += lost;
    ++rec_->crashes;
  }
  rec_->held = 0;
  sink_dropped_base_ = rec_->sink_dropped;
  rec_->running = 1;
  ++rec_->incarnations;
  return lost;
}

void delivery_state::on_batch(uint64_t producer_id, uint64_t records_before,
                              uint64_t dropped_before, uint64_t records, bool end_of_stream) {
  if (producer_id != rec_->producer_id) {
    // a new producer (capture restarted, or the first batch): its positions start at 0
    rec_->producer_id = producer_id;
    rec_->position_end = 0;
    rec_->dropped_before = 0;
  }
  if (single_ && records_before >= rec_->position_end && dropped_before >= rec_->dropped_before) {
    const uint64_t gap = records_before - rec_->position_end;
    const uint64_t drops = dropped_before - rec_->dropped_before;
    rec_->publisher_dropped += drops;
    if (gap > drops)
      rec_->lost_in_transit += gap - drops;
  }
  // Until the sinks report after this batch, count its records as held: a
  // kill meanwhile counts them lost rather than delivered.
  rec_->held += records;
  rec_->received += records;
  rec_->position_end = records_before + records;
  rec_->dropped_before = dropped_before;
  if (end_of_stream) {
    rec_->eos_seen = 1;
    rec_->eos_offered = records_before;
    rec_->eos_dropped = dropped_before;
  }
}

void delivery_state::clean_exit(uint64_t held) {
  // What the sinks could not push out on the final flush they count as
  // their own drops; it is not counted again here.
  rec_->held = held;
  rec_->running = 0;
}

std::string delivery_state_path(const std::string& run_dir, const channel& ch, int instance) {
  return run_dir + "/" + ch.name() + "-" + std::to_string(instance) + ".delivery";
}

std::optional<delivery_record> read_delivery_state(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return std::nullopt;
  delivery_record r;
  ssize_t n = ::pread(fd, &r, sizeof(r), 0);
  ::close(fd);
  if (n != static_cast<ssize_t>(sizeof(r)) || !ours(r))
    return std::nullopt;
  return r;
}

channel_loss sum_channel_loss(const std::vector<delivery_record>& instances) {
  channel_loss out;
  for (const auto& r : instances) {
    out.received += r.received;
    out.lost_in_process += r.lost_in_process;
    out.crashes += r.crashes;
    out.sink_dropped += r.sink_dropped;
    if (r.running) { // the last incarnation died and was not replaced
      out.lost_in_process += r.held;
      ++out.crashes;
    }
    if (r.eos_seen && !out.complete) {
      out.complete = true;
      out.offered = r.eos_offered;
      out.publisher_dropped = r.eos_dropped;
    }
  }
  // Records an incarnation received and then lost count in lost_in_process
  // (they are in `received`), never in transit as well.
  if (out.complete && out.offered >= out.publisher_dropped + out.received)
    out.lost_in_transit = out.offered - out.publisher_dropped - out.received;
  return out;
}

} // namespace metaprobe
