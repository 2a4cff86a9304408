#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Wraps every Ethernet frame of a classic pcap in a tunnel, for the
decapsulation benchmark scenarios of run_bench.py (Python standard library
only; the traffic tests' richer wrapper is tests/traffic/).

  wrap_pcap.py KIND IN.pcap OUT.pcap
    vxlan   outer Ethernet + IPv4 + UDP (dport 4789) + VXLAN (VNI 4242)
    erspan  outer Ethernet + IPv4 + GRE (S bit, 0x88be) + ERSPAN type II
            (session 7)

Every record grows by the outer headers, captured and on the wire; the
outer IPv4 total length is that of the frame on the wire. Frames whose
wrapped size would exceed 65535 bytes, and captures of another link type,
are refused (exit 2).
"""

import struct
import sys
import zlib

OUTER_MAC = bytes.fromhex("02000000aa0102000000aa02") + b"\x08\x00"
SRC, DST = bytes([198, 51, 100, 1]), bytes([198, 51, 100, 2])


def ipv4_header(total: int, proto: int, ident: int) -> bytes:
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ident & 0xFFFF, 0x4000, 64, proto, 0, SRC, DST)
    s = sum(struct.unpack("!10H", h))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return h[:10] + struct.pack("!H", ~s & 0xFFFF) + h[12:]


def vxlan(frame: bytes, frame_len: int, n: int) -> bytes:
    # the source port is the entropy a VTEP derives from the inner flow
    # (RFC 7348): here a hash of the inner frame's IPv4 address bytes
    udp_len = 8 + 8 + frame_len
    sport = 49152 + (zlib.crc32(frame[26:34]) & 0x3FFF)
    return (OUTER_MAC + ipv4_header(20 + udp_len, 17, n) +
            struct.pack("!HHHH", sport, 4789, udp_len, 0) +
            struct.pack("!BBHI", 0x08, 0, 0, 4242 << 8))


def erspan(frame: bytes, frame_len: int, n: int) -> bytes:
    gre = struct.pack("!HHI", 0x1000, 0x88BE, n & 0xFFFFFFFF)
    ers = struct.pack("!HHI", 0x1000, 7, 0)
    return OUTER_MAC + ipv4_header(20 + len(gre) + len(ers) + frame_len, 47, n) + gre + ers


KINDS = {"vxlan": (vxlan, 14 + 20 + 8 + 8), "erspan": (erspan, 14 + 20 + 8 + 8)}


def main(argv) -> int:
    if len(argv) != 4 or argv[1] not in KINDS:
        print(__doc__, file=sys.stderr)
        return 2
    make, overhead = KINDS[argv[1]]
    with open(argv[2], "rb") as src, open(argv[3], "wb") as dst:
        hdr = src.read(24)
        if len(hdr) < 24:
            print(f"wrap_pcap: {argv[2]}: not a pcap file", file=sys.stderr)
            return 2
        magic = struct.unpack("<I", hdr[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            e = "<"
        elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
            e = ">"
        else:
            print(f"wrap_pcap: {argv[2]}: not a classic pcap file", file=sys.stderr)
            return 2
        linktype = struct.unpack(e + "I", hdr[20:24])[0] & 0x0FFFFFFF
        if linktype != 1:
            print(f"wrap_pcap: {argv[2]}: link type {linktype}, only Ethernet (1) is wrapped",
                  file=sys.stderr)
            return 2
        snap = struct.unpack(e + "I", hdr[16:20])[0]
        dst.write(hdr[:16] + struct.pack(e + "I", min(snap + overhead, 262144)) + hdr[20:])
        n = 0
        while True:
            rh = src.read(16)
            if len(rh) < 16:
                break
            sec, frac, incl, orig = struct.unpack(e + "IIII", rh)
            frame = src.read(incl)
            if len(frame) < incl:
                break
            if orig + overhead > 65535:
                print(f"wrap_pcap: record {n + 1}: {orig} bytes do not fit in a tunnel", file=sys.stderr)
                return 2
            outer = make(frame, orig, n)
            dst.write(struct.pack(e + "IIII", sec, frac, incl + len(outer), orig + len(outer)))
            dst.write(outer)
            dst.write(frame)
            n += 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
