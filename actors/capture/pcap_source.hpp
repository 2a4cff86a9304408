// SPDX-License-Identifier: Apache-2.0
#pragma once
// pcap_source: reads frames from a capture file (pcap or pcapng) or a live
// interface and decodes them (capture/decoder.hpp). Plain C++, no CAF; the
// capture actor owns one and calls next_batch() in its loop.
//
// Classic pcap files (either byte order, micro- or nanosecond timestamps)
// are memory-mapped and read in place: decoded_packet::data points into the
// mapping, which every batch keeps alive through batch.backing, so a frame
// is never copied. The file is mapped in windows of map_window_bytes (a
// batch never spans two), unmapped when their last batch is gone, so the
// resident set stays small whatever the file size. libpcap still opens the file first and so validates its
// header and names its link type. pcapng files and live interfaces go
// through libpcap, and each frame is copied once into batch.arena. So do
// FIFOs (pcap:PATH of a named pipe): frames are read as the writer sends
// them, a read waits for the next one, the writer closing is the end of file.
// set_zero_copy(false) forces the copying path for classic files too.
//
// Ownership and threading: a pcap_source is used by one thread at a time.
// Frames returned by next_batch() live in batch.arena (reserved before the
// first copy) or in the mapping held by batch.backing, so every
// decoded_packet::data pointer stays valid as long as the batch lives;
// nothing in the batch refers to libpcap memory. A mapped file must not be
// truncated while it is read (the kernel would raise SIGBUS).
//
// Return codes of next_batch():
//   > 0  number of frames appended to batch.packets (decoded, any status).
//   0    file: end of file (eof() is now true). live: nothing arrived within
//        the poll timeout (default 100 ms); eof() stays false so the caller
//        can check for shutdown and call again.
//   -1   read error; error() says why. A file with a read error is finished
//        (eof() true). A file whose last record is cut short ends as a normal
//        end of file; the cut record is counted in counters().truncated_records
//        and logged once.
// When an error or the end of file is met after some frames of the call were
// read, those frames are returned first and the next call reports it.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "capture/packet_source.hpp"

struct pcap;

namespace metaprobe {

class pcap_source final : public packet_source {
public:
  static constexpr size_t default_arena_bytes = 1 << 20;
  static constexpr int default_poll_timeout_ms = 100;
  static constexpr int default_live_buffer_bytes = 32 << 20;
  static constexpr size_t map_window_bytes = size_t{4} << 20;

  // Opens a pcap or pcapng file. nullptr (and `error` set) when the file
  // cannot be opened or its link type is not supported by the decoder.
  static std::unique_ptr<pcap_source> open_file(const std::string& path,
                                                std::string& error);

  // Opens a live interface in promiscuous, non-blocking mode with the given
  // snap length (<= 0: 262144) and optional BPF filter (empty: none).
  static std::unique_ptr<pcap_source> open_live(const std::string& iface, int snaplen,
                                                const std::string& bpf,
                                                std::string& error);

  ~pcap_source();
  pcap_source(const pcap_source&) = delete;
  pcap_source& operator=(const pcap_source&) = delete;

  // Clears `batch` (packets and arena), reserves room and reads up to
  // max_packets frames into it. See the return codes above.
  std::ptrdiff_t next_batch(packet_batch& batch, size_t max_packets) override;

  int linktype() const { return linktype_; }
  int snaplen() const { return snaplen_; }
  bool live() const override { return live_; }
  bool eof() const override { return eof_; }
  std::string error() const override { return error_; }
  const std::string& name() const override { return name_; }
  const source_counters& counters() const override { return counters_; }

  // Live sources: kernel counters. False for files or when libpcap fails.
  bool live_stats(source_live_stats& out) const override;

  // Arena bytes reserved per batch (a bigger frame still fits: it starts a
  // batch of its own). Live poll timeout in milliseconds.
  void set_arena_bytes(size_t n) { arena_bytes_ = n; }
  void set_poll_timeout_ms(int ms) { poll_timeout_ms_ = ms; }
  // Classic pcap files: read in place (default) or copy through libpcap.
  void set_zero_copy(bool on) { zero_copy_ = on && map_fd_ >= 0; }
  bool zero_copy() const { return zero_copy_; }

private:
  pcap_source() = default;
  enum class read_result { packet, none, end, error };
  struct file_window;
  read_result read_one(const uint8_t*& data, uint32_t& caplen, uint32_t& len,
                       uint64_t& ts_ns);
  read_result read_mapped(const uint8_t*& data, uint32_t& caplen, uint32_t& len,
                          uint64_t& ts_ns);
  void map_file(const std::string& path);
  bool map_window();
  bool in_window() const;
  bool append(packet_batch& batch, const uint8_t* data, uint32_t caplen, uint32_t len,
              uint64_t ts_ns);
  void read_available(packet_batch& batch, size_t max_packets);
  bool wait_readable();

  pcap* handle_ = nullptr;
  std::string name_;
  int linktype_ = 0;
  int snaplen_ = 0;
  bool live_ = false;
  bool nano_ = false;  // timestamps in ns (else us)
  bool eof_ = false;
  bool failed_ = false; // error pending to report / reported
  std::string error_;
  int fd_ = -1;         // live: selectable descriptor (-1: none)
  size_t arena_bytes_ = default_arena_bytes;
  int poll_timeout_ms_ = default_poll_timeout_ms;
  source_counters counters_;

  // Classic pcap file read in place (map_fd_ -1: libpcap reads).
  int map_fd_ = -1;
  size_t file_size_ = 0;
  std::shared_ptr<const file_window> window_; // holds map_pos_ (or null)
  size_t map_pos_ = 0;       // file offset of the next record header
  bool map_swapped_ = false; // file written in the other byte order
  bool map_nano_ = false;    // file timestamps in ns (magic a1b23c4d)
  bool zero_copy_ = false;

  // A frame read when the batch arena was full: first of the next batch.
  bool has_pending_ = false;
  std::vector<uint8_t> pending_;
  uint32_t pending_len_ = 0;
  uint64_t pending_ts_ = 0;
};

} // namespace metaprobe
