# SPDX-License-Identifier: Apache-2.0
"""TLS accuracy against tshark (plug-in of truth_compare.py).

tls_ch: <pcap>.tls_ch.tsv, one row per frame with a ClientHello, against our
clickstream records with HOST_TYPE 3 (TLS SNI). Compared: addresses and
ports (client = source), the SNI (tls.handshake.extensions_server_name,
empty when absent), CIPHER_SUITES_LEN (tls.handshake.cipher_suites_length)
and CIPHER_SUITES (the first 16 values of tls.handshake.ciphersuite).

tls_sh: <pcap>.tls_sh.tsv, one row per frame with a ServerHello (a
HelloRetryRequest included), against our ssl_reply records (needs
ssl_parse_reply=1). Compared: addresses (server = source; the ssl_reply
template has no ports), SSL_VERSION (tls.handshake.extensions.supported_version
when present, else tls.handshake.version), CIPHER_SUITE
(tls.handshake.ciphersuite), COMPRESSION_METHOD (tls.handshake.comp_method).

Rules:
- rows over UDP are QUIC (tshark dissects the TLS handshake in QUIC CRYPTO
  frames under the same fields): left out of tls_ch (the QUIC comparison
  owns them, our QUIC records are HOST_TYPE 4); optional in tls_sh, where
  nothing tells a QUIC ssl_reply from a TLS one.
- a frame with several ClientHellos / ServerHellos lists each field once per
  message, joined with '|': one expectation per message (the SNI is a
  wildcard when the counts differ: tshark lists only the names present).
- rows dissected from an IP fragment that was never completed (l2l3 truth)
  are optional, as for HTTP.
"""

from pathlib import Path
from typing import List

CH_KEY = ("cip", "sip", "cport", "sport")
CH_FIELDS = ("cip", "sip", "cport", "sport", "sni", "cs_len", "suites")
SH_KEY = ("src", "dst")
SH_FIELDS = ("src", "dst", "version", "suite", "comp")
MAX_SUITES = 16

tc = None  # truth_compare, set by register()


def ints(v: str) -> List[int]:
    return [tc.norm_int(x) for x in tc.multi(v)]


def ch_truth(path: Path, corpus: Path, pcap: str):
    flags = tc.l2l3_flags(corpus, pcap)
    out = []
    for r in tc.read_tsv(path):
        cip, sip, cport, sport, tcp = tc.frame_addrs(r)
        if not tcp:
            continue
        lengths = ints(r["tls.handshake.cipher_suites_length"])
        suites = ints(r["tls.handshake.ciphersuite"])
        names = tc.multi(r["tls.handshake.extensions_server_name"])
        if not lengths:
            continue  # a ClientHello tshark could not decode as far as the suites
        pos = 0
        for i, n in enumerate(lengths):
            count = (n // 2) if isinstance(n, int) else 0
            mine = suites[pos:pos + count]
            pos += count
            if len(lengths) == 1:
                sni = tc.norm_text(r["tls.handshake.extensions_server_name"])
            elif len(names) == len(lengths):
                sni = tc.norm_text(names[i])
            else:
                sni = tc.ANY
            f = {"cip": cip, "sip": sip, "cport": cport, "sport": sport, "sni": sni,
                 "cs_len": n, "suites": tuple(mine[:MAX_SUITES])}
            e = tc.expect(r["frame.number"], f)
            if "unreassembled" in flags.get(r["frame.number"], ()):
                e.optional = True
                e.note = "dissected from an unreassembled IP fragment"
            out.append(e)
    return out


def _suites_hex(v) -> tuple:
    s = str(v or "")
    try:
        b = bytes.fromhex(s)
    except ValueError:
        return (s,)
    return tuple(int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b) - 1, 2))


def hello_ours(records, host_type: int):
    """Our clickstream records of one HOST_TYPE (3 TLS SNI, 4 QUIC SNI) in
    the ClientHello comparison's fields (truth_quic.py uses it too)."""
    out = []
    for rec in records:
        if rec.get("template") != "clickstream" or tc.norm_int(rec.get("HOST_TYPE")) != host_type:
            continue
        f = {
            "cip": tc.norm_ip(rec.get("IP_SOURCE")),
            "sip": tc.norm_ip(rec.get("IP_DESTINATION")),
            "cport": tc.norm_int(rec.get("PORT_SOURCE")),
            "sport": tc.norm_int(rec.get("PORT_DESTINATION")),
            "sni": tc.norm_text(rec.get("HOSTNAME")),
            "cs_len": tc.norm_int(rec.get("CIPHER_SUITES_LEN")),
            "suites": _suites_hex(rec.get("CIPHER_SUITES")),
        }
        out.append(tc.ours(f, rec))
    return out


def ch_ours(records):
    return hello_ours(records, 3)


def sh_truth(path: Path, corpus: Path, pcap: str):
    flags = tc.l2l3_flags(corpus, pcap)
    out = []
    for r in tc.read_tsv(path):
        src, dst, _sport, _dport, tcp = tc.frame_addrs(r)
        suites = ints(r["tls.handshake.ciphersuite"])
        versions = ints(r["tls.handshake.version"])
        selected = ints(r["tls.handshake.extensions.supported_version"])
        comps = ints(r["tls.handshake.comp_method"])
        for i, suite in enumerate(suites):
            if len(suites) == 1:
                version = selected[0] if selected else (versions[0] if versions else None)
            elif len(selected) == len(suites):
                version = selected[i]
            elif not selected and len(versions) == len(suites):
                version = versions[i]
            else:
                version = tc.ANY
            f = {"src": src, "dst": dst, "version": version, "suite": suite,
                 "comp": comps[i] if i < len(comps) else tc.ANY}
            e = tc.expect(r["frame.number"], f)
            if not tcp:
                e.optional = True
                e.note = "QUIC ServerHello (UDP)"
            if "unreassembled" in flags.get(r["frame.number"], ()):
                e.optional = True
                e.note = "dissected from an unreassembled IP fragment"
            out.append(e)
    return out


def sh_ours(records):
    out = []
    for rec in records:
        if rec.get("template") != "ssl_reply":
            continue
        f = {
            "src": tc.norm_ip(rec.get("IP_SOURCE")),
            "dst": tc.norm_ip(rec.get("IP_DESTINATION")),
            "version": tc.norm_int(rec.get("SSL_VERSION")),
            "suite": tc.norm_int(rec.get("CIPHER_SUITE")),
            "comp": tc.norm_int(rec.get("COMPRESSION_METHOD")),
        }
        out.append(tc.ours(f, rec))
    return out


def register(module):
    global tc
    tc = module
    tc.add_protocol("tls", tc.protocol_spec(suffix=".tls_ch.tsv", group="clickstream",
                                            truth=ch_truth, ours=ch_ours,
                                            key=CH_KEY, fields=CH_FIELDS))
    tc.add_protocol("tls_sh", tc.protocol_spec(suffix=".tls_sh.tsv", group="clickstream",
                                               truth=sh_truth, ours=sh_ours,
                                               key=SH_KEY, fields=SH_FIELDS))
