#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Robustness: the appliance on damaged captures, with every channel on
(all four IPFIX files and every text export).

Inputs: the corpus captures whose name says malformed / truncated / garbage
or that MANIFEST.tsv flags with malformed or error frames (small ones), plus
captures generated here with struct: a file cut inside a record, inside a
record header, a garbage global header, a zero-length file, a header-only
file, every record cut to a snaplen of 60, a record length far beyond the
file, caplen > wire length, an unsupported link type, random frames and
crafted HTTP/DNS payloads (compression loops, endless header lines, ...).

Expected outcome per input (docs/testing.md):
  ok      exit 0: a readable file is processed to its end, whatever its
          packets contain; a record cut short at the end is counted.
  header  exit 1 with an error line naming the file: the file header cannot
          be read (zero length, garbage magic, unsupported link type), so
          there is nothing to process.
  either  exit 0, or exit 1 with an error line naming the file (a read
          error in the middle of a readable file).
Always: no process killed by a signal, finished within --timeout (hang
detection), no sanitizer report, every IPFIX file written decodes cleanly
with metaprobe-receiver.

Usage: robustness.py --bin-dir BUILD/bin [--corpus DIR] [--timeout S] [--jobs N]
Exit 0 pass, 1 fail, 77 corpus missing.
"""

import argparse
import os
import random
import re
import shutil
import signal
import struct
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp_integration as mpi  # noqa: E402

NAME_PATTERN = re.compile(r"malformed|truncated|garbage")
MAX_FLAGGED_PACKETS = 500  # flagged captures larger than this are left to truth_compare

# ------------------------------------------------------------ pcap writing

PCAP_MAGIC = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D


def global_header(linktype=1, snaplen=65535, magic=PCAP_MAGIC, endian="<"):
    return struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)


def record(data: bytes, ts=1_600_000_000, usec=0, orig_len=None, incl_len=None, endian="<"):
    incl = len(data) if incl_len is None else incl_len
    orig = len(data) if orig_len is None else orig_len
    return struct.pack(endian + "IIII", ts, usec, incl, orig) + data


def read_records(path: Path):
    """(header bytes, [(ts, usec, incl, orig, data)]) of a little-endian
    microsecond pcap."""
    b = path.read_bytes()
    hdr = b[:24]
    out, off = [], 24
    while off + 16 <= len(b):
        ts, us, incl, orig = struct.unpack_from("<IIII", b, off)
        off += 16
        out.append((ts, us, incl, orig, b[off:off + incl]))
        off += incl
    return hdr, out


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def eth_ipv4(proto: int, src: str, dst: str, l4: bytes, total_len=None, frag=0) -> bytes:
    sa = bytes(int(x) for x in src.split("."))
    da = bytes(int(x) for x in dst.split("."))
    tl = 20 + len(l4) if total_len is None else total_len
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, tl & 0xFFFF, 0x1234, frag, 64, proto, 0, sa, da)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\x08\x00" + ip + l4


def udp(sport, dport, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp(sport, dport, seq, payload: bytes, flags=0x18) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, 1, 5 << 4, flags, 65535, 0, 0) + payload


def tcp_flow(frames, c, s, cport, sport, payloads, t0):
    """A handshake, then the client's payload segments, then FIN."""
    seq = 1000
    frames.append(record(eth_ipv4(6, c, s, tcp(cport, sport, seq - 1, b"", 0x02)), t0))
    frames.append(record(eth_ipv4(6, s, c, tcp(sport, cport, 5000, b"", 0x12)), t0, 100))
    frames.append(record(eth_ipv4(6, c, s, tcp(cport, sport, seq, b"", 0x10)), t0, 200))
    for i, p in enumerate(payloads):
        frames.append(record(eth_ipv4(6, c, s, tcp(cport, sport, seq, p)), t0, 300 + i))
        seq += len(p)
    frames.append(record(eth_ipv4(6, c, s, tcp(cport, sport, seq, b"", 0x11)), t0 + 1))


def dns_msg(qd=1, an=0, body=b"") -> bytes:
    return struct.pack("!HHHHHH", 0x1234, 0x8180 if an else 0x0100, qd, an, 0, 0) + body


