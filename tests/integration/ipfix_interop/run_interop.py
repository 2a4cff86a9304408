#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""IPFIX interop: metaprobe's encoding read by independent decoders.

1. ipfix_write_samples writes an RFC 5655 file with records of every
   template kind and family (spec/templates.tsv), in UDP-sized messages.
2. libfixbuf's `ipfixDump --in FILE --element-file config/ipfix/...`:
   exits 0, nothing on stderr, record counts match (plus the exporter
   statistics options record the file ends with, shown with its figures),
   every metaprobe (PEN 43823) element is shown by its name, not as a
   number.
3. The same messages as UDP/4739 packets in a pcap, read by
   `tshark -r X -d udp.port==4739,cflow -V`: no malformed packets or expert
   errors, one flow per record, every template id decoded.
4. metaprobe-receiver --listen file:FILE --format json: one JSON object
   per record with the template field names of the spec, in order.

Exit 0 pass, 1 fail, 77 skip (ipfixDump or tshark missing).
"""

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys

PEN = 43823


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def read_spec(path):
    templates = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            c = line.rstrip("\n").split("\t")
            templates.setdefault((c[0], c[1]), []).append(
                dict(id=int(c[3]), pen=int(c[4]), length=int(c[5]), name=c[6]))
    return templates


def split_messages(data):
    msgs, off = [], 0
    while off + 16 <= len(data):
        version, length = struct.unpack(">HH", data[off:off + 4])
        if version != 10 or length < 16 or off + length > len(data):
            fail("bad IPFIX framing at offset %d" % off)
        msgs.append(data[off:off + length])
        off += length
    if off != len(data):
        fail("trailing octets in the IPFIX file")
    return msgs


def ip_checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(">%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s >> 16) + (s & 0xFFFF)
    return (~s) & 0xFFFF


def write_pcap(msgs, path):
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, m in enumerate(msgs):
            udp = struct.pack(">HHHH", 40000, 4739, 8 + len(m), 0) + m
            ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0,
                             bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2]))
            ip = ip[:10] + struct.pack(">H", ip_checksum(ip)) + ip[12:]
            frame = bytes.fromhex("001122334455" "66778899aabb" "0800") + ip + udp
            out.write(struct.pack("<IIII", 1700000000 + i, 0, len(frame), len(frame)) + frame)


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--writer", required=True)
    ap.add_argument("--receiver", required=True)
    ap.add_argument("--element-file", required=True)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--per-template", type=int, default=3)
    a = ap.parse_args()

    ipfixdump = shutil.which("ipfixDump")
    tshark = shutil.which("tshark")
    if not ipfixdump or not tshark:
        print("SKIP: ipfixDump (libfixbuf-tools) or tshark not installed")
        return 77

    spec = read_spec(a.spec)
    n_templates = len(spec)
    expected = n_templates * a.per_template
    # The file sink closes the file with one exporter statistics record
    # (options template 1100, RFC 7011 4.3): one more template and one more
    # data record for the independent decoders.
    stats = 1
    os.makedirs(a.workdir, exist_ok=True)
    ipfix_file = os.path.join(a.workdir, "samples.ipfix")
    pcap_file = os.path.join(a.workdir, "samples.pcap")

    rc, out, err = run([a.writer, ipfix_file, "--mtu", "1400", "--per-template", str(a.per_template)])
    if rc != 0 or out.strip() != str(expected):
        fail("writer: rc=%d out=%r err=%r" % (rc, out, err))
    msgs = split_messages(open(ipfix_file, "rb").read())
    if any(len(m) > 1400 for m in msgs):
        fail("a message exceeds the 1400-octet MTU")

    # --- libfixbuf ---
    rc, out, err = run([ipfixdump, "--in", ipfix_file, "--element-file", a.element_file])
    if rc != 0 or err.strip():
        fail("ipfixDump: rc=%d stderr=%s" % (rc, err.strip()))
    m = re.search(r"File Stats: (\d+) Messages, (\d+) Data Records, (\d+) Template Records", out)
    if not m:
        fail("ipfixDump: no file statistics line")
    if (int(m.group(1)) != len(msgs) or int(m.group(2)) != expected + stats
            or int(m.group(3)) != n_templates + stats):
        fail("ipfixDump counted %s messages, %s data records, %s templates; expected %d, %d, %d"
             % (m.group(1), m.group(2), m.group(3), len(msgs), expected + stats, n_templates + stats))
    if not re.search(r"exportedFlowRecordTotalCount : %d$" % expected, out, re.M):
        fail("ipfixDump: no exporter statistics record counting %d records" % expected)
    shown = set()
    for line in out.splitlines():
        dm = re.match(r"\s*\((\d+)/(\d+)\)\s+(\S+)\s*:", line)
        if dm:
            pen, eid, name = int(dm.group(1)), int(dm.group(2)), dm.group(3)
            if pen == PEN and re.fullmatch(r"\d+", name) or name.startswith("ent"):
                fail("ipfixDump shows %d/%d without a name" % (pen, eid))
            shown.add((pen, eid, name))
    want = {(f["pen"], f["id"]) for fields in spec.values() for f in fields if f["pen"] == PEN}
    have = {(p, i) for p, i, _ in shown}
    if want - have:
        fail("ipfixDump did not show elements %s" % sorted(want - have))
    for p, i, name in shown:
        if p == PEN and not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            fail("element %d/%d shown as %r" % (p, i, name))
    if not any(name == "HOSTNAME" for _, _, name in shown):
        fail("HOSTNAME not shown by name")

    # --- tshark ---
    write_pcap(msgs, pcap_file)
    rc, out, err = run([tshark, "-r", pcap_file, "-d", "udp.port==4739,cflow", "-V"])
    if rc != 0:
        fail("tshark: rc=%d stderr=%s" % (rc, err.strip()))
    bad = [l for l in out.splitlines()
           if re.search(r"Malformed|Expert Info \((Error|Warning)|Dissector bug|Unknown Template|"
                        r"\[Data Template: .*not found", l)]
    if bad:
        fail("tshark reports problems:\n  " + "\n  ".join(bad[:10]))
    flows = len(re.findall(r"^\s+Flow \d+$", out, re.M))
    if flows != expected + stats:
        fail("tshark shows %d flows, expected %d" % (flows, expected + stats))
    ids = set(int(x) for x in re.findall(r"FlowSet Id: \(Data\) \((\d+)\)", out))
    if len(ids) != n_templates + stats or 1100 not in ids:
        fail("tshark decoded data sets of %d templates, expected %d (with 1100)" % (len(ids), n_templates + stats))

    # --- metaprobe-receiver ---
    rc, out, err = run([a.receiver, "--listen", "file:" + ipfix_file, "--format", "json"])
    if rc != 0:
        fail("metaprobe-receiver: rc=%d stderr=%s" % (rc, err.strip()))
    lines = out.splitlines()
    if len(lines) != expected:
        fail("metaprobe-receiver printed %d lines, expected %d" % (len(lines), expected))
    for line in lines:
        obj = json.loads(line, object_pairs_hook=lambda kv: kv)
        keys = [k for k, _ in obj]
        d = dict(obj)
        fields = spec.get((d.get("template"), d.get("family")))
        if fields is None:
            fail("receiver: unknown template in %s" % line[:120])
        if keys != ["template", "family"] + [f["name"] for f in fields]:
            fail("receiver keys %s differ from the spec" % keys)
    if "0 decode error(s)" not in err:
        fail("metaprobe-receiver reported decode errors: %s" % err.strip())

    print("PASS: %d messages, %d records: ipfixDump, tshark and metaprobe-receiver agree"
          % (len(msgs), expected))
    return 0


if __name__ == "__main__":
    sys.exit(main())
