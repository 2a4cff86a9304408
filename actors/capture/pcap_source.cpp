// SPDX-License-Identifier: Apache-2.0
#include "capture/pcap_source.hpp"

#include <pcap/pcap.h>
#include <poll.h>

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

} // namespace

pcap_source::~pcap_source() {
  if (handle_)
    pcap_close(handle_);
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

bool pcap_source::live_stats(pcap_live_stats& out) const {
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

pcap_source::read_result pcap_source::read_one(const uint8_t*& data, uint32_t& caplen,
                                               uint32_t& len, uint64_t& ts_ns) {
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
  std::vector<uint8_t>& arena = batch.arena;
  if (arena.size() + caplen > arena.capacity()) {
    if (!arena.empty())
      return false; // full: the caller keeps the frame for the next batch
    arena.reserve(caplen); // empty arena: no pointer into it exists yet
  }
  const size_t at = arena.size();
  arena.insert(arena.end(), data, data + caplen);
  batch.packets.emplace_back();
  decoded_packet& pkt = batch.packets.back();
  const decode_status st = decode_packet(arena.data() + at, caplen, len, ts_ns, linktype_, pkt);
  ++counters_.packets;
  counters_.bytes += caplen;
  counters_.wire_bytes += len;
  ++counters_.status[static_cast<size_t>(st)];
  return true;
}

void pcap_source::read_available(packet_batch& batch, size_t max_packets) {
  while (batch.packets.size() < max_packets) {
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
  if (!batch.packets.empty())
    return static_cast<std::ptrdiff_t>(batch.packets.size());
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
