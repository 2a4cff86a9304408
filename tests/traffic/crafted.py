#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Crafted TCP segmentations no real client produces, for the traffic test
(traffic_test.py, scenario `crafted`): one capture, crafted-splits.pcap,
compared with tshark like the tcpdump captures.

Run with Debian's interpreter (/usr/bin/python3, python3-scapy):

  crafted.py --out FILE.pcap [--manifest FILE.json]

writes the capture and the manifest (one entry per case: name, client and
server port, family, first and last frame number). Every case is one complete
TCP connection (SYN, SYN/ACK, ACK; data with correct sequence and
acknowledgement numbers, an ACK from the receiver after each message; FIN,
FIN/ACK, ACK), each with its own client port, timestamps increasing by
1 ms per packet. Addresses: 10.201.7.1 -> 10.201.7.2, fd00:201:7::1 ->
fd00:201:7::2 (nothing is sent, the packets only go into the file).

The TLS records are real: ClientHellos of `openssl s_client -servername
NAME` (OpenSSL 3.0, Debian 12; -tls1_3 or -tls1_2) and the ServerHello
record of `openssl s_server`'s first flight, captured with tcpdump on lo.

Cases (a split "1,2" means segments of 1 and 2 bytes, then the rest in
one; "bytes" one byte per segment; "bytes8" eight 1-byte segments, then
the rest):
  connect-tls-*   CONNECT www.example.test:443 to a proxy on 3128, 200,
                  then a ClientHello split (first segment 1, 2, 3, 5 bytes,
                  byte by byte), the ServerHello whole or split at 1 byte
  tls443-*        the same splits on a plain TCP flow to 443
  tls9443-*       the same on 9443 (neither metaprobe's nor tshark's TLS
                  port: tshark gets `-d tcp.port==9443,tls`)
  connect-http-*  CONNECT www.example.test:80 on 3128, 200, a GET split
                  (whole, "GE"+rest, 1, 3, bytes8), its 200 response
  smtp-*          SMTP on 25: greeting, EHLO, 250, STARTTLS, 220, a
                  ClientHello split at 1 byte or byte by byte, ServerHello;
                  smtp-mail: one plain mail transaction (the smtp truth
                  comparison needs one)

