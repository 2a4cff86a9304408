// SPDX-License-Identifier: Apache-2.0
#include "publisher/publisher.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

#include <sys/stat.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

namespace metaprobe {

void encode_batch_records(const std::vector<v1::Record>& records, std::string& out) {
  using google::protobuf::io::CodedOutputStream;
  using google::protobuf::internal::WireFormatLite;
  const uint32_t tag = WireFormatLite::MakeTag(v1::RecordBatch::kRecordsFieldNumber,
                                               WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  // Sizes first (cached in the records), then one write into a buffer of
  // exactly that size: no growth, no zero-filling of spare capacity.
  size_t total = 0;
  for (const auto& r : records) {
    const size_t n = r.ByteSizeLong();
    total += CodedOutputStream::VarintSize32(tag) +
             CodedOutputStream::VarintSize32(static_cast<uint32_t>(n)) + n;
  }
  out.resize(total);
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  for (const auto& r : records) {
    p = CodedOutputStream::WriteVarint32ToArray(tag, p);
    p = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(r.GetCachedSize()), p);
    p = r.SerializeWithCachedSizesToArray(p);
  }
}

publisher::publisher(publisher_options opts) : opts_(std::move(opts)), ctx_(1) {
  if (opts_.keys.on()) {
    zap_ = std::make_unique<zap_handler>(ctx_.handle(),
                                         std::vector<std::string>{opts_.keys.client_public});
    if (auto e = zap_->start(); !e.empty())
      throw std::runtime_error("cannot secure the channels: " + e);
  }
  for (const auto& ch : opts_.channels) {
    slot s;
    s.ch = ch;
    s.endpoint = channel_endpoint(opts_.endpoint_base, ch);
    s.sock = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::push);
    s.sock->set(zmq::sockopt::sndhwm, opts_.hwm);
    s.sock->set(zmq::sockopt::linger, opts_.linger_ms);
    if (opts_.block_ms != 0)
      s.sock->set(zmq::sockopt::sndtimeo, opts_.block_ms);
    if (opts_.keys.on())
      if (auto e = make_curve_server(s.sock->handle(), opts_.keys); !e.empty()) {
        for (auto& done : slots_) {
          done.sock->set(zmq::sockopt::linger, 0);
          close_slot(done);
        }
        s.sock->close();
        throw std::runtime_error("channel " + ch.name() + ": " + e);
      }
    // The monitor before the bind: an exporter waiting to connect may
    // finish its handshake right after it.
    const std::string monitor_addr = "inproc://metaprobe-publisher-monitor-" + ch.name();
    if (zmq_socket_monitor(s.sock->handle(), monitor_addr.c_str(),
                           ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                             ZMQ_EVENT_DISCONNECTED) != 0)
      throw std::runtime_error("cannot monitor channel " + ch.name() + ": " +
                               zmq_strerror(zmq_errno()));
    s.monitor = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::pair);
    s.monitor->set(zmq::sockopt::linger, 0);
    s.monitor->connect(monitor_addr);
    const std::string path = ipc_file(s.endpoint);
    std::string problem = path.empty() ? std::string() : ipc_path_problem(path);
    if (problem.find("in use") != std::string::npos)
      problem += " (another metaprobe-capture with the same channel_endpoint?)";
    try {
      if (problem.empty())
        s.sock->bind(s.endpoint);
    } catch (const zmq::error_t& e) {
      problem = e.what();
    }
    if (!problem.empty()) {
      s.sock->set(zmq::sockopt::linger, 0); // s.ipc stays empty: not ours, never removed
      close_slot(s);
      for (auto& done : slots_) { // the channels bound so far
        done.sock->set(zmq::sockopt::linger, 0);
        close_slot(done);
      }
      throw std::runtime_error("cannot bind channel " + ch.name() + " at " + s.endpoint + ": " +
                               problem);
    }
    if (!path.empty())
      ::chmod(path.c_str(), S_IRUSR | S_IWUSR);
    s.ipc = ipc_file_identity(path);
    slots_.push_back(std::move(s));
  }
}

publisher::~publisher() {
  if (!finished_) {
    for (auto& s : slots_) {
      if (s.sock)
        s.sock->set(zmq::sockopt::linger, 0);
      close_slot(s);
    }
  }
}

void publisher::close_slot(slot& s) {
  if (s.monitor) {
    zmq_socket_monitor(s.sock->handle(), nullptr, 0); // stops the reports
    s.monitor->close();
    s.monitor.reset();
  }
  if (s.sock)
    s.sock->close();
  // Connected exporters keep their connections; the file only lets new
  // ones in. Another process may have taken the path over since: leave
  // its file alone.
  ipc_file_remove(s.ipc);
}

bool publisher::send(slot& s, const std::string& bytes) {
  auto flags = opts_.block_ms == 0 ? zmq::send_flags::dontwait : zmq::send_flags::none;
  try {
    auto r = s.sock->send(zmq::buffer(bytes), flags);
    return r.has_value();
  } catch (const zmq::error_t&) {
    return false;
  }
}

