// SPDX-License-Identifier: Apache-2.0
// metaprobe-receiver: IPFIX collector printing one record per line (JSON or
// text), like the seeds' ipfixreceiver2. Wiring only: the loop is
// ipfix::ipfix_receiver, the line format ipfix::format_record.

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "exporters/ipfix/ipfix_receiver.hpp"
#include "exporters/ipfix/record_format.hpp"
#include "service.hpp"

using namespace metaprobe;

namespace {

constexpr const char* process_name = "metaprobe-receiver";

void usage(std::FILE* to) {
  std::fprintf(to,
               "usage: %s --listen udp:HOST:PORT|tcp:HOST:PORT|file:PATH [--format json|text]\n"
               "          [--output FILE] [--count N] [--idle-exit SECONDS] [--options]\n"
               "Prints one IPFIX record per line. JSON keys are the field names of\n"
               "spec/templates.tsv plus \"template\" and \"family\". --options also prints\n"
               "options records (exporter statistics).\n"
               "stderr: a line when a session (UDP peer, TCP connection, file) starts and\n"
               "when a TCP connection or the file ends, and a summary on exit: records per\n"
               "template, decode errors and sequence gaps per exporter (session and\n"
               "observation domain). With --format json the session lines are JSON and a\n"
               "JSON summary line {\"summary\":...} follows the text summary.\n",
               process_name);
}

bool parse_number(const std::string& text, double& out) {
  char* end = nullptr;
  errno = 0;
  out = std::strtod(text.c_str(), &end);
  return errno == 0 && end && *end == '\0' && !text.empty() && out >= 0;
}

} // namespace

int main(int argc, char** argv) {
  ipfix::receiver_options opts;
  ipfix::output_format fmt = ipfix::output_format::json;
  std::string output;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) {
        service::fail(process_name, a + " needs a value");
        std::exit(service::exit_config);
      }
      out = argv[++i];
    };
    std::string v;
    double num = 0;
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return service::exit_ok;
    } else if (a == "--listen") {
      value(opts.listen);
    } else if (a == "--format") {
      value(v);
      if (v == "json") {
        fmt = ipfix::output_format::json;
      } else if (v == "text") {
        fmt = ipfix::output_format::text;
      } else {
        service::fail(process_name, "--format " + v + ": expected json or text");
        return service::exit_config;
      }
    } else if (a == "--output") {
      value(output);
    } else if (a == "--count") {
      value(v);
      if (!parse_number(v, num) || num != static_cast<double>(static_cast<uint64_t>(num))) {
        service::fail(process_name, "--count " + v + ": expected a whole number");
        return service::exit_config;
      }
      opts.max_records = static_cast<uint64_t>(num);
    } else if (a == "--idle-exit") {
      value(v);
      if (!parse_number(v, num)) {
        service::fail(process_name, "--idle-exit " + v + ": expected seconds");
        return service::exit_config;
      }
      opts.idle_exit_s = num;
    } else if (a == "--options") {
      opts.include_options = true;
    } else {
      service::fail(process_name, "unknown argument " + a);
      usage(stderr);
      return service::exit_config;
    }
  }
  if (opts.listen.empty()) {
    service::fail(process_name, "--listen is required");
    usage(stderr);
    return service::exit_config;
  }
  if (opts.listen.rfind("udp:", 0) != 0 && opts.listen.rfind("tcp:", 0) != 0 &&
      opts.listen.rfind("file:", 0) != 0) {
    service::fail(process_name, "--listen " + opts.listen +
                                  ": expected udp:HOST:PORT, tcp:HOST:PORT or file:PATH");
    return service::exit_config;
  }

  std::FILE* out = stdout;
  if (!output.empty()) {
    out = std::fopen(output.c_str(), "w");
    if (!out) {
      service::fail(process_name, "--output " + output + ": " + std::strerror(errno));
      return service::exit_failure;
    }
  }
  const auto& stop = service::install_stop_signals();
  std::string line;
  int rc = service::exit_ok;
  try {
    ipfix::ipfix_receiver rx(opts, [&](const ipfix::decoded_record& r) {
      line.clear();
      ipfix::format_record(r, fmt, line);
      line += '\n';
      std::fwrite(line.data(), 1, line.size(), out);
      std::fflush(out); // one line at a time: tests tail the output
    });
    rx.on_session([&](ipfix::ipfix_receiver::session_event ev, uint64_t session) {
      const std::string text = ipfix::format_session_event(rx, ev, session, fmt);
      if (fmt == ipfix::output_format::json)
        std::fputs(text.c_str(), stderr);
      else
        for (size_t b = 0, e; b < text.size(); b = e + 1) {
          e = text.find('\n', b);
          std::fprintf(stderr, "%s: %s\n", process_name, text.substr(b, e - b).c_str());
        }
    });
    if (!rx.local_address().empty())
      std::fprintf(stderr, "%s: listening on %s:%s\n", process_name, opts.listen.substr(0, 3).c_str(),
                   rx.local_address().c_str());
    const auto why = rx.run(stop);
    const std::string summary = ipfix::format_summary(rx, ipfix::output_format::text);
    std::fprintf(stderr, "%s: %s", process_name, summary.c_str());
    if (fmt == ipfix::output_format::json)
      std::fputs(ipfix::format_summary(rx, ipfix::output_format::json).c_str(), stderr);
    if (why == ipfix::ipfix_receiver::stop_reason::error) rc = service::exit_failure;
  } catch (const std::exception& e) {
    service::fail(process_name, e.what());
    rc = service::exit_failure;
  }
  if (out != stdout) std::fclose(out);
  return rc;
}