Not here: a CONNECT inside a CONNECT tunnel. tshark 4.0 does not dissect
the TLS inside the inner tunnel, so the comparison could only count
metaprobe's (correct) record against it; unit.handover (nested CONNECT,
every split) and fuzz_handover cover that case.
"""

import argparse
import json
import sys
from pathlib import Path

from scapy.all import Ether, IP, IPv6, TCP, Raw, PcapWriter

MAC_C, MAC_S = "02:00:00:00:07:01", "02:00:00:00:07:02"
A4 = ("10.201.7.1", "10.201.7.2")
A6 = ("fd00:201:7::1", "fd00:201:7::2")
T0 = 1767225600.0   # 2026-01-01 00:00:00 UTC
PROXY_PORT = 3128

CH13_WWW = bytes.fromhex(
    "1603010107010001030303b447b5d4b56fc10e178a370f4a0c8abde653df4a009f0246baf27c1ab86ed5f620f4dffeec"
    "3698c1663f3216fd5776e5818e74075ace8749d92ddd57763c7215fd000813021303130100ff010000b2000000150013"
    "0000107777772e6578616d706c652e74657374000b000403000102000a00160014001d0017001e001900180100010101"
    "0201030104002300000010000e000c02683208687474702f312e310016000000170000000d001e001c04030503060308"
    "0708080809080a080b080408050806040105010601002b0003020304002d00020101003300260024001d002013190d5a"
    "5cb5351abb1dd993dedcc1636ad80733db71c18d0a1aeea55cbb6c6c"
)
SH13 = bytes.fromhex(
    "160303007a020000760303bbefeb6b5b3444034e902b3b9bae1189fda397bb8fcc1d06604008e06dcd607020f4dffeec"
    "3698c1663f3216fd5776e5818e74075ace8749d92ddd57763c7215fd130200002e002b0002030400330024001d0020ca"
    "9f2b2c3768af32e45864a55b95134930003a3b5192cf62b53752a877a99a1b"
)
CH12_WWW = bytes.fromhex(
    "16030100df010000db03035231f4bd158e1648afac518a79f0b809c25bb8645cd6ecba9910759fd6405132000038c02c"
    "c030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c"
    "0035002f00ff0100007a0000001500130000107777772e6578616d706c652e74657374000b000403000102000a000c00"
    "0a001d0017001e00190018002300000010000b000908687474702f312e310016000000170000000d002a002804030503"
    "0603080708080809080a080b080408050806040105010601030303010302040205020602"
)
SH12 = bytes.fromhex(
    "16030300410200003d03038d25697e31454790289a3dfa66a05461452f9fad33123a69444f574e4752440100c02c0000"
    "15ff01000100000b0004030001020023000000170000"
)
CH12_MAIL = bytes.fromhex(
    "16030100d1010000cd030362ba0540bd7409aef4091f8b1251f8e85808b7568e5870c2bdf8b09976f595fa000038c02c"
    "c030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c"
    "0035002f00ff0100006c0000001600140000116d61696c2e6578616d706c652e74657374000b000403000102000a000c"
    "000a001d0017001e00190018002300000016000000170000000d002a0028040305030603080708080809080a080b0804"
    "08050806040105010601030303010302040205020602"
)


class clock:
    def __init__(self):
        self.t = T0

    def next(self) -> float:
        self.t += 0.001
        return self.t


class conn:
    """One TCP connection; every packet goes into `pkts` with its time."""

    def __init__(self, pkts, clk, cport, sport, v6=False):
        self.pkts, self.clk, self.cport, self.sport, self.v6 = pkts, clk, cport, sport, v6
        self.seq = {"c": 1000000 + cport * 7, "s": 5000000 + cport * 11}

    def _send(self, who, flags, data=b""):
        src, dst = (A6 if self.v6 else A4) if who == "c" else tuple(reversed(A6 if self.v6 else A4))
        sp, dp = (self.cport, self.sport) if who == "c" else (self.sport, self.cport)
        other = "s" if who == "c" else "c"
        ip = IPv6(src=src, dst=dst) if self.v6 else IP(src=src, dst=dst, flags="DF")
        tcp = TCP(sport=sp, dport=dp, flags=flags, seq=self.seq[who], window=64240,
                  ack=self.seq[other] if "A" in flags else 0)
        p = Ether(src=MAC_C if who == "c" else MAC_S, dst=MAC_S if who == "c" else MAC_C) / ip / tcp
        if data:
            p = p / Raw(data)
        p.time = self.clk.next()
        self.pkts.append(p)
        self.seq[who] = (self.seq[who] + len(data) + (1 if ("S" in flags or "F" in flags) else 0)) & 0xFFFFFFFF

    def open(self):
        self._send("c", "S")
        self._send("s", "SA")
        self._send("c", "A")
        return self

    def send(self, who, data: bytes, split=()):
        """`data` from `who` ("c" or "s") in segments: the sizes of
        `split` first, then the rest in one; split "bytes": one byte per
        segment. The receiver ACKs after the last segment."""
        sizes = [1] * len(data) if split == "bytes" else list(split)
        pos = 0
        for n in sizes:
            if pos >= len(data):
                break
            self._send(who, "PA", data[pos:pos + n])
            pos += n
        if pos < len(data):
            self._send(who, "PA", data[pos:])
        self._send("s" if who == "c" else "c", "A")

    def close(self):
        self._send("c", "FA")
        self._send("s", "FA")
        self._send("c", "A")


def connect_req(target: str) -> bytes:
    return f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: metaprobe-crafted/1.0\r\n\r\n".encode()


CONNECTED = b"HTTP/1.1 200 Connection established\r\n\r\n"


def get_inside(case: str) -> bytes:
    return (f"GET /inside?{case} HTTP/1.1\r\nHost: www.example.test\r\n"
            f"User-Agent: metaprobe-crafted/1.0\r\n\r\n").encode()


OK_INSIDE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"

SPLITS = {"1": (1,), "2": (2,), "3": (3,), "5": (5,), "bytes": "bytes", "whole": ()}


def cases():
    """(name, client port, server port, IPv6, steps): steps are
    (who, data, split) in order."""
    out = []
    port = 40000

    def add(name, sport, steps, v6=False):
        nonlocal port
        port += 1
        out.append((name, port, sport, v6, steps))

    # A. CONNECT :443, TLS 1.3 ClientHello split
    for s in ("1", "2", "3", "5", "bytes"):
        add(f"connect-tls-ch{s}", PROXY_PORT, [
            ("c", connect_req("www.example.test:443"), ()), ("s", CONNECTED, ()),
            ("c", CH13_WWW, SPLITS[s]), ("s", SH13, (1,) if s in ("1", "bytes") else ())])
    add("connect-tls12-ch1-ipv6", PROXY_PORT, [
        ("c", connect_req("www.example.test:443"), ()), ("s", CONNECTED, ()),
        ("c", CH12_WWW, (1,)), ("s", SH12, (1,))], v6=True)
    # B. the same splits on 443 and on 9443, no CONNECT
    for sport in (443, 9443):
        for s in ("whole", "1", "2", "3", "5", "bytes"):
            add(f"tls{sport}-ch{s}", sport, [("c", CH13_WWW, SPLITS[s]), ("s", SH13, (1,) if s == "1" else ())])
        add(f"tls{sport}-tls12-ch1-ipv6", sport, [("c", CH12_WWW, (1,)), ("s", SH12, (1,))], v6=True)
    # C. CONNECT :80, a GET inside split
    for s, split in (("whole", ()), ("ge", (2,)), ("1", (1,)), ("3", (3,)), ("bytes8", (1,) * 8)):
        add(f"connect-http-{s}", PROXY_PORT, [
            ("c", connect_req("www.example.test:80"), ()), ("s", CONNECTED, ()),
            ("c", get_inside(f"split={s}"), split), ("s", OK_INSIDE, ())])
    add("connect-http-ge-ipv6", PROXY_PORT, [
        ("c", connect_req("www.example.test:80"), ()), ("s", CONNECTED, ()),
        ("c", get_inside("split=ge-ipv6"), (2,)), ("s", OK_INSIDE, ())], v6=True)
    # E. SMTP STARTTLS
    greet = b"220 mail.example.test ESMTP metaprobe-crafted\r\n"
    ehlo = b"EHLO client.example.test\r\n"
    caps = b"250-mail.example.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
    for s in ("1", "bytes"):
        add(f"smtp-starttls-ch{s}", 25, [
            ("s", greet, ()), ("c", ehlo, ()), ("s", caps, ()), ("c", b"STARTTLS\r\n", ()),
            ("s", b"220 2.0.0 Ready to start TLS\r\n", ()), ("c", CH12_MAIL, SPLITS[s]), ("s", SH12, ())])
    add("smtp-mail", 25, [
        ("s", greet, ()), ("c", ehlo, ()), ("s", caps, ()),
        ("c", b"MAIL FROM:<alice@example.test>\r\n", ()), ("s", b"250 2.1.0 Ok\r\n", ()),
        ("c", b"RCPT TO:<bob@example.test>\r\n", ()), ("s", b"250 2.1.5 Ok\r\n", ()),
        ("c", b"DATA\r\n", ()), ("s", b"354 End data with <CR><LF>.<CR><LF>\r\n", ()),
        ("c", b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: crafted\r\n\r\nhello\r\n.\r\n", ()),
        ("s", b"250 2.0.0 Ok: queued\r\n", ()), ("c", b"QUIT\r\n", ()), ("s", b"221 2.0.0 Bye\r\n", ())])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="the capture to write")
    ap.add_argument("--manifest", help="the cases' JSON manifest to write")
    a = ap.parse_args(argv)
    pkts, clk, manifest = [], clock(), []
    for name, cport, sport, v6, steps in cases():
        first = len(pkts) + 1
        c = conn(pkts, clk, cport, sport, v6).open()
        for who, data, split in steps:
            c.send(who, data, split)
        c.close()
        manifest.append({"name": name, "client_port": cport, "server_port": sport,
                         "family": "ipv6" if v6 else "ipv4", "frames": [first, len(pkts)]})
    w = PcapWriter(a.out, linktype=1, sync=False)
    for p in pkts:
        w.write(p)
    w.close()
    if a.manifest:
        Path(a.manifest).write_text(json.dumps(manifest, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
