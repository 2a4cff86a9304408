// SPDX-License-Identifier: Apache-2.0
#pragma once
// Text-file sink: the seeds' ajb_save_{url,ssl,sip,dns} files.
//
// Files: lines go to `<path>/<kind>_<YYYYmmdd-HHMMSS>_<instance>_<seq>.txt.tmp`
// (UTC time of the file's first record, exporter instance number, a
// six-digit sequence number), written through a buffer of `bufsize` bytes.
// A file is finished when its size reaches `fsize` (a line that would cross
// fsize starts the next file, so files stay within fsize unless one line is
// larger) or, in tick(), when it is not empty and `ftimeout` has passed
// since it was opened; flush() finishes the current file. Finishing writes
// the buffer, optionally fdatasync()s, closes, and renames the file to the
// same name without `.tmp`, so a reader that ignores `*.tmp` sees only
// whole files of whole lines. No empty files are produced.
//
// Time: the sink's clock is the `now` of the last tick() (wall clock at
// construction), so tests drive rotation by calling tick(now).
//
// Errors (disk full, unwritable or missing directory): never thrown. The
// directory is created if missing; opening is retried at the next tick.
// Records that cannot be written are counted in records_dropped; a failed
// write is cut back to the last whole line. One error line is logged per
// error episode and one line when writing works again. A `.tmp` file left
// by a crash is not touched.
//
// Threading: one thread, like every sink.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "exporters/sink.hpp"
#include "exporters/text/text_format.hpp"

namespace metaprobe {

struct text_sink_config {
  text_kind kind = text_kind::url;
  std::string path = "/var/dump/dpi";  // directory of the files
  std::vector<std::string> format;     // field names; empty = the kind's default
  uint64_t fsize = uint64_t{100} << 20; // finish a file at this size (bytes)
  double ftimeout_s = 30;              // finish a non-empty file after this long
  uint64_t bufsize = 64 << 10;         // write buffer; 0 = write every line
  int64_t ssl_mask = -1;               // ajb_save_ssl (kind ssl only)
  uint32_t instance = 0;               // exporter instance, part of file names
  bool fsync = false;                  // fdatasync() each file before renaming
  uint32_t file_mode = 0640;           // permissions of the files (output_mode)
};

// Builds the sink. Throws config_error if `format` names a field the kind
// does not have (config::load already rejects such formats); never throws
// for I/O problems.
std::unique_ptr<sink> make_text_sink(const text_sink_config& cfg);

// One config per enabled text kind (ajb_save_url/ssl/sip != 0,
// ajb_save_dns 1 or 2), in the order url, ssl, sip, dns. `instance` is 0;
// the exporter sets its own.
std::vector<text_sink_config> text_sinks_from_config(const config& cfg);

// Creates `dir` (with parents) if missing and checks that files can be
// created in it. Returns "" when fine, else a message for the operator, so
// a service can refuse to start (exit 2) instead of dropping everything.
std::string prepare_text_dir(const std::string& dir);

} // namespace metaprobe
