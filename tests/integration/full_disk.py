#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""An IPFIX file on a full file system.

The test mounts a small tmpfs (root: `mount -t tmpfs -o size=...`) and runs
the appliance on a generated capture of N DNS queries with `ipfix_dns_file`
on that tmpfs: the file system fills up part way. Checks:

- the appliance exits and reports the loss (not "0 lost");
- the exporter's file sink counts records_sent + records_dropped == N,
  records_dropped > 0 and at least one send error;
- the file holds exactly records_sent records (metaprobe-receiver) and
  decodes with libfixbuf's ipfixDump without an error or a torn message;
- the file is created with output_mode (0600 here).

Usage: full_disk.py --bin-dir BUILD/bin [--work-dir DIR] [--timeout S]
exit 0 pass, 1 fail, 77 skip (not root, or ipfixDump missing).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp_integration as mpi  # noqa: E402
import export_harness as xh  # noqa: E402

N = 20000
TMPFS_BYTES = 256 * 1024
check = mpi.check
ELEMENTS = Path(__file__).resolve().parents[2] / "config" / "ipfix" / "metaprobe_fixbuf.xml"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work-dir")
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("SKIP: mounting a tmpfs needs root")
        return mpi.SKIP
    ipfixdump = shutil.which("ipfixDump")
    if not ipfixdump:
        print("SKIP: ipfixDump (libfixbuf-tools, deploy/install-deps.sh) is not installed")
        return mpi.SKIP
    bin_dir = Path(args.bin_dir).resolve()
    work = mpi.make_workdir(Path(args.work_dir) if args.work_dir else None, "full-disk")
    pcap = work / "dns.pcap"
    pcap.write_bytes(xh.gen.global_header() + xh.dns_query_frames(0, N))
    mnt = Path(tempfile.mkdtemp(prefix="mp-full-"))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES},mode=0755", "tmpfs", str(mnt)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        print(f"SKIP: mount -t tmpfs failed: {r.stdout.strip()}")
        mnt.rmdir()
        return mpi.SKIP
    try:
        dns_file = mnt / "dns.ipfix"
        with mpi.channel_dir("full") as endpoint:
            app = xh.appliance(bin_dir, work, endpoint, [
                f"input=pcap:{pcap}", f"ipfix_dns_file={dns_file}", "output_mode=0600"])
            rc = xh.finish(app, args.timeout)
        log = (work / "appliance.log").read_text("utf-8", "replace")
        check(rc is not None, "the appliance finishes", log[-2000:])
        san = mpi.sanitizer_lines(log)
        check(not san, "no sanitizer report", "\n".join(san[:5]))
        size = dns_file.stat().st_size if dns_file.exists() else -1
        print(f"     file {size} bytes on a {TMPFS_BYTES}-byte tmpfs")
        check(dns_file.exists() and (dns_file.stat().st_mode & 0o777) == 0o600,
              "the file is created with output_mode 0600")

        fs = xh.sink_counters(xh.exporter_counters(log), "dns.ipfix", 0, "ipfix:file:")
        check(bool(fs), "the exporter logged its file sink counters", log[-2000:])
        sent, dropped, errors = (fs.get(k, -1) for k in ("records_sent", "records_dropped", "send_errors"))
        print(f"     file sink: sent {sent}, dropped {dropped}, send errors {errors}, "
              f"truncations {fs.get('truncations')}")
        check(sent + dropped == N, f"records_sent + records_dropped == records produced ({sent} + {dropped} of {N})")
        check(dropped > 0 and errors > 0, "the full file system is counted (records dropped, send errors)")
        check(re.search(r"write failed: (No space left on device|File too large)", log) is not None,
              "the write failure is logged with its cause", log[-2000:])
        m = re.search(r"channel dns\.ipfix: .* (\d+) dropped by their sinks", log)
        check(m is not None and int(m.group(1)) == dropped,
              f"the appliance reports the records its sinks dropped ({m.group(1) if m else '?'} of {dropped})",
              log[-1500:])

        recs, err = mpi.decode_ipfix(bin_dir, dns_file)
        # The dropped records stay counted in the sequence numbers: one gap
        # per failure episode is how the file tells a reader of the loss.
        check(err is None or re.fullmatch(r"metaprobe-receiver on dns\.ipfix: \d+ sequence gap\(s\)", err.strip()),
              "metaprobe-receiver decodes the file (only the sequence gap of the loss)", err or "")
        check(len(recs) == sent, f"the file holds exactly the records counted sent ({len(recs)} of {sent})")

        p = subprocess.run([ipfixdump, "--in", str(dns_file), "--element-file", str(ELEMENTS)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
        m = re.search(r"File Stats: (\d+) Messages, (\d+) Data Records", p.stdout)
        other = [l for l in p.stderr.splitlines() if l.strip() and "out of sequence" not in l]
        check(p.returncode == 0 and not other,
              "ipfixDump decodes the file without error (its only warning: the sequence gap of the loss)",
              f"rc {p.returncode}: {p.stderr.strip()[:800]}")
        check(m is not None and int(m.group(2)) >= sent,
              f"ipfixDump reads every record ({m.group(2) if m else '?'} data records, "
              f"{sent} DNS records + statistics)")
    finally:
        subprocess.run(["umount", str(mnt)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            mnt.rmdir()
        except OSError:
            pass
    return mpi.verdict(work)


if __name__ == "__main__":
    sys.exit(main())
