// SPDX-License-Identifier: Apache-2.0
// A rogue peer on a record channel, for integration.channel_security
// (pyzmq is not a test dependency):
//   channel_rogue pull ENDPOINT SECONDS [SERVER_PUB_FILE]
//     connects a PULL socket (a CURVE client with a key pair of its own
//     when SERVER_PUB_FILE is given: it knows the capture's public key but
//     not the client key) and prints "received N" after SECONDS.
//   channel_rogue push ENDPOINT PRODUCER BATCHES RECORDS [EOS_PRODUCER]
//     binds a PUSH socket where the capture would, waits for a peer, sends
//     BATCHES batches of RECORDS dns records (domain rogue<i>.test) from
//     PRODUCER (hex), then, with EOS_PRODUCER, an end of stream from that
//     producer; prints "sent N".
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include <zmq.h>

#include "metaprobe/v1/envelope.pb.h"

namespace {

int pull(const std::string& ep, double seconds, const char* server_pub_file) {
  void* ctx = zmq_ctx_new();
  void* s = zmq_socket(ctx, ZMQ_PULL);
  int linger = 0;
  zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
  if (server_pub_file) {
    std::ifstream f(server_pub_file);
    std::string server_pub;
    std::getline(f, server_pub);
    char pub[41], sec[41];
    zmq_curve_keypair(pub, sec);
    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_pub.c_str(), 40);
    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40);
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40);
  }
  if (zmq_connect(s, ep.c_str()) != 0) {
    std::fprintf(stderr, "connect %s: %s\n", ep.c_str(), zmq_strerror(zmq_errno()));
    return 1;
  }
  std::printf("connected\n");
  std::fflush(stdout);
  long n = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    zmq_pollitem_t it{s, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, 50) > 0 && (it.revents & ZMQ_POLLIN)) {
      zmq_msg_t m;
      zmq_msg_init(&m);
      if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) >= 0)
        ++n;
      zmq_msg_close(&m);
    }
  }
  std::printf("received %ld\n", n);
  zmq_close(s);
  zmq_ctx_term(ctx);
  return 0;
}

int push(const std::string& ep, uint64_t producer, int batches, int records, uint64_t eos_producer) {
  void* ctx = zmq_ctx_new();
  void* s = zmq_socket(ctx, ZMQ_PUSH);
  int linger = 5000;
  zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
  if (zmq_bind(s, ep.c_str()) != 0) {
    std::fprintf(stderr, "bind %s: %s\n", ep.c_str(), zmq_strerror(zmq_errno()));
    return 1;
  }
  std::printf("bound\n");
  std::fflush(stdout);
  int sent = 0;
  auto send = [&](const metaprobe::v1::RecordBatch& b) {
    const std::string bytes = b.SerializeAsString();
    // blocks until a peer is connected (no send timeout)
    if (zmq_send(s, bytes.data(), bytes.size(), 0) >= 0)
      ++sent;
  };
  for (int i = 0; i < batches; ++i) {
    metaprobe::v1::RecordBatch b;
    b.set_group("dns");
    b.set_producer_id(producer);
    b.set_sequence(static_cast<uint64_t>(i) + 1);
    b.set_records_before(static_cast<uint64_t>(i) * records);
    for (int r = 0; r < records; ++r)
      b.add_records()->mutable_dns()->set_domain("rogue" + std::to_string(i * records + r) + ".test");
    send(b);
  }
  if (eos_producer) {
    metaprobe::v1::RecordBatch eos;
    eos.set_group("dns");
    eos.set_producer_id(eos_producer);
    eos.set_sequence(1);
    eos.set_end_of_stream(true);
    send(eos);
  }
  std::printf("sent %d\n", sent);
  std::fflush(stdout);
  zmq_close(s);
  zmq_ctx_term(ctx);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "pull" && (argc == 4 || argc == 5))
    return pull(argv[2], std::atof(argv[3]), argc == 5 ? argv[4] : nullptr);
  if (mode == "push" && (argc == 6 || argc == 7))
    return push(argv[2], std::strtoull(argv[3], nullptr, 16), std::atoi(argv[4]),
                std::atoi(argv[5]), argc == 7 ? std::strtoull(argv[6], nullptr, 16) : 0);
  std::fprintf(stderr, "usage: see the head of channel_rogue.cpp\n");
  return 2;
}
