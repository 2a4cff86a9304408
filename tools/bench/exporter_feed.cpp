// SPDX-License-Identifier: Apache-2.0
// metaprobe-bench-feed: drives one metaprobe-exporter at full speed for the
// exporter benchmark (tools/bench/exporter_bench.py). Not part of the
// appliance.
//
//   record --endpoint E --out FILE
//       connects a PULL socket to a channel endpoint as an exporter would,
//       stores every record batch metaprobe-capture publishes there until
//       end of stream (length-prefixed serialised RecordBatch messages).
//   replay --endpoint E --in FILE --records N
//       binds a PUSH socket at E as metaprobe-capture would and sends the
//       stored batches over and over, each with a fresh sequence number,
//       until N records have been sent; then an end-of-stream batch with
//       the totals. Prints "records R batches B seconds S" on stdout.
//
// Replay re-sends the stored bytes with the producer id, sequence number and
// dropped-record count appended as extra fields: protobuf keeps the last
// value of a repeated scalar field, so no batch is re-encoded and the feeder
// costs the exporter nothing it would not pay in production.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "metaprobe/v1/envelope.pb.h"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: metaprobe-bench-feed record --endpoint E --out FILE\n"
               "       metaprobe-bench-feed replay --endpoint E --in FILE --records N\n");
  return 2;
}

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// field number f, wire type 0 (varint)
void put_field(std::string& out, int f, uint64_t v) {
  put_varint(out, static_cast<uint64_t>(f) << 3);
  put_varint(out, v);
}

int record(const std::string& endpoint, const std::string& path) {
  zmq::context_t ctx(1);
  zmq::socket_t sock(ctx, zmq::socket_type::pull);
  sock.set(zmq::sockopt::rcvhwm, 100000);
  sock.connect(endpoint);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    std::fprintf(stderr, "bench-feed: cannot write %s\n", path.c_str());
    return 1;
  }
  uint64_t batches = 0, records = 0;
  for (;;) {
    zmq::message_t msg;
    if (!sock.recv(msg))
      continue;
    metaprobe::v1::RecordBatch b;
    if (!b.ParseFromArray(msg.data(), static_cast<int>(msg.size()))) {
      std::fprintf(stderr, "bench-feed: not a RecordBatch\n");
      return 1;
    }
    if (b.records_size() > 0) {
      b.clear_end_of_stream();
      b.clear_total_batches();
      b.clear_total_records();
      std::string bytes = b.SerializeAsString();
      const uint32_t len = static_cast<uint32_t>(bytes.size());
      out.write(reinterpret_cast<const char*>(&len), sizeof len);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      ++batches;
      records += static_cast<uint64_t>(b.records_size());
    }
    if (b.end_of_stream())
      break;
  }
  out.close();
  if (!out || records == 0) {
    std::fprintf(stderr, "bench-feed: %s: %s\n", path.c_str(),
                 records == 0 ? "no records on the channel" : "write failed");
    return 1;
  }
  std::printf("recorded %llu batches, %llu records\n", static_cast<unsigned long long>(batches),
              static_cast<unsigned long long>(records));
  return 0;
}

struct stored {
  std::string bytes;
  uint64_t records = 0;
};

int replay(const std::string& endpoint, const std::string& path, uint64_t want) {
  std::ifstream in(path, std::ios::binary);
  std::vector<stored> batches;
  for (uint32_t len = 0; in.read(reinterpret_cast<char*>(&len), sizeof len);) {
    stored s;
    s.bytes.resize(len);
    if (!in.read(s.bytes.data(), len)) {
      std::fprintf(stderr, "bench-feed: %s is cut short\n", path.c_str());
      return 1;
    }
    metaprobe::v1::RecordBatch b;
    if (!b.ParseFromString(s.bytes)) {
      std::fprintf(stderr, "bench-feed: %s holds a bad batch\n", path.c_str());
      return 1;
    }
    s.records = static_cast<uint64_t>(b.records_size());
    batches.push_back(std::move(s));
  }
  if (batches.empty()) {
    std::fprintf(stderr, "bench-feed: %s holds no batches\n", path.c_str());
    return 1;
  }
  zmq::context_t ctx(1);
  zmq::socket_t sock(ctx, zmq::socket_type::push);
  sock.set(zmq::sockopt::sndhwm, 1000);
  sock.set(zmq::sockopt::linger, 30000); // deliver what is queued before exiting
  // an exporter that stops reading (or never connects) fails the run
  sock.set(zmq::sockopt::sndtimeo, 30000);
  sock.bind(endpoint);
  const uint64_t producer = 0x62656e6368ULL; // "bench"
  uint64_t sent = 0, seq = 0;
  auto t0 = std::chrono::steady_clock::now();
  while (sent < want) {
    for (const auto& s : batches) {
      std::string msg = s.bytes;
      put_field(msg, metaprobe::v1::RecordBatch::kProducerIdFieldNumber, producer);
      put_field(msg, metaprobe::v1::RecordBatch::kSequenceFieldNumber, ++seq);
      put_field(msg, metaprobe::v1::RecordBatch::kDroppedRecordsFieldNumber, 0);
      // blocks while the exporter is behind
      if (!sock.send(zmq::buffer(msg), zmq::send_flags::none)) {
        std::fprintf(stderr, "bench-feed: the exporter took nothing for 30 s\n");
        return 1;
      }
      sent += s.records;
      if (sent >= want)
        break;
    }
  }
  metaprobe::v1::RecordBatch eos;
  eos.set_producer_id(producer);
  eos.set_sequence(++seq);
  eos.set_end_of_stream(true);
  eos.set_total_batches(seq);
  eos.set_total_records(sent);
  if (!sock.send(zmq::buffer(eos.SerializeAsString()), zmq::send_flags::none)) {
    std::fprintf(stderr, "bench-feed: the exporter took nothing for 30 s\n");
    return 1;
  }
  const double secs =
    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("records %llu batches %llu seconds %.3f\n", static_cast<unsigned long long>(sent),
              static_cast<unsigned long long>(seq), secs);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2)
    return usage();
  const std::string mode = argv[1];
  std::string endpoint, file;
  uint64_t records = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--endpoint")
      endpoint = v;
    else if (k == "--out" || k == "--in")
      file = v;
    else if (k == "--records")
      records = std::strtoull(v.c_str(), nullptr, 10);
    else
      return usage();
  }
  if (endpoint.empty() || file.empty())
    return usage();
  try {
    if (mode == "record")
      return record(endpoint, file);
    if (mode == "replay" && records > 0)
      return replay(endpoint, file, records);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-feed: %s\n", e.what());
    return 1;
  }
  return usage();
}
