#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Raw metadata end to end: the appliance on SIP and FTP captures of the
corpus with `raw_meta_protocols` set, its meta IPFIX file decoded with
metaprobe-receiver, the `raw` records checked against tshark.

For each case, tshark lists the packets of the selected protocol's flows
(display filter on the protocol's port, as metaprobe detects these flows by
port; an IP-reassembled datagram is one frame with the port, like one raw
record) with their addresses, ports, IP id / payload length, TCP flags and
sequence. The flow's client (DIR_DATA 0) is the sender of its TCP SYN, the
receiver of a first-seen SYN/ACK, or else the sender of its first packet.
Checked:
  * the raw records are exactly those packets (multiset of source,
    destination, ports, DIR_DATA, TCP flags and sequence, IP id or IPv6
    payload length): count included;
  * META_PROTO, VDPI_PROTO and PROTOCOL of every record;
  * RAW_DATA starts with the packet's IP header (version, addresses, IP id
    agree with the record) and holds min(IP length, raw_meta_max_bytes)
    bytes; FLW_DIR equals DIR_DATA (no subscriber map: the client is the
    subscriber);
  * a run selecting another protocol exports no raw record.

Usage: raw_meta.py --bin-dir BUILD/bin [--corpus DIR] [--timeout S] [--work-dir DIR]
Exit 0 pass, 1 fail, 77 corpus missing.
"""

import argparse
import collections
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp_integration as mpi  # noqa: E402

# capture, raw_meta_protocols, tshark filter, META_PROTO, VDPI_PROTO, raw_meta_max_bytes
CASES = [
    ("sip-calls-udp.pcap", "sip", "udp.port == 5060 || tcp.port == 5060", 3, 5, 1024),
    ("ftp-session-ndpi.pcap", "4,smtp", "tcp.port == 21", 4, 6, 1024),
    ("ftp-failed-login-ipv6.pcap", "FTP", "tcp.port == 21", 4, 6, 64),
]
# capture, raw_meta_protocols that select none of its flows
NONE_CASES = [("sip-calls-udp.pcap", "ftp,pop3")]

TSHARK_FIELDS = ["ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "ip.id", "ip.len", "ipv6.plen",
                 "tcp.srcport", "udp.srcport", "tcp.dstport", "udp.dstport", "tcp.flags",
                 "tcp.seq_raw"]


def first(v: str) -> str:
    return v.split(",")[0] if v else ""


def tshark_packets(capture: Path, display_filter: str):
    """Packets of the selected flows, in capture order, as dicts."""
    argv = ["tshark", "-r", str(capture), "-Y", display_filter, "-T", "fields",
            "-E", "separator=\t", "-E", "occurrence=f"]
    for f in TSHARK_FIELDS:
        argv += ["-e", f]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    packets = []
    for line in out.splitlines():
        v = dict(zip(TSHARK_FIELDS, line.split("\t")))
        v6 = bool(v.get("ipv6.src"))
        tcp = bool(v.get("tcp.srcport"))
        p = {
            "src": v["ipv6.src"] if v6 else v["ip.src"],
            "dst": v["ipv6.dst"] if v6 else v["ip.dst"],
            "sport": int(first(v["tcp.srcport"] if tcp else v["udp.srcport"])),
            "dport": int(first(v["tcp.dstport"] if tcp else v["udp.dstport"])),
            "tcp": tcp,
            "flags": int(v["tcp.flags"], 16) if tcp else 0,
            "seq": int(v["tcp.seq_raw"]) if tcp else 0,
            "v6": v6,
            # what identifies the packet inside RAW_DATA
            "ipid": int(first(v["ip.id"]), 16) if not v6 else None,
            "iplen": int(first(v["ipv6.plen"])) + 40 if v6 else int(first(v["ip.len"])),
        }
        packets.append(p)
    # DIR_DATA from the flow's client
    clients = {}
    for p in packets:
        key = (frozenset([(p["src"], p["sport"]), (p["dst"], p["dport"])]), p["tcp"])
        if key not in clients:
            synack = p["tcp"] and (p["flags"] & 0x12) == 0x12
            clients[key] = (p["dst"], p["dport"]) if synack else (p["src"], p["sport"])
        p["dir"] = 0 if clients[key] == (p["src"], p["sport"]) else 1
    return packets


def expected_key(p):
    return (p["src"], p["dst"], p["sport"], p["dport"], p["dir"], p["flags"], p["seq"],
            p["ipid"] if not p["v6"] else p["iplen"] - 40)


def parse_raw_data(hexdata: str):
    """(version, source, destination, id-or-payload-length, ip length) from
    the start of an IP packet."""
    import ipaddress
    b = bytes.fromhex(hexdata)
    if len(b) < 20:
        return None
    version = b[0] >> 4
    if version == 4:
        return (4, str(ipaddress.IPv4Address(b[12:16])), str(ipaddress.IPv4Address(b[16:20])),
                int.from_bytes(b[4:6], "big"), int.from_bytes(b[2:4], "big"))
    if version == 6 and len(b) >= 40:
        plen = int.from_bytes(b[4:6], "big")
        return (6, str(ipaddress.IPv6Address(b[8:24])), str(ipaddress.IPv6Address(b[24:40])),
                plen, plen + 40)
    return None


def check_case(args, corpus: Path, case, errors):
    capture, protos, dfilter, meta_proto, vdpi, max_bytes = case
    tag = f"{capture} [{protos}]"
    want = tshark_packets(corpus / capture, dfilter)
    wd = mpi.make_workdir(args.work_dir, "raw-" + capture)
    res = mpi.run_appliance(args.bin_dir, corpus / capture, wd, groups=("meta",),
                            extra_sets=[f"raw_meta_protocols={protos}",
                                        f"raw_meta_max_bytes={max_bytes}",
                                        "raw_meta_max_packets=0",
                                        # one flow per tuple, as the client
                                        # computation above assumes
                                        "flow_inactive_timeout=86400",
                                        "flow_active_timeout=86400"],
                            timeout=args.timeout)
    if res.returncode != 0:
        errors.append(f"{tag}: metaprobe exited {res.returncode}: {res.tail()}")
        return
    records, err = mpi.decode_ipfix(args.bin_dir, res.files["meta"])
    if err:
        errors.append(f"{tag}: {err}")
    raws = [r for r in records if r.get("template") == "raw"]
    got = collections.Counter()
    bad = []
    for r in raws:
        ip = parse_raw_data(r.get("RAW_DATA", ""))
        if ip is None:
            bad.append(f"RAW_DATA does not start with an IP header: {r.get('RAW_DATA', '')[:40]}")
            continue
        version, src, dst, ident, iplen = ip
        if (src, dst) != (r["IP_SOURCE"], r["IP_DESTINATION"]):
            bad.append(f"RAW_DATA addresses {src} > {dst} differ from the record's "
                       f"{r['IP_SOURCE']} > {r['IP_DESTINATION']}")
        if r["family"] != f"ipv{version}":
            bad.append(f"family {r['family']} but RAW_DATA is IPv{version}")
        if len(r["RAW_DATA"]) // 2 != min(iplen, max_bytes):
            bad.append(f"RAW_DATA holds {len(r['RAW_DATA']) // 2} bytes, expected "
                       f"min({iplen}, {max_bytes})")
        if r["META_PROTO"] != meta_proto or r["VDPI_PROTO"] != vdpi:
            bad.append(f"META_PROTO {r['META_PROTO']} VDPI_PROTO {r['VDPI_PROTO']}, expected "
                       f"{meta_proto} {vdpi}")
        if r["FLW_DIR"] != r["DIR_DATA"]:
            bad.append(f"FLW_DIR {r['FLW_DIR']} differs from DIR_DATA {r['DIR_DATA']} "
                       "without a subscriber map")
        if r["PROTOCOL"] not in (6, 17):
            bad.append(f"PROTOCOL {r['PROTOCOL']}")
        got[(r["IP_SOURCE"], r["IP_DESTINATION"], r["SOURCE_PORT"], r["DESTINATION_PORT"],
             r["DIR_DATA"], r["TCP_FLAGS"], r["TCP_SEQUENCE"], ident)] += 1
    exp = collections.Counter(expected_key(p) for p in want)
    print(f"{tag}: tshark {len(want)} packets, metaprobe {len(raws)} raw records")
    if not want:
        errors.append(f"{tag}: tshark found no packet for '{dfilter}' (corpus changed?)")
    for b in sorted(set(bad))[:10]:
        errors.append(f"{tag}: {b}")
    if got != exp:
        missing = exp - got
        extra = got - exp
        errors.append(f"{tag}: raw records differ from tshark: {sum(missing.values())} missing "
                      f"(e.g. {list(missing)[:2]}), {sum(extra.values())} unexpected "
                      f"(e.g. {list(extra)[:2]})")


def check_none(args, corpus: Path, case, errors):
    capture, protos = case
    tag = f"{capture} [{protos}]"
    wd = mpi.make_workdir(args.work_dir, "raw-none-" + capture)
    res = mpi.run_appliance(args.bin_dir, corpus / capture, wd, groups=("meta",),
                            extra_sets=[f"raw_meta_protocols={protos}"], timeout=args.timeout)
    if res.returncode != 0:
        errors.append(f"{tag}: metaprobe exited {res.returncode}: {res.tail()}")
        return
    records, err = mpi.decode_ipfix(args.bin_dir, res.files["meta"])
    if err:
        errors.append(f"{tag}: {err}")
    raws = [r for r in records if r.get("template") == "raw"]
    others = [r for r in records if r.get("template") != "raw"]
    print(f"{tag}: {len(raws)} raw records, {len(others)} other meta records")
    if raws:
        errors.append(f"{tag}: {len(raws)} raw records for protocols the capture does not carry")
    if not others:
        errors.append(f"{tag}: no other meta record either (was the run empty?)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin-dir", required=True, type=Path)
    ap.add_argument("--corpus")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--work-dir", type=Path)
    args = ap.parse_args()
    args.bin_dir = args.bin_dir.resolve()
    corpus = mpi.corpus_or_skip(args.corpus)
    errors = []
    for case in CASES:
        check_case(args, corpus, case, errors)
    for case in NONE_CASES:
        check_none(args, corpus, case, errors)
    for e in errors:
        print("FAIL: " + e)
    print("raw_meta: " + ("FAIL" if errors else "PASS"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