def crafted_frames(rng: random.Random):
    """Hand-made hostile payloads for the HTTP and DNS parsers."""
    frames = []
    t = 1_600_000_000
    big_line = b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    many_headers = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 5000 + b"\r\n"
    long_value = b"GET / HTTP/1.1\r\nHost: x\r\nCookie: " + b"c" * 200000 + b"\r\n\r\n"
    no_crlf = b"GET /never-ends HTTP/1.1\r\nHost: x\r\nUser-Agent: " + bytes(rng.getrandbits(8) for _ in range(3000))
    binary = bytes(rng.getrandbits(8) for _ in range(4000))
    nul_in = b"GET /a\x00b HTTP/1.1\r\nHost: \x00\xff\r\nUser-Agent: \x80\x81\r\n\r\n"
    pipelined = (b"GET /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n"
                 b"GET /2 HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"
                 b"POST /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nxx\r\n")
    for i, payload in enumerate([big_line, many_headers, long_value, no_crlf, binary, nul_in, pipelined]):
        segs = [payload[j:j + 1400] for j in range(0, len(payload), 1400)]
        tcp_flow(frames, "10.9.0.1", "10.9.0.2", 40000 + i, 80, segs, t + i)
    # DNS: compression loop, pointer past the end, label past the end,
    # huge counts with no data, 63-byte labels to 255+ bytes, empty
    q = b"\x03www\x07example\x03com\x00\x00\x01\x00\x01"
    loops = [
        dns_msg(1, 0, b"\xc0\x0c\x00\x01\x00\x01"),
        dns_msg(1, 1, q + b"\xc0\x22\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x01\x02\x03\x04"),
        dns_msg(1, 0, b"\x3fabc"),
        dns_msg(65535, 65535, b""),
        dns_msg(1, 0, (b"\x3f" + b"a" * 63) * 5 + b"\x00\x00\x01\x00\x01"),
        dns_msg(0, 0, b""),
        b"\x12",
        dns_msg(1, 1, q + b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c\xff\xff\xc0\x0c"),
        dns_msg(1, 1, q + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x01\x02"),
    ]
    for i, m in enumerate(loops):
        frames.append(record(eth_ipv4(17, "10.9.1.1", "10.9.1.2", udp(50000 + i, 53, m)), t + 20 + i))
        frames.append(record(eth_ipv4(17, "10.9.1.2", "10.9.1.1", udp(53, 50000 + i, m)), t + 20 + i, 5))
    # DNS over TCP with a length prefix that lies
    tcp_flow(frames, "10.9.2.1", "10.9.2.2", 45000, 53, [b"\xff\xff" + dns_msg(1, 0, q)], t + 40)
    # IPv4 header lies: total length larger / smaller than the frame, bad
    # IHL, fragments that overlap
    frames.append(record(eth_ipv4(17, "10.9.3.1", "10.9.3.2", udp(1, 53, q), total_len=60000), t + 50))
    frames.append(record(eth_ipv4(17, "10.9.3.1", "10.9.3.2", udp(1, 53, q), total_len=10), t + 50))
    frames.append(record(eth_ipv4(17, "10.9.3.1", "10.9.3.2", udp(2, 53, dns_msg(1, 0, q)), frag=0x2000), t + 51))
    frames.append(record(eth_ipv4(17, "10.9.3.1", "10.9.3.2", b"\x00" * 8, frag=0x0000 | 1), t + 51))
    frames.append(record(eth_ipv4(17, "10.9.3.1", "10.9.3.2", b"\x00" * 16, frag=0x2000 | 0), t + 51))
    return frames


def random_frames(rng: random.Random, n=400):
    frames = []
    ports = [80, 53, 443, 5060, 21, 25, 110, 143, 5222, 8080]
    for i in range(n):
        kind = rng.randrange(4)
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 1500)))
        if kind == 0:
            data = payload  # anything at all
        elif kind == 1:
            data = eth_ipv4(17, "10.8.0.%d" % rng.randrange(1, 255), "10.8.1.1",
                            udp(rng.randrange(1024, 65535), rng.choice(ports), payload))
        elif kind == 2:
            data = eth_ipv4(6, "10.8.0.%d" % rng.randrange(1, 255), "10.8.1.1",
                            tcp(rng.randrange(1024, 65535), rng.choice(ports), rng.getrandbits(32), payload,
                                rng.getrandbits(8)))
        else:
            data = eth_ipv4(rng.randrange(256), "10.8.0.1", "10.8.1.1", payload,
                            total_len=rng.randrange(0, 70000))
        cut = len(data) if rng.random() < 0.8 else rng.randrange(0, len(data) + 1)
        frames.append(record(data[:cut], 1_600_000_100 + i // 10, i, orig_len=len(data)))
    return frames


def generated_inputs(corpus: Path, out: Path):
    """(path, expectation, description) of the generated captures."""
    rng = random.Random(20240601)
    src = corpus / "http-4k-requests.pcap"
    hdr, recs = read_records(src)
    whole = src.read_bytes()
    cases = []

    def put(name, data, expect, what):
        p = out / name
        p.write_bytes(data)
        cases.append((p, expect, what))

    # offset of record 10's data
    off = 24
    for ts, us, incl, orig, data in recs[:10]:
        off += 16 + incl
    put("gen-cut-in-record.pcap", whole[:off + 16 + recs[10][2] // 2], "ok",
        "file ends in the middle of a record's data")
    put("gen-cut-in-record-header.pcap", whole[:off + 7], "ok",
        "file ends in the middle of a record header")
    garbage = bytes(rng.getrandbits(8) for _ in range(24))
    if garbage[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x0a\x0d\x0d\x0a"):
        garbage = b"\x00" + garbage[1:]
    put("gen-garbage-header.pcap", garbage + whole[24:], "header", "global header of random bytes")
    put("gen-zero-length.pcap", b"", "header", "empty file")
    put("gen-short-header.pcap", whole[:13], "header", "file shorter than the global header")
    put("gen-header-only.pcap", hdr, "ok", "valid global header, no records")
    put("gen-snaplen-60.pcap",
        global_header(snaplen=60) + b"".join(record(d[:60], ts, us, orig_len=orig) for ts, us, incl, orig, d in recs),
        "ok", "every record cut to 60 bytes (snaplen 60)")
    put("gen-huge-record-length.pcap",
        hdr + b"".join(record(d, ts, us) for ts, us, incl, orig, d in recs[:5])
        + struct.pack("<IIII", 1, 0, 0x7FFFFFF0, 0x7FFFFFF0) + b"x" * 100,
        "either", "a record claims 2 GiB of data")
    put("gen-caplen-over-wire.pcap",
        hdr + b"".join(record(d, ts, us, orig_len=max(0, len(d) // 3)) for ts, us, incl, orig, d in recs[:40]),
        "ok", "captured length larger than the wire length")
    put("gen-zero-caplen.pcap",
        hdr + b"".join(record(b"", ts, us, orig_len=orig) for ts, us, incl, orig, d in recs[:40]),
        "ok", "records with no captured bytes")
    put("gen-unknown-linktype.pcap", global_header(linktype=147) + whole[24:], "header",
        "link type 147 (USER0), which metaprobe does not decode")
    be = global_header(endian=">") + b"".join(record(d, ts, us, endian=">") for ts, us, incl, orig, d in recs)
    put("gen-big-endian.pcap", be, "ok", "the same capture written big-endian")
    ns = global_header(magic=PCAP_MAGIC_NS) + b"".join(record(d, ts, us * 1000) for ts, us, incl, orig, d in recs)
    put("gen-nanosecond.pcap", ns, "ok", "the same capture with nanosecond timestamps")
    put("gen-random-frames.pcap", global_header() + b"".join(random_frames(rng)), "ok",
        "400 frames of random bytes behind plausible headers")
    put("gen-crafted-payloads.pcap", global_header() + b"".join(crafted_frames(rng)), "ok",
        "hostile HTTP and DNS payloads (endless lines, compression loops, lying counts)")
    return cases


def corpus_inputs(corpus: Path):
    cases = []
    manifest = corpus / "MANIFEST.tsv"
    flagged = {}
    if manifest.exists():
        lines = manifest.read_text(errors="replace").splitlines()
        hdr = lines[0].split("\t")
        for line in lines[1:]:
            c = dict(zip(hdr, line.split("\t")))
            try:
                if int(c.get("malformed_or_error_frames") or 0) > 0 and \
                        int(c.get("packets") or 0) <= MAX_FLAGGED_PACKETS:
                    flagged[c["file"]] = c["malformed_or_error_frames"]
            except ValueError:
                continue
    for p in sorted(corpus.glob("*.pcap*")):
        if NAME_PATTERN.search(p.name):
            cases.append((p, "ok", "corpus: damaged on purpose"))
        elif p.name in flagged:
            cases.append((p, "ok", f"corpus: {flagged[p.name]} malformed/error frames"))
    return cases


def error_line_names(stderr: str, path: Path) -> bool:
    """An error line that names the capture file."""
    for line in stderr.splitlines():
        low = line.lower()
        if ("error" in low or "cannot" in low or "failed" in low) and path.name in line:
            return True
    return False


def check_case(args, bin_dir: Path, case, workroot: Path):
    path, expect, what = case
    work = mpi.make_workdir(workroot, path.stem)
    run = mpi.run_appliance(bin_dir, path, work, config=Path(args.config),
                            groups=("clickstream", "meta", "dns", "fullflow"), text=True,
                            timeout=args.timeout)
    problems = []
    if run.timed_out:
        problems.append(f"did not finish within {args.timeout:.0f} s (hang?)")
    elif run.signalled:
        problems.append(f"killed by signal {-run.returncode}")
    else:
        rc = run.returncode
        if expect == "ok" and rc != 0:
            problems.append(f"exit {rc}, expected 0")
        elif expect == "header" and rc != 1:
            problems.append(f"exit {rc}, expected 1 (unreadable file header)")
        elif expect == "either" and rc not in (0, 1):
            problems.append(f"exit {rc}, expected 0 or 1")
        if rc == 1 and expect in ("header", "either") and not error_line_names(run.stderr, path):
            problems.append("exit 1 without an error line naming the file")
    for l in mpi.sanitizer_lines(run.stderr):
        problems.append("sanitizer: " + l.strip())
        break
    for l in run.stderr.splitlines():
        # the appliance stops its exporters with SIGTERM after a failed
        # capture; an exporter that had not installed its handler yet dies
        # of it and is logged "killed by signal 15": that is not a crash
        m = re.search(r"killed by signal (\d+)", l)
        if (m and m.group(1) != str(int(signal.SIGTERM))) or "Segmentation fault" in l \
                or "terminate called" in l:
            problems.append(l.strip())
            break
    decoded = 0
    if not run.timed_out and run.returncode == 0:
        for group, f in run.files.items():
            if f.exists():
                recs, err = mpi.decode_ipfix(bin_dir, f, timeout=args.timeout)
                decoded += len(recs)
                if err:
                    problems.append(err)
    if problems and not args.keep:
        note = f"(kept in {work})"
    else:
        note = ""
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return path, expect, what, run, decoded, problems, note


def main(argv=None) -> int:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--corpus", default=os.environ.get("METAPROBE_CORPUS"))
    ap.add_argument("--config", default=str(here / "configs" / "robustness.conf"))
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per run (hang detection)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--work-dir")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--only", nargs="*", help="only inputs whose name contains one of these")
    args = ap.parse_args(argv)
    corpus = mpi.corpus_or_skip(args.corpus)
    bin_dir = Path(args.bin_dir)
    for b in ("metaprobe", "metaprobe-capture", "metaprobe-exporter", "metaprobe-receiver"):
        mpi.find_bin(bin_dir, b)
    workroot = Path(args.work_dir) if args.work_dir else Path(tempfile.gettempdir())
    gen_dir = mpi.make_workdir(workroot, "generated")
    cases = corpus_inputs(corpus) + generated_inputs(corpus, gen_dir)
    if args.only:
        cases = [c for c in cases if any(o in c[0].name for o in args.only)]
    failed = 0
    print(f"{'input':44s} {'expect':6s} {'exit':>5s} {'secs':>6s} {'records':>8s}  result")
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for path, expect, what, run, decoded, problems, note in pool.map(
                lambda c: check_case(args, bin_dir, c, workroot), cases):
            rc = "hang" if run.timed_out else str(run.returncode)
            print(f"{path.name:44s} {expect:6s} {rc:>5s} {run.seconds:6.1f} {decoded:8d}  "
                  f"{'ok' if not problems else 'FAIL'}  ({what})")
            if problems:
                failed += 1
                for p in problems:
                    print(f"    !! {p}")
                print("    stderr tail:\n      " + "\n      ".join(run.tail(12).splitlines()))
                if note:
                    print("    " + note)
    if not failed:
        shutil.rmtree(gen_dir, ignore_errors=True)
    print(f"\nrobustness: {len(cases)} inputs, {failed} failed -> {'PASS' if not failed else 'FAIL'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
