// SPDX-License-Identifier: Apache-2.0
#include "capture/pcap_source.hpp"

#include <fcntl.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace metaprobe {

namespace {

std::shared_ptr<spdlog::logger> capture_log() {
  auto l = spdlog::get("capture");
  return l ? l : spdlog::default_logger();
}

std::string linktype_name(int lt) {
  const char* n = pcap_datalink_val_to_name(lt);
  return std::to_string(lt) + " (" + (n ? n : "unknown") + ")";
}

constexpr int max_snaplen = 262144;

// Classic pcap file header magic numbers, as read in host order.
constexpr uint32_t magic_us = 0xa1b2c3d4;
constexpr uint32_t magic_ns = 0xa1b23c4d;
constexpr size_t file_header_bytes = 24;
constexpr size_t record_header_bytes = 16;

uint32_t load32(const uint8_t* p, bool swapped) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return swapped ? __builtin_bswap32(v) : v;
}

} // namespace

// A read-only mapping of one window of a capture file; unmapped with the
// last batch that points into it.
struct pcap_source::file_window {
  const uint8_t* data = nullptr; // file offset `offset`
  size_t offset = 0;
  size_t size = 0;
  file_window(const uint8_t* d, size_t off, size_t n) : data(d), offset(off), size(n) {}
  file_window(const file_window&) = delete;
  file_window& operator=(const file_window&) = delete;
  ~file_window() {
    if (data)
      ::munmap(const_cast<uint8_t*>(data), size);
  }
};

pcap_source::~pcap_source() {
  if (handle_)
    pcap_close(handle_);
  if (map_fd_ >= 0)
    ::close(map_fd_);
}

// Opens `path` for in-place reading when it is a classic pcap file; leaves
// the source on libpcap's copying path otherwise.
void pcap_source::map_file(const std::string& path) {
  // O_NONBLOCK: a FIFO (read through libpcap) whose writer is gone must not
  // block this second open; regular files ignore the flag
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return;
  struct stat st {};
  uint8_t hdr[4];
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<uint64_t>(st.st_size) < file_header_bytes ||
      ::pread(fd, hdr, sizeof hdr, 0) != static_cast<ssize_t>(sizeof hdr)) {
    ::close(fd);
    return;
  }
  uint32_t magic;
  std::memcpy(&magic, hdr, 4);
  const uint32_t swapped_magic = __builtin_bswap32(magic);
  if (magic == magic_us || magic == magic_ns) {
    map_swapped_ = false;
  } else if (swapped_magic == magic_us || swapped_magic == magic_ns) {
    map_swapped_ = true;
  } else { // pcapng or a pcap variant libpcap knows better
    ::close(fd);
    return;
  }
  map_nano_ = (map_swapped_ ? swapped_magic : magic) == magic_ns;
  map_fd_ = fd;
  file_size_ = static_cast<size_t>(st.st_size);
  map_pos_ = file_header_bytes;
  zero_copy_ = true;
}

// Maps the window that holds the record at map_pos_. A window covers
// map_window_bytes of record starts plus room for the largest record, so
// a record that starts inside it always ends inside it too.
bool pcap_source::map_window() {
  window_.reset();
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t off = map_pos_ / page * page;
  const size_t want = map_window_bytes + record_header_bytes + max_snaplen;
  const size_t n = std::min(want, file_size_ - off);
  void* p = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE, map_fd_, static_cast<off_t>(off));
  if (p == MAP_FAILED) {
    ++counters_.read_errors;
    error_ = "capture file " + name_ + ": cannot map " + std::to_string(n) + " bytes at offset " +
             std::to_string(off) + ": " + std::strerror(errno);
    return false;
  }
  ::madvise(p, n, MADV_SEQUENTIAL);
  ::madvise(p, n, MADV_WILLNEED);
  window_ = std::make_shared<const file_window>(static_cast<const uint8_t*>(p), off, n);
  return true;
}

std::unique_ptr<pcap_source> pcap_source::open_file(const std::string& path,
                                                    std::string& error) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p =
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (!p) {
    error = "cannot open capture file " + path + ": " + errbuf;
    return nullptr;
  }
  std::unique_ptr<pcap_source> s(new pcap_source());
  s->handle_ = p;
  s->name_ = path;
  s->linktype_ = pcap_datalink(p);
  s->snaplen_ = pcap_snapshot(p);
  s->nano_ = pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO;
  if (!linktype_supported(s->linktype_)) {
    error = "capture file " + path + ": link type " + linktype_name(s->linktype_) +
            " is not supported";
    return nullptr;
  }
  s->map_file(path);
  return s;
}

