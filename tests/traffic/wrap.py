#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Rewraps plain Ethernet captures into the encapsulations the kernel of
the test machine cannot build, one function per encapsulation.

Run with Debian's interpreter (/usr/bin/python3, python3-scapy):

  wrap.py --out DIR [--only NAME...] IN.pcap...

The input captures are merged in time order; every output is
DIR/wrap-<name>.pcap, plus DIR/wrap-none.pcap (the merged input as is) and
DIR/manifest.json: per output the decapsulation layers it holds and how
many packets each layer wraps (`layers`: {"gre": N}; what the capture's
decap.<kind> counters must show), how many outer datagrams went out as
IPv4 fragments (`fragmented`: those open after reassembly, counted in
classifier.<w>.reassembled_tunnels), how many input frames are not IP
(`non_ip_frames`: ARP, carried only by encapsulations with inner
Ethernet), the inner packets it carries (`family`:
all, ipv4 or ipv6: an IPv4 outer header carries only IPv6 in 6in4, ...),
extra appliance settings (`sets`), and whether records are expected at
all (`records`: false for a nesting deeper than the decoder's bound).

Outer addresses are 10.201.9.0/24 and fd00:201:9::/64, MACs 02:00:00:00:09:xx;
nothing is ever sent, the packets only go into files.
"""

import argparse
import json
import struct
import sys
from pathlib import Path

from scapy.all import Ether, IP, IPv6, UDP, GRE, Raw, Dot1Q, Dot1AD, PcapReader, PcapWriter, fragment
from scapy.contrib.mpls import MPLS
from scapy.layers.l2 import CookedLinux, CookedLinuxV2

MAC_A, MAC_B = "02:00:00:00:09:01", "02:00:00:00:09:02"
O4 = ("10.201.9.1", "10.201.9.2")
O6 = ("fd00:201:9::1", "fd00:201:9::2")

ETH_IP4, ETH_IP6 = 0x0800, 0x86DD
DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2 = 1, 113, 276


def outer4(proto=None, **kw):
    ip = IP(src=O4[0], dst=O4[1], id=kw.pop("ident", 1), **kw)
    if proto is not None:
        ip.proto = proto
    return Ether(src=MAC_A, dst=MAC_B) / ip


def outer6(nh=None):
    ip = IPv6(src=O6[0], dst=O6[1])
    if nh is not None:
        ip.nh = nh
    return Ether(src=MAC_A, dst=MAC_B) / ip


def l3(frame):
    """(ethertype, bytes of the IP packet) of an Ethernet frame, or None
    for anything that is not IPv4/IPv6 (ARP, ...)."""
    if IP in frame:
        return ETH_IP4, bytes(frame[IP])
    if IPv6 in frame:
        return ETH_IP6, bytes(frame[IPv6])
    return None


class out:
    """The packets of one output and what they hold."""

    def __init__(self, name, family="all", sets=(), records=True, note=""):
        self.name, self.family, self.sets, self.records, self.note = name, family, list(sets), records, note
        self.pkts = []
        self.layers = {}
        self.fragmented = 0   # outer datagrams sent as IPv4 fragments
        self.linktype = DLT_EN10MB

    def add(self, pkt, t, *kinds):
        pkt.time = t
        self.pkts.append(pkt)
        for k in kinds:
            self.layers[k] = self.layers.get(k, 0) + 1


# Each function takes the merged input frames and returns one `out`.
# ------------------------------------------------------------------ GRE

def gre_plain(frames):
    o = out("gre", note="GRE (RFC 2784) carrying IPv4 and IPv6")
    for f in frames:
        x = l3(f)
        if x:
            o.add(outer4(47) / GRE(proto=x[0]) / Raw(x[1]), f.time, "gre")
    return o


def gre_key(frames):
    o = out("gre-key", note="GRE with key (RFC 2890)")
    for f in frames:
        x = l3(f)
        if x:
            o.add(outer4(47) / GRE(key_present=1, key=0x00C0FFEE, proto=x[0]) / Raw(x[1]), f.time, "gre")
    return o


def gre_csum_seq(frames):
    o = out("gre-csum-seq", note="GRE with checksum, key and sequence number")
    for i, f in enumerate(frames):
        x = l3(f)
        if x:
            o.add(outer4(47) / GRE(chksum_present=1, key_present=1, seqnum_present=1, key=7,
                                   sequence_number=i, proto=x[0]) / Raw(x[1]), f.time, "gre")
    return o


def gre_ipv6_outer(frames):
    o = out("gre-ipv6", note="GRE over an IPv6 outer header")
    for f in frames:
        x = l3(f)
        if x:
            o.add(outer6(47) / GRE(proto=x[0]) / Raw(x[1]), f.time, "gre")
    return o


def gretap(frames):
    o = out("gretap", note="GRE Transparent Ethernet Bridging (0x6558), every frame")
    for f in frames:
        o.add(outer4(47) / GRE(proto=0x6558) / Raw(bytes(f)), f.time, "gre")
    return o


def nvgre(frames):
    o = out("nvgre", note="NVGRE: key = VSID 0x1234 << 8 | flow id, inner Ethernet")
    for f in frames:
        o.add(outer4(47) / GRE(key_present=1, key=(0x1234 << 8) | 0x5A, proto=0x6558) / Raw(bytes(f)),
              f.time, "gre")
    return o


def gre_mpls(frames):
    o = out("gre-mpls", note="GRE carrying MPLS (0x8847, two labels) then IP")
    for f in frames:
        x = l3(f)
        if x:
            o.add(outer4(47) / GRE(proto=0x8847) / MPLS(label=100, s=0, ttl=64) / MPLS(label=200, s=1, ttl=64)
                  / Raw(x[1]), f.time, "gre")
    return o


def gretap_qinq(frames):
    o = out("gretap-qinq", note="GRE TEB with QinQ (802.1ad 200 / 802.1Q 100) inside")
    for f in frames:
        inner = Ether(src=f.src, dst=f.dst) / Dot1AD(vlan=200) / Dot1Q(vlan=100, type=f.type) / f.payload
        o.add(outer4(47) / GRE(proto=0x6558) / Raw(bytes(inner)), f.time, "gre")
    return o


# ------------------------------------------------------------------ ERSPAN

def erspan2_hdr(seq_session=0x55, vlan=10, index=0):
    # ver 1 (type II) | VLAN (12) ; COS 3 | En 2 | T 1 | session 10 ; reserved 12 | index 20
    return struct.pack("!HHI", (1 << 12) | vlan, (0 << 13) | (3 << 11) | seq_session, index)


def erspan3_hdr(session=0x66, vlan=20, ts=0, platform=False):
    # ver 2 | VLAN ; COS | BSO | T | session ; timestamp ; SGT 16 | P 1 | FT 5 | HW 6 | D 1 | Gra 2 | O 1
    w2 = (0 << 16) | (0 << 15) | (0 << 10) | (1 << 4) | (0 << 3) | (0b11 << 1) | (1 if platform else 0)
    h = struct.pack("!HHII", (2 << 12) | vlan, session, ts & 0xFFFFFFFF, w2)
    if platform:
        # platform specific sub-header: Platf ID 3 (6 bits) | port/upper timestamp
        h += struct.pack("!II", (3 << 26) | 0x1234, ts >> 32 & 0xFFFFFFFF)
    return h


def erspan1(frames):
    o = out("erspan1", note="ERSPAN type I: GRE 0x88BE without sequence number and ERSPAN header")
    for f in frames:
        o.add(outer4(47) / GRE(proto=0x88BE) / Raw(bytes(f)), f.time, "erspan")
    return o


def erspan2(frames):
    o = out("erspan2", note="ERSPAN type II (GRE sequence, 0x88BE, session 0x55, VLAN 10)")
    for i, f in enumerate(frames):
        o.add(outer4(47) / GRE(seqnum_present=1, sequence_number=i, proto=0x88BE) / Raw(erspan2_hdr(index=i) + bytes(f)),
              f.time, "erspan")
    return o


def _erspan3(name, frames, platform, v6):
    o = out(name, note=f"ERSPAN type III (0x22EB){' with platform sub-header' if platform else ''}"
                       f" over {'IPv6' if v6 else 'IPv4'}")
    for i, f in enumerate(frames):
        h = erspan3_hdr(ts=int(f.time * 1e6), platform=platform)
        base = outer6(47) if v6 else outer4(47)
        o.add(base / GRE(seqnum_present=1, sequence_number=i, proto=0x22EB) / Raw(h + bytes(f)), f.time, "erspan")
    return o


def erspan3(frames):
    return _erspan3("erspan3", frames, False, False)


def erspan3_platform(frames):
    return _erspan3("erspan3-platform", frames, True, False)


def erspan3_ipv6(frames):
    return _erspan3("erspan3-ipv6", frames, False, True)


def erspan3_platform_ipv6(frames):
    return _erspan3("erspan3-platform-ipv6", frames, True, True)


# ------------------------------------------------------------------ UDP tunnels

def vxlan_hdr(vni, flags=0x08, next_proto=0):
    return struct.pack("!B2xB", flags, next_proto) + struct.pack("!I", vni << 8)


def vxlan(frames):
    o = out("vxlan", note="VXLAN (UDP 4789, VNI 100), 802.1Q 300 inside")
    for f in frames:
        inner = Ether(src=f.src, dst=f.dst) / Dot1Q(vlan=300, type=f.type) / f.payload
        o.add(outer4(17) / UDP(sport=49152, dport=4789) / Raw(vxlan_hdr(100) + bytes(inner)), f.time, "vxlan")
    return o


def vxlan_port(frames):
    o = out("vxlan-port8472", sets=["vxlan_ports=8472"], note="VXLAN on UDP 8472 (Linux's old default), vxlan_ports=8472")
    for f in frames:
        o.add(outer4(17) / UDP(sport=49153, dport=8472) / Raw(vxlan_hdr(101) + bytes(f)), f.time, "vxlan")
    return o


def vxlan_mpls(frames):
    o = out("vxlan-mpls", note="VXLAN with inner Ethernet carrying MPLS then IP")
    for f in frames:
        x = l3(f)
        if x:
            inner = Ether(src=f.src, dst=f.dst, type=0x8847) / MPLS(label=16, s=1, ttl=63) / Raw(x[1])
            o.add(outer4(17) / UDP(sport=49154, dport=4789) / Raw(vxlan_hdr(102) + bytes(inner)), f.time, "vxlan")
    return o


def vxlan_gpe(frames):
    o = out("vxlan-gpe", note="VXLAN-GPE (UDP 4790, next protocol Ethernet)")
    for f in frames:
        o.add(outer4(17) / UDP(sport=49155, dport=4790) / Raw(vxlan_hdr(103, flags=0x0C, next_proto=3) + bytes(f)),
              f.time, "vxlan_gpe")
    return o


def geneve(frames):
    o = out("geneve", note="Geneve (UDP 6081, VNI 104) with two TLV options, inner Ethernet")
    opts = struct.pack("!HBB", 0x0102, 0x01, 1) + b"\xAA\xBB\xCC\xDD"          # class, type, len=1 word
    opts += struct.pack("!HBB", 0xFFFF, 0x80, 2) + b"\x01\x02\x03\x04\x05\x06\x07\x08"
    hdr = struct.pack("!BBH", len(opts) // 4, 0, 0x6558) + struct.pack("!I", 104 << 8)
    for f in frames:
        o.add(outer4(17) / UDP(sport=49156, dport=6081) / Raw(hdr + opts + bytes(f)), f.time, "geneve")
    return o


def gtpu_hdr(payload_len, teid, seq=None, ext=False, mtype=0xFF):
    flags = 0x30  # version 1, PT 1
    opt = b""
    if seq is not None or ext:
        flags |= (0x02 if seq is not None else 0) | (0x04 if ext else 0)
        opt = struct.pack("!HBB", seq or 0, 0, 0x85 if ext else 0)
        if ext:
            # PDU session container (len 1 word): UL PDU session info, QFI 9, next type 0
            opt += struct.pack("!BBBB", 1, 0x10, 9, 0)
    return struct.pack("!BBHI", flags, mtype, len(opt) + payload_len, teid) + opt


def _gtpu(name, frames, seq, ext, echo):
    o = out(name, note="GTP-U v1 (UDP 2152, TEID 0x1000)" + (" with sequence numbers" if seq else "")
            + (" and PDU session container extension" if ext else "") + (", echo requests mixed in" if echo else ""))
    for i, f in enumerate(frames):
        x = l3(f)
        if not x:
            continue
        if echo and i % 10 == 0:
            e = gtpu_hdr(0, 0, seq=i & 0xFFFF, mtype=1)   # echo request, no IE
            o.add(outer4(17) / UDP(sport=2152, dport=2152) / Raw(e), f.time, "gtpu_control")
        h = gtpu_hdr(len(x[1]), 0x1000, seq=(i & 0xFFFF) if seq else None, ext=ext)
        o.add(outer4(17) / UDP(sport=2152, dport=2152) / Raw(h + x[1]), f.time, "gtpu")
    return o


def gtpu(frames):
    return _gtpu("gtpu", frames, False, False, False)


def gtpu_seq(frames):
    return _gtpu("gtpu-seq", frames, True, False, False)


def gtpu_ext_echo(frames):
    return _gtpu("gtpu-ext-echo", frames, True, True, True)


def l2tp(frames):
    o = out("l2tp", note="L2TPv2 data (UDP 1701, tunnel 7, session 9, with length) carrying PPP")
    for f in frames:
        x = l3(f)
        if x:
            ppp = b"\xff\x03" + struct.pack("!H", 0x0021 if x[0] == ETH_IP4 else 0x0057) + x[1]
            hdr = struct.pack("!HHHH", 0x4002, 8 + len(ppp), 7, 9)   # L bit, version 2
            o.add(outer4(17) / UDP(sport=1701, dport=1701) / Raw(hdr + ppp), f.time, "l2tp")
    return o


def teredo(frames):
    o = out("teredo", family="ipv6", note="Teredo: IPv6 in UDP from port 3544")
    for f in frames:
        if IPv6 in f:
            o.add(outer4(17) / UDP(sport=3544, dport=40000) / Raw(bytes(f[IPv6])), f.time, "teredo")
    return o


# ------------------------------------------------------------------ IP in IP

def ipip(frames):
    o = out("ipip", family="ipv4", note="IPv4 in IPv4 (protocol 4)")
    for f in frames:
        if IP in f:
            o.add(outer4(4) / Raw(bytes(f[IP])), f.time, "ip_in_ip")
    return o


def sit(frames):
    o = out("6in4", family="ipv6", note="IPv6 in IPv4 (protocol 41)")
    for f in frames:
        if IPv6 in f:
            o.add(outer4(41) / Raw(bytes(f[IPv6])), f.time, "ip_in_ip")
    return o


def ip_in_ipv6(frames):
    o = out("ip-in-ipv6", note="IPv4 (next header 4) and IPv6 (41) in IPv6")
    for f in frames:
        x = l3(f)
        if x:
            o.add(outer6(4 if x[0] == ETH_IP4 else 41) / Raw(x[1]), f.time, "ip_in_ip")
    return o


# ------------------------------------------------------------------ link types, PPPoE

def pppoe(frames):
    o = out("pppoe", note="PPPoE session (0x8864, session 0x0042) carrying PPP")
    for f in frames:
        x = l3(f)
        if x:
            ppp = struct.pack("!H", 0x0021 if x[0] == ETH_IP4 else 0x0057) + x[1]
            o.add(Ether(src=MAC_A, dst=MAC_B, type=0x8864) / Raw(struct.pack("!BBHH", 0x11, 0, 0x42, len(ppp)) + ppp),
                  f.time)
    return o


def sll(frames):
    o = out("sll", note="Linux cooked capture v1 (link type 113)")
    o.linktype = DLT_LINUX_SLL
    for f in frames:
        o.add(CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, src=bytes.fromhex(f.src.replace(":", "")) + b"\0\0",
                          proto=f.type) / f.payload, f.time)
    return o


def sll2(frames):
    o = out("sll2", note="Linux cooked capture v2 (link type 276)")
    o.linktype = DLT_LINUX_SLL2
    for f in frames:
        o.add(CookedLinuxV2(proto=f.type, ifindex=2, lladdrtype=1, pkttype=0, lladdrlen=6,
                            src=bytes.fromhex(f.src.replace(":", "")) + b"\0\0") / f.payload, f.time)
    return o


# ------------------------------------------------------------------ nesting, fragments

def nested(frames):
    o = out("nested-vlan-gre-vxlan", note="802.1Q 10 / IPv4 / GRE / IPv4 / UDP 4789 / VXLAN / Ethernet")
    for f in frames:
        vx = IP(src="10.201.9.3", dst="10.201.9.4") / UDP(sport=49157, dport=4789) / Raw(vxlan_hdr(105) + bytes(f))
        o.add(Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=10) / IP(src=O4[0], dst=O4[1]) / GRE(proto=ETH_IP4) / Raw(bytes(vx)),
              f.time, "gre", "vxlan")
    return o


def too_deep(frames):
    o = out("too-deep", records=False, note="IPv4 in 9 nested GRE layers: beyond the decoder's bound of 8")
    for f in frames:
        x = l3(f)
        if not x:
            continue
        p = GRE(proto=x[0]) / Raw(x[1])
        for _ in range(8):
            p = GRE(proto=ETH_IP4) / IP(src=O4[0], dst=O4[1]) / p
        o.add(outer4(47) / p, f.time, "depth_exceeded")
    return o


def _fragmented(name, frames, make, kinds, note):
    o = out(name, note=note + ", outer IPv4 fragmented at 400 bytes")
    for i, f in enumerate(frames):
        p = make(f, i)
        if p is None:
            continue
        pieces = fragment(p[IP], fragsize=400) if len(p[IP]) > 420 else [p[IP]]
        o.fragmented += len(pieces) > 1
        for j, frag in enumerate(pieces):
            e = Ether(src=MAC_A, dst=MAC_B) / frag
            e.time = f.time
            o.pkts.append(e)
        for k in kinds:
            o.layers[k] = o.layers.get(k, 0) + 1
    return o


def vxlan_fragmented(frames):
    return _fragmented("vxlan-fragmented", frames,
                       lambda f, i: outer4(17, ident=i & 0xFFFF) / UDP(sport=49158, dport=4789) / Raw(vxlan_hdr(106) + bytes(f)),
                       ("vxlan",), "VXLAN")


def gre_fragmented(frames):
    def make(f, i):
        x = l3(f)
        return outer4(47, ident=i & 0xFFFF) / GRE(proto=x[0]) / Raw(x[1]) if x else None
    return _fragmented("gre-fragmented", frames, make, ("gre",), "GRE")


def gre_inner_fragmented(frames):
    o = out("gre-inner-fragmented", note="GRE carrying IPv4 packets fragmented at 400 bytes (inner fragments)")
    for f in frames:
        x = l3(f)
        if not x:
            continue
        pieces = [bytes(p) for p in fragment(f[IP], fragsize=400)] if x[0] == ETH_IP4 and len(x[1]) > 420 else [x[1]]
        for piece in pieces:
            o.add(outer4(47) / GRE(proto=x[0]) / Raw(piece), f.time, "gre")
    return o


WRAPPERS = [gre_plain, gre_key, gre_csum_seq, gre_ipv6_outer, gretap, nvgre, gre_mpls, gretap_qinq,
            erspan1, erspan2, erspan3, erspan3_platform, erspan3_ipv6, erspan3_platform_ipv6,
            vxlan, vxlan_port, vxlan_mpls, vxlan_gpe, geneve, gtpu, gtpu_seq, gtpu_ext_echo, l2tp, teredo,
            ipip, sit, ip_in_ipv6, pppoe, sll, sll2, nested, too_deep, vxlan_fragmented, gre_fragmented,
            gre_inner_fragmented]


def read_frames(paths):
    frames = []
    for p in paths:
        with PcapReader(str(p)) as r:
            for f in r:
                if Ether in f:
                    frames.append(f)
    frames.sort(key=lambda f: f.time)
    return frames


def write(path: Path, pkts, linktype):
    w = PcapWriter(str(path), linktype=linktype, sync=False)
    for p in pkts:
        w.write(p)
    w.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", nargs="*", help="only these outputs (names as in the manifest)")
    ap.add_argument("inputs", nargs="+")
    a = ap.parse_args(argv)
    d = Path(a.out)
    d.mkdir(parents=True, exist_ok=True)
    frames = read_frames(a.inputs)
    write(d / "wrap-none.pcap", frames, DLT_EN10MB)
    manifest = []
    non_ip = sum(1 for f in frames if l3(f) is None)   # ARP, ...: carried only with inner Ethernet
    for fn in WRAPPERS:
        o = fn(frames)
        if a.only and o.name not in a.only:
            continue
        write(d / f"wrap-{o.name}.pcap", o.pkts, o.linktype)
        manifest.append({"name": o.name, "file": f"wrap-{o.name}.pcap", "layers": o.layers, "family": o.family,
                         "sets": o.sets, "records": o.records, "note": o.note, "packets": len(o.pkts),
                         "fragmented": o.fragmented, "non_ip_frames": non_ip,
                         "function": fn.__name__})
    (d / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
