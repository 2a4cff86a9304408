// SPDX-License-Identifier: Apache-2.0
#include "exporters/ipfix/ipfix_file_sink.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace metaprobe::ipfix {

ipfix_file_sink::ipfix_file_sink(const ipfix_sink_config& cfg)
  : ipfix_sink_base("ipfix:file:" + cfg.file_path, cfg.file_path, ipfix_kind_mask(cfg),
                    make_encoder_config(cfg, cfg.stream_message_size, cfg.stats_interval_s > 0)) {
  stats_interval_ = std::chrono::seconds(cfg.stats_interval_s);
  // After a crash the restarted exporter continues the file: the new
  // session starts again with templates at sequence 0, which a file
  // reader handles like a new transport session.
  std::error_code ec;
  const bool continued = cfg.file_append && std::filesystem::file_size(cfg.file_path, ec) > 0 && !ec;
  // its folder is made as for the text files (a fresh output volume)
  const auto folder = std::filesystem::path(cfg.file_path).parent_path();
  if (!folder.empty())
    std::filesystem::create_directories(folder, ec); // fopen reports what fails
  f_ = std::fopen(cfg.file_path.c_str(), cfg.file_append ? "ab" : "wb");
  if (!f_)
    throw std::runtime_error("IPFIX file " + cfg.file_path + ": cannot create: " + std::strerror(errno));
  if (continued)
    spdlog::warn("{}: continuing the file of the crashed exporter", name_);
  std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
  send_templates();
}

ipfix_file_sink::~ipfix_file_sink() {
  if (stats_interval_.count() > 0) send_stats(); // the final figures close the file
  flush();
  if (f_) std::fclose(f_);
}

void ipfix_file_sink::deliver(const uint8_t* data, size_t len, uint32_t records) {
  if (std::fwrite(data, 1, len, f_) != len) {
    ++c_.send_errors;
    c_.records_dropped += records;
    if (!write_failed_)
      spdlog::error("{}: write failed: {}; records are dropped", name_, std::strerror(errno));
    write_failed_ = true;
    return;
  }
  ++c_.messages_sent;
  c_.octets_sent += len;
  c_.records_sent += records;
}

void ipfix_file_sink::tick(std::chrono::system_clock::time_point now) {
  periodic_stats(now);
  flush();
}

void ipfix_file_sink::flush() {
  encoder_.flush();
  if (std::fflush(f_) != 0 && !write_failed_) {
    ++c_.send_errors;
    spdlog::error("{}: write failed: {}", name_, std::strerror(errno));
    write_failed_ = true;
  }
}

} // namespace metaprobe::ipfix