std::unique_ptr<pcap_source> pcap_source::open_live(const std::string& iface, int snaplen,
                                                    const std::string& bpf,
                                                    std::string& error) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_create(iface.c_str(), errbuf);
  if (!p) {
    error = "cannot open interface " + iface + ": " + errbuf;
    return nullptr;
  }
  std::unique_ptr<pcap_source> s(new pcap_source());
  s->handle_ = p;
  s->name_ = iface;
  s->live_ = true;
  if (snaplen <= 0 || snaplen > max_snaplen)
    snaplen = max_snaplen;
  pcap_set_snaplen(p, snaplen);
  pcap_set_promisc(p, 1);
  pcap_set_timeout(p, default_poll_timeout_ms);
  pcap_set_buffer_size(p, default_live_buffer_bytes);
  if (pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO) != 0)
    pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_MICRO);
  const int rc = pcap_activate(p);
  if (rc < 0) {
    const char* detail = pcap_geterr(p);
    error = "cannot activate interface " + iface + ": " + pcap_statustostr(rc) +
            (detail && *detail ? std::string(" (") + detail + ")" : std::string());
    return nullptr;
  }
  if (rc > 0)
    capture_log()->warn("interface {}: {} ({})", iface, pcap_statustostr(rc), pcap_geterr(p));
  s->linktype_ = pcap_datalink(p);
  s->snaplen_ = pcap_snapshot(p);
  s->nano_ = pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO;
  if (!linktype_supported(s->linktype_)) {
    error = "interface " + iface + ": link type " + linktype_name(s->linktype_) +
            " is not supported";
    return nullptr;
  }
  if (!bpf.empty()) {
    bpf_program prog{};
    if (pcap_compile(p, &prog, bpf.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
      error = "interface " + iface + ": bad BPF filter '" + bpf + "': " + pcap_geterr(p);
      return nullptr;
    }
    const int frc = pcap_setfilter(p, &prog);
    pcap_freecode(&prog);
    if (frc != 0) {
      error = "interface " + iface + ": cannot set BPF filter: " + pcap_geterr(p);
      return nullptr;
    }
  }
  if (pcap_setnonblock(p, 1, errbuf) != 0) {
    error = "interface " + iface + ": cannot set non-blocking mode: " + errbuf;
    return nullptr;
  }
  s->fd_ = pcap_get_selectable_fd(p);
  return s;
}

bool pcap_source::live_stats(source_live_stats& out) const {
  if (!live_ || !handle_)
    return false;
  pcap_stat st{};
  if (pcap_stats(handle_, &st) != 0)
    return false;
  out.received = st.ps_recv;
  out.dropped = st.ps_drop;
  out.if_dropped = st.ps_ifdrop;
  return true;
}

// The same outcomes as libpcap's reader for a classic file: a record cut
// short at the end is a truncated end of file, a capture length past the
// largest snap length is a read error.
pcap_source::read_result pcap_source::read_mapped(const uint8_t*& data, uint32_t& caplen,
                                                  uint32_t& len, uint64_t& ts_ns) {
  const size_t left = file_size_ - map_pos_;
  if (left == 0)
    return read_result::end;
  if (left < record_header_bytes) {
    ++counters_.truncated_records;
    capture_log()->warn("capture file {}: last record cut short, ending there (record header "
                        "of {} bytes, only {} present)", name_, record_header_bytes, left);
    return read_result::end;
  }
  if (!in_window() && !map_window())
    return read_result::error;
  const uint8_t* h = window_->data + (map_pos_ - window_->offset);
  const uint32_t sec = load32(h, map_swapped_);
  const uint32_t sub = load32(h + 4, map_swapped_);
  caplen = load32(h + 8, map_swapped_);
  len = load32(h + 12, map_swapped_);
  if (caplen > static_cast<uint32_t>(max_snaplen)) {
    ++counters_.read_errors;
    error_ = "capture file " + name_ + ": invalid packet capture length " +
             std::to_string(caplen) + ", bigger than maximum of " + std::to_string(max_snaplen) +
             " (record at offset " + std::to_string(map_pos_) + ")";
    return read_result::error;
  }
  if (left - record_header_bytes < caplen) {
    ++counters_.truncated_records;
    capture_log()->warn("capture file {}: last record cut short, ending there ({} captured "
                        "bytes, only {} present)", name_, caplen, left - record_header_bytes);
    return read_result::end;
  }
  data = h + record_header_bytes;
  ts_ns = static_cast<uint64_t>(sec) * 1000000000ULL + (map_nano_ ? sub : uint64_t{sub} * 1000);
  map_pos_ += record_header_bytes + caplen;
  return read_result::packet;
}

bool pcap_source::in_window() const {
  return window_ && map_pos_ >= window_->offset &&
         map_pos_ < window_->offset + map_window_bytes;
}