void publisher::drain_monitor(slot& s) {
  if (!s.monitor)
    return;
  auto& c = counters_[s.ch.index()];
  for (;;) {
    zmq::message_t head;
    try {
      if (!s.monitor->recv(head, zmq::recv_flags::dontwait))
        return;
      // the second frame (the endpoint) follows at once: same message
      for (bool more = head.more(); more;) {
        zmq::message_t part;
        if (!s.monitor->recv(part, zmq::recv_flags::none))
          break;
        more = part.more();
      }
    } catch (const zmq::error_t&) {
      return;
    }
    if (head.size() < 6)
      continue;
    uint16_t event = 0;
    std::memcpy(&event, head.data(), sizeof(event));
    switch (event) {
      case ZMQ_EVENT_ACCEPTED:
        ++s.accepted_open;
        break;
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        c.exporters_connected = std::min(c.exporters_connected + 1, s.accepted_open);
        break;
      case ZMQ_EVENT_DISCONNECTED:
        if (s.accepted_open > 0)
          --s.accepted_open;
        // which connection ended is not known: a half-open one leaves the
        // count as it is, otherwise one fewer (see publisher.hpp)
        c.exporters_connected = std::min(c.exporters_connected, s.accepted_open);
        break;
      default:
        break;
    }
  }
}

void publisher::poll_events() {
  for (auto& s : slots_)
    drain_monitor(s);
}

std::string publisher::bound_endpoint(const channel& ch) const {
  for (const auto& s : slots_)
    if (s.ch.index() == ch.index())
      return s.sock->get(zmq::sockopt::last_endpoint);
  return {};
}

int publisher::expected_exporters(const channel& ch) const {
  return std::max(1, opts_.instances[ch.index()]);
}

std::vector<channel> publisher::wait_for_exporters(std::chrono::steady_clock::time_point deadline,
                                                   const std::atomic<bool>& stop) {
  std::vector<channel> short_of;
  for (;;) {
    poll_events();
    short_of.clear();
    for (const auto& s : slots_)
      if (counters_[s.ch.index()].exporters_connected <
          static_cast<uint64_t>(expected_exporters(s.ch)))
        short_of.push_back(s.ch);
    const auto now = std::chrono::steady_clock::now();
    if (short_of.empty() || now >= deadline || stop.load())
      return short_of;
    // wake on a monitor report, at the deadline, or to look at `stop`
    std::vector<zmq::pollitem_t> items;
    for (auto& s : slots_)
      if (s.monitor)
        items.push_back({s.monitor->handle(), 0, ZMQ_POLLIN, 0});
    const auto wait = std::min(std::chrono::ceil<std::chrono::milliseconds>(deadline - now),
                               std::chrono::milliseconds(50));
    try {
      if (items.empty())
        std::this_thread::sleep_for(wait);
      else
        zmq::poll(items.data(), items.size(), wait);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR)
        throw;
    }
  }
}

void publisher::publish(sink_group group, std::vector<v1::Record>&& records) {
  if (records.empty())
    return;
  // The records are encoded once for every channel of the group: each
  // channel's message is its own envelope fields followed by these bytes
  // (protobuf fields may come in any order; repeated ones concatenate).
  bool encoded = false;
  for (auto& s : slots_) {
    if (s.ch.group != group)
      continue;
    if (!encoded) {
      encode_batch_records(records, records_wire_);
      encoded = true;
    }
    v1::RecordBatch batch;
    batch.set_group(std::string(sink_group_names[static_cast<int>(group)]));
    batch.set_producer_id(opts_.producer_id);
    batch.set_sequence(s.sequence + 1);
    batch.set_dropped_records(s.pending_drops);
    batch.set_records_before(s.position);
    batch.set_dropped_before(s.dropped_total);
    batch.SerializeToString(&buffer_);
    buffer_.append(records_wire_);
    auto& c = counters_[s.ch.index()];
    if (send(s, buffer_)) {
      ++s.sequence;
      s.pending_drops = 0;
      ++c.batches_sent;
      c.records_sent += records.size();
      c.bytes_sent += buffer_.size();
    } else {
      ++c.batches_dropped;
      c.records_dropped += records.size();
      s.pending_drops += records.size();
      s.dropped_total += records.size();
    }
    s.position += records.size();
  }
}

void publisher::finish() {
  if (finished_)
    return;
  finished_ = true;
  poll_events();
  for (auto& s : slots_) {
    auto& c = counters_[s.ch.index()];
    const uint64_t n =
      std::max(static_cast<uint64_t>(expected_exporters(s.ch)), c.exporters_connected);
    for (uint64_t i = 0; i < n; ++i) {
      v1::RecordBatch eos;
      eos.set_group(std::string(sink_group_names[static_cast<int>(s.ch.group)]));
      eos.set_producer_id(opts_.producer_id);
      eos.set_sequence(s.sequence + 1);
      eos.set_dropped_records(s.pending_drops);
      eos.set_end_of_stream(true);
      eos.set_total_batches(c.batches_sent);
      eos.set_total_records(c.records_sent);
      eos.set_records_before(s.position);
      eos.set_dropped_before(s.dropped_total);
      eos.SerializeToString(&buffer_);
      // end of stream always waits (bounded by linger) so it is not lost
      s.sock->set(zmq::sockopt::sndtimeo, opts_.linger_ms);
      try {
        if (s.sock->send(zmq::buffer(buffer_), zmq::send_flags::none))
          ++s.sequence;
      } catch (const zmq::error_t&) {
      }
      s.pending_drops = 0;
    }
    close_slot(s);
  }
}

} // namespace metaprobe