pcap_source::read_result pcap_source::read_one(const uint8_t*& data, uint32_t& caplen,
                                               uint32_t& len, uint64_t& ts_ns) {
  if (zero_copy_)
    return read_mapped(data, caplen, len, ts_ns);
  pcap_pkthdr* hdr = nullptr;
  const u_char* bytes = nullptr;
  const int rc = pcap_next_ex(handle_, &hdr, &bytes);
  if (rc == 1) {
    data = bytes;
    caplen = hdr->caplen;
    len = hdr->len;
    const uint64_t sub = static_cast<uint64_t>(hdr->ts.tv_usec);
    ts_ns = static_cast<uint64_t>(hdr->ts.tv_sec) * 1000000000ULL + (nano_ ? sub : sub * 1000);
    return read_result::packet;
  }
  if (rc == 0) // live: timeout / nothing buffered
    return read_result::none;
  if (rc == PCAP_ERROR_BREAK) {
    if (live_)
      return read_result::none;
    return read_result::end;
  }
  const std::string msg = pcap_geterr(handle_);
  if (!live_ && msg.find("truncated") != std::string::npos) {
    ++counters_.truncated_records;
    capture_log()->warn("capture file {}: last record cut short, ending there ({})", name_, msg);
    return read_result::end;
  }
  ++counters_.read_errors;
  error_ = (live_ ? "interface " : "capture file ") + name_ + ": " + msg;
  return read_result::error;
}

bool pcap_source::append(packet_batch& batch, const uint8_t* data, uint32_t caplen,
                         uint32_t len, uint64_t ts_ns) {
  const uint8_t* frame = data; // zero copy: the mapping itself
  if (!zero_copy_) {
    std::vector<uint8_t>& arena = batch.arena;
    if (arena.size() + caplen > arena.capacity()) {
      if (!arena.empty())
        return false; // full: the caller keeps the frame for the next batch
      arena.reserve(caplen); // empty arena: no pointer into it exists yet
    }
    const size_t at = arena.size();
    arena.insert(arena.end(), data, data + caplen);
    frame = arena.data() + at;
  }
  batch.packets.emplace_back();
  decoded_packet& pkt = batch.packets.back();
  decode_packet(frame, caplen, len, ts_ns, linktype_, pkt, decode_);
  counters_.frame(pkt, caplen, len);
  return true;
}

void pcap_source::read_available(packet_batch& batch, size_t max_packets) {
  while (batch.packets.size() < max_packets) {
    // A batch holds one file window: the next window starts the next batch.
    if (zero_copy_ && !batch.packets.empty() && !in_window() && map_pos_ < file_size_)
      return;
    const uint8_t* data = nullptr;
    uint32_t caplen = 0;
    uint32_t len = 0;
    uint64_t ts = 0;
    const read_result r = read_one(data, caplen, len, ts);
    if (r == read_result::none)
      return;
    if (r == read_result::end) {
      eof_ = true;
      return;
    }
    if (r == read_result::error) {
      failed_ = true;
      if (!live_)
        eof_ = true;
      return;
    }
    if (!append(batch, data, caplen, len, ts)) {
      pending_.assign(data, data + caplen);
      pending_len_ = len;
      pending_ts_ = ts;
      has_pending_ = true;
      return;
    }
  }
}

bool pcap_source::wait_readable() {
  if (fd_ < 0)
    return true; // no descriptor to wait on: pcap_next_ex itself waits
  pollfd pfd{};
  pfd.fd = fd_;
  pfd.events = POLLIN;
  const int rc = ::poll(&pfd, 1, poll_timeout_ms_);
  if (rc < 0 && errno != EINTR) {
    error_ = "interface " + name_ + ": poll failed: " + std::strerror(errno);
    ++counters_.read_errors;
    failed_ = true;
    return false;
  }
  return rc > 0;
}

std::ptrdiff_t pcap_source::next_batch(packet_batch& batch, size_t max_packets) {
  batch.packets.clear();
  batch.arena.clear();
  if (failed_) { // error met after the frames of the previous call
    if (live_)
      failed_ = false; // live: report once, then try again
    return -1;
  }
  if (max_packets == 0)
    return 0;
  if (!has_pending_ && eof_)
    return 0;
  batch.packets.reserve(max_packets);
  if (!zero_copy_)
    batch.arena.reserve(arena_bytes_);
  if (has_pending_) {
    has_pending_ = false;
    append(batch, pending_.data(), static_cast<uint32_t>(pending_.size()), pending_len_,
           pending_ts_);
  }
  if (!eof_)
    read_available(batch, max_packets);
  if (live_ && batch.packets.empty() && !failed_) {
    if (wait_readable())
      read_available(batch, max_packets);
  }
  if (!batch.packets.empty()) {
    if (zero_copy_)
      batch.backing = window_;
    return static_cast<std::ptrdiff_t>(batch.packets.size());
  }
  if (failed_) {
    if (live_)
      failed_ = false;
    return -1;
  }
  if (live_)
    ++counters_.empty_polls;
  return 0;
}

} // namespace metaprobe
