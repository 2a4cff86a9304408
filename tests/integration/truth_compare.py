#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Compares what metaprobe exports with tshark's dissection of the public
corpus (ground truth in <corpus>/truth/<pcap>.<proto>.tsv).

For every capture with HTTP request and/or DNS truth the appliance runs once
(clickstream and DNS IPFIX files), metaprobe-receiver decodes the files and
the records are matched against the truth rows as multisets. The rules
(what a truth row expects, which rows are optional, how values are
normalised) are documented in docs/testing.md and in the functions below.

Usage:
  truth_compare.py --bin-dir BUILD/bin [--corpus DIR] [--protocol PROTOCOL|MODULE|all]
                   [--files NAME...] [--known-limits FILE] [--jobs N]
                   [--work-dir DIR] [--keep] [--records-dir DIR] [--min 99]

Exit: 0 when the total recall and precision of every compared protocol are
at least --min percent (after known_limits.tsv) and no known limit excuses
more than is unmatched (a stale excuse fails), 1 otherwise or when the
appliance failed on a capture, 77 when the corpus is absent.
"""

import argparse
import ipaddress
import os
import re
import shutil
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp_integration as mpi  # noqa: E402

# Every compared protocol: truth file suffix, export group (sink channel)
# whose IPFIX the records come from, the truth reader, the record reader and
# the match key and fields. HTTP and DNS are defined in this file; other
# protocols plug in from tests/integration/truth_<proto>.py modules, each
# with `register(tc)` that calls tc.add_protocol(...) (see load_plugins).
@dataclass
class protocol_spec:
    suffix: str
    group: str
    truth: object          # (path, corpus, pcap) -> List[expect]
    ours: object           # (records) -> List[ours]
    key: Tuple[str, ...]
    fields: Tuple[str, ...]


SPECS: Dict[str, protocol_spec] = {}
MODULE_OF: Dict[str, str] = {}   # protocol -> the truth_<module>.py that registered it
_registering = ""
PROTOCOLS: Tuple[str, ...] = ()
TRUTH_SUFFIX: Dict[str, str] = {}
GROUP_OF: Dict[str, str] = {}


def add_protocol(name: str, spec: protocol_spec) -> None:
    global PROTOCOLS
    SPECS[name] = spec
    MODULE_OF[name] = _registering or name
    TRUTH_SUFFIX[name] = spec.suffix
    GROUP_OF[name] = spec.group
    if name not in PROTOCOLS:
        PROTOCOLS = PROTOCOLS + (name,)

# Longest string field exported with the default configuration
# (parser_max_field / ipfix_max_string); a longer truth value matches a
# record value cut at this length.
DEFAULT_FIELD_LIMIT = 4096


class _any:
    """Wildcard: the truth does not say (or cannot be trusted) for this field."""

    def __repr__(self):
        return "*"


ANY = _any()


class alts(tuple):
    """Several acceptable values (a header that occurs more than once)."""

    def __repr__(self):
        return " or ".join(repr(v) for v in self)


def occurrences(v: str, joiners) -> object:
    """tshark joins the occurrences of a header that is present several
    times with '|' (the same as a literal '|' in a value). Accepted: the
    value as is, or the occurrences joined the way an HTTP recipient
    combines them (`joiners`), or (when no joiner is given) the first or
    the last occurrence."""
    if "|" not in v:
        return v
    parts = v.split("|")
    cands = [v] + [j.join(parts) for j in joiners]
    if not joiners:
        cands += [parts[0], parts[-1]]
    return alts(dict.fromkeys(cands))


@dataclass
class expect:
    """One record the truth expects."""
    frame: str
    fields: Dict[str, object]
    optional: bool = False
    note: str = ""          # why optional / which rule made it
    prefix_fields: Tuple[str, ...] = ()  # truth value may be a prefix of ours

    def bucket(self, keys):
        return tuple(self.fields[k] for k in keys)


@dataclass
class ours:
    """One exported record, normalised like the truth."""
    fields: Dict[str, object]
    raw: dict


# ---------------------------------------------------------------- helpers

def read_tsv(path: Path):
    """tshark -T fields output: header row, tab separated. Bytes that are
    not UTF-8 are kept as surrogates; nothing is unquoted (quote=n)."""
    data = path.read_bytes().decode("utf-8", "surrogateescape")
    lines = data.split("\n")
    hdr = lines[0].rstrip("\r").split("\t")
    rows = []
    for line in lines[1:]:
        if not line:
            continue
        cols = line.split("\t")
        cols += [""] * (len(hdr) - len(cols))
        rows.append(dict(zip(hdr, cols)))
    return rows


def multi(v: str) -> List[str]:
    """A field that tshark lists once per occurrence, joined with '|'."""
    return v.split("|") if v != "" else []


def norm_ip(v) -> str:
    if v is None or v == "":
        return ""
    try:
        return ipaddress.ip_address(str(v).strip()).compressed
    except ValueError:
        return str(v)


def norm_int(v):
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    s = str(v).strip()
    try:
        return int(s, 16) if s.lower().startswith("0x") else int(s)
    except ValueError:
        return s


def norm_text(v) -> str:
    """Printable ASCII only, trimmed: tshark prints invalid UTF-8 as U+FFFD
    and keeps control bytes, an IPFIX string carries the raw bytes; neither
    side's rendering of non-ASCII bytes is comparable, the ASCII is."""
    if v is None:
        return ""
    return "".join(c for c in str(v) if " " <= c <= "~").strip()


_ESC = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}


def unescape_name(s: str) -> bytes:
    """A DNS name as tshark prints it (format_text: \\ooo octal and C escapes
    for bytes that are not printable) back to its bytes."""
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 4 <= len(s) and re.match(r"[0-7]{3}", s[i + 1:i + 4]):
            out.append(int(s[i + 1:i + 4], 8) & 0xFF)
            i += 4
            continue
        if c == "\\" and i + 1 < len(s) and s[i + 1] in _ESC:
            out.append(_ESC[s[i + 1]])
            i += 2
            continue
        out += c.encode("utf-8", "surrogateescape")
        i += 1
    return bytes(out)


def norm_name(v) -> str:
    """Domain name key: tshark's escapes decoded, ASCII lower-cased,
    trailing dot dropped, tshark's <Root> is the empty name. Bytes >= 0x80
    are left out: tshark prints them as UTF-8 or U+FFFD, the receiver as
    whatever its JSON escaping gives; the rest of the name is compared."""
    if v is None:
        return ""
    s = str(v).strip()
    if s in ("<Root>", "."):
        return ""
    b = unescape_name(s.replace("\ufffd", "")).lower()
    b = bytes(c for c in b if c < 0x80)
    if b.endswith(b".") and len(b) > 1:
        b = b[:-1]
    return b.decode("ascii")


def tshark_marker(v: str) -> bool:
    """tshark puts <...> text where it could not decode a name."""
    return v.startswith("<") and v.endswith(">") and v != "<Root>"


def wire_name(data: bytes, off: int = 0) -> Optional[str]:
    """Uncompressed DNS wire name -> dotted text (bytes as latin-1)."""
    labels = []
    while off < len(data):
        n = data[off]
        off += 1
        if n == 0:
            return ".".join(l.decode("latin-1") for l in labels)
        if n & 0xC0 or off + n > len(data):
            return None
        labels.append(data[off:off + n])
        off += n
    return None


def field_eq(name, exp_val, our_val, prefix_ok=False, limit=DEFAULT_FIELD_LIMIT) -> bool:
    if exp_val is ANY:
        return True
    if isinstance(exp_val, alts):
        return any(field_eq(name, v, our_val, prefix_ok, limit) for v in exp_val)
    if exp_val == our_val:
        return True
    if isinstance(exp_val, str) and isinstance(our_val, str):
        # a value longer than the export limit arrives cut at the limit
        if len(our_val) >= limit - 4 and exp_val.startswith(our_val):
            return True
        # truth made without TCP reassembly shows only the first segment
        if prefix_ok and our_val.startswith(exp_val):
            return True
    return False


def tshark_args(corpus: Path) -> Dict[str, str]:
    out = {}
    p = corpus / "tshark_args.tsv"
    if p.exists():
        for line in p.read_text(errors="replace").splitlines():
            if line.startswith("#") or "\t" not in line:
                continue
            f, a = line.split("\t", 1)
            out[f.strip()] = a.strip()
    return out


def l2l3_flags(corpus: Path, pcap: str) -> Dict[str, set]:
    """Frame number -> {"malformed", "unreassembled"} from the l2l3 truth
    (written for captures with VLAN/MPLS/fragments/damage): tshark marks
    the frame malformed, or it dissected a fragment that is not the last
    one of its datagram (more-fragments set: the rest was never captured,
    tshark shows the first fragment's payload unreassembled)."""
    p = corpus / "truth" / f"{pcap}.l2l3.tsv"
    out: Dict[str, set] = defaultdict(set)
    if not p.exists():
        return out
    for r in read_tsv(p):
        if r.get("_ws.malformed", "") not in ("", "0"):
            out[r["frame.number"]].add("malformed")
        if "1" in multi(r.get("ip.flags.mf", "")) or "1" in multi(r.get("ipv6.fraghdr.more", "")):
            out[r["frame.number"]].add("unreassembled")
    return out


def frame_addrs(r):
    src = r.get("ipv6.src") or r.get("ip.src", "")
    dst = r.get("ipv6.dst") or r.get("ip.dst", "")
    # tunnels list outer and inner header: the innermost one carries the flow
    src, dst = multi(src)[-1:] or [""], multi(dst)[-1:] or [""]
    tcp = r.get("tcp.srcport", "") != ""
    sport = r.get("tcp.srcport") or r.get("udp.srcport", "")
    dport = r.get("tcp.dstport") or r.get("udp.dstport", "")
    return (norm_ip(src[0]), norm_ip(dst[0]), norm_int(multi(sport)[-1:][0] if sport else ""),
            norm_int(multi(dport)[-1:][0] if dport else ""), tcp)


# ---------------------------------------------------------------- HTTP

HTTP_KEY = ("cip", "sip", "cport", "sport")
HTTP_FIELDS = ("cip", "sip", "cport", "sport", "method", "host", "uri", "ua", "referer", "cookie")
METHOD_CODE = {"GET": 1, "POST": 2, "PUT": 3, "DELETE": 4}


def http_truth(path: Path, corpus: Path, pcap: str) -> List[expect]:
    """One expectation per http.request frame (tshark dissects one request
    per row in this corpus; a '|' inside a value is part of the value).

    - requests over UDP (SSDP M-SEARCH, port 1900) are optional: metaprobe
      parses HTTP on TCP streams.
    - a row tshark dissected from a fragment whose datagram was never
      completed (l2l3 truth: more-fragments set) is optional: metaprobe
      reassembles datagrams and drops incomplete ones.
    - truth made with `-o tcp.desegment_tcp_streams:FALSE` (tshark_args.tsv)
      shows only the header lines of the request's first segment: an empty
      user agent / referer / cookie is a wildcard there and a value may be a
      prefix of ours.
    """
    no_reasm = "desegment_tcp_streams:FALSE" in tshark_args(corpus).get(pcap, "")
    flags = l2l3_flags(corpus, pcap)
    out = []
    for r in read_tsv(path):
        cip, sip, cport, sport, tcp = frame_addrs(r)
        f = {
            "cip": cip, "sip": sip, "cport": cport, "sport": sport,
            "method": METHOD_CODE.get(r["http.request.method"].strip(), 0),
            "host": occurrences(norm_text(r["http.host"]).lower(), ()),
            "uri": norm_text(r["http.request.uri"]),
            "ua": occurrences(norm_text(r["http.user_agent"]), (", ",)),
            "referer": occurrences(norm_text(r["http.referer"]), ()),
            # several Cookie headers are one cookie list (RFC 6265 5.4)
            "cookie": occurrences(norm_text(r["http.cookie"]), ("; ",)),
        }
        e = expect(r["frame.number"], f)
        if no_reasm:
            for k in ("ua", "referer", "cookie"):
                if f[k] == "":
                    f[k] = ANY
            e.prefix_fields = ("ua", "referer", "cookie")
            e.note = "truth without TCP reassembly"
        if not tcp:
            e.optional = True
            e.note = "HTTP over UDP (SSDP)"
        if "unreassembled" in flags.get(r["frame.number"], ()):
            e.optional = True
            e.note = "dissected from an unreassembled IP fragment"
        out.append(e)
    return out


def http_ours(records: List[dict]) -> List[ours]:
    out = []
    for rec in records:
        if rec.get("template") != "clickstream" or norm_int(rec.get("HOST_TYPE")) != 1:
            continue
        f = {
            "cip": norm_ip(rec.get("IP_SOURCE")),
            "sip": norm_ip(rec.get("IP_DESTINATION")),
            "cport": norm_int(rec.get("PORT_SOURCE")),
            "sport": norm_int(rec.get("PORT_DESTINATION")),
            "method": norm_int(rec.get("METHOD")) or 0,
            "host": norm_text(rec.get("HOSTNAME")).lower(),
            "uri": norm_text(rec.get("PATH")),
            "ua": norm_text(rec.get("USER_AGENT")),
            "referer": norm_text(rec.get("REFERER")),
            "cookie": norm_text(rec.get("COOKIE")),
        }
        out.append(ours(f, rec))
    return out


# ---------------------------------------------------------------- DNS

DNS_KEY = ("src", "dst", "sport", "dport")
DNS_FIELDS = ("src", "dst", "sport", "dport", "transport", "name", "rrtype", "rrclass", "ttl", "data")
# answer types whose data tshark prints in its own field
DATA_FIELD = {1: "dns.a", 28: "dns.aaaa", 5: "dns.cname", 15: "dns.mx.mail_exchange",
              16: "dns.txt", 12: "dns.ptr.domain_name", 2: "dns.ns"}
NAME_DATA = {5, 12, 2, 15}
BITMAP_TYPES = {47, 50}
MAX_ABSORB = 100  # wildcard records accepted per malformed message  # NSEC/NSEC3: tshark adds the type bitmap to dns.resp.type


def dns_truth(path: Path, corpus: Path, pcap: str) -> List[expect]:
    """Expectations of one .dns.tsv (see docs/testing.md):

    - a query (dns.flags.response == 0): one record per question (name,
      type, class; TTL and data not compared).
    - a response: one record per answer (owner name, type, TTL, data for
      A/AAAA/CNAME/MX/PTR/NS/TXT, class not compared: tshark's answer class
      is not in the truth); a response without answers: one per question.
      dns.resp.name/type/ttl also list authority and additional records, so
      only the first dns.count.answers entries are answers. dns.a, dns.aaaa,
      ... list the data of every section in message order, so the k-th A
      answer's address is the k-th dns.a value.
    - rows shown as ICMP (a DNS message quoted in an ICMP error) are not
      DNS traffic and are left out.
    - mDNS and LLMNR rows are optional (metaprobe's DNS export covers DNS).
    - a malformed message (tshark marks it, or dissected fewer questions or
      answers than the header counts, or prints <...> for a name) is
      optional and names tshark could not decode are wildcards; records
      for the part tshark could not dissect (up to the header counts, at
      most MAX_ABSORB) are accepted without comparing their fields.
    - a message tshark dissected from a fragment whose datagram never
      completed (see l2l3_flags) is optional.
    - dns.resp.name and dns.resp.ttl hold one value per record (OPT has no
      TTL); when len(names) != len(ttls) + OPT records, tshark left names
      out (seen with mDNS) and the lists do not line up: the message is
      treated as malformed and its answers are accepted unchecked.
    - a query that carries answers (inverse query, opcode 1) expects its
      questions; records for its answers are optional.
    """
    flags = l2l3_flags(corpus, pcap)
    out = []
    for r in read_tsv(path):
        proto = r.get("_ws.col.Protocol", "")
        if proto == "ICMP":
            continue
        src, dst, sport, dport, tcp = frame_addrs(r)
        base = {"src": src, "dst": dst, "sport": sport, "dport": dport,
                "transport": 1 if tcp else 0}
        frame = r["frame.number"]
        is_resp = r["dns.flags.response"].strip() == "1"
        qn, qt, qc = multi(r["dns.qry.name"]), multi(r["dns.qry.type"]), multi(r["dns.qry.class"])
        rn, rt, rttl = multi(r["dns.resp.name"]), multi(r["dns.resp.type"]), multi(r["dns.resp.ttl"])
        n_q = norm_int(r["dns.count.queries"]) or 0
        n_a = norm_int(r["dns.count.answers"]) or 0
        notes = []
        malformed = "malformed" in flags.get(frame, ())
        if not isinstance(n_q, int) or not isinstance(n_a, int):
            malformed, n_q, n_a = True, len(qn), min(len(rn), len(rt))
        if len(qn) != n_q or not (len(qn) == len(qt) == len(qc)):
            malformed = True
        if is_resp and n_a > len(rn):
            malformed = True
        if any(tshark_marker(x) for x in qn + rn[:n_a]):
            malformed = True
        # names and TTLs are listed once per record (OPT has no TTL); when
        # the counts disagree, tshark left some names out and the lists no
        # longer line up: the answers cannot be read from them
        aligned = len(rn) == len(rttl) + sum(1 for t in rt if t == "41")
        if not aligned:
            malformed = True
        if malformed:
            notes.append("malformed message")
        optional = malformed
        if "unreassembled" in flags.get(frame, ()):
            optional = True
            notes.append("unreassembled IP fragment")
        if proto in ("MDNS", "LLMNR"):
            optional = True
            notes.append(proto)

        def name_or_any(v):
            return ANY if tshark_marker(v) else norm_name(v)

        frame_exp = []  # (fields, optional)
        answers = min(n_a, len(rn)) if aligned else 0
        if answers > 0:
            seen = defaultdict(int)
            type_ok = True
            for i in range(answers):
                t = norm_int(rt[i]) if i < len(rt) else None
                f = dict(base)
                f["name"] = name_or_any(rn[i])
                f["rrtype"] = t if (type_ok and isinstance(t, int)) else ANY
                f["rrclass"] = ANY
                f["ttl"] = norm_int(rttl[i]) if i < len(rttl) else ANY
                f["data"] = ANY
                if type_ok and t in DATA_FIELD:
                    k = seen[t]
                    seen[t] += 1
                    vals = multi(r.get(DATA_FIELD[t], ""))
                    f["data"] = dns_truth_data(t, vals, k, rt)
                if t in BITMAP_TYPES:
                    type_ok = False  # bitmap entries follow in dns.resp.type
                frame_exp.append((f, not is_resp))
        if not is_resp or (answers == 0 and (aligned or n_a == 0)):
            for i in range(len(qn)):
                f = dict(base)
                f["name"] = name_or_any(qn[i])
                f["rrtype"] = norm_int(qt[i]) if i < len(qt) else ANY
                cls = norm_int(qc[i]) if i < len(qc) else ANY
                f["rrclass"] = ANY if proto == "MDNS" else cls
                f["ttl"] = ANY
                f["data"] = ANY
                frame_exp.append((f, False))
        if malformed:
            # what tshark could not dissect is unknown: up to the header's
            # counts, a record with these addresses and ports is accepted
            claimed = (n_q if isinstance(n_q, int) else 0) + (n_a if isinstance(n_a, int) else 0)
            for _ in range(min(MAX_ABSORB, max(0, claimed - len(frame_exp)))):
                f = dict(base)
                f.update({k: ANY for k in ("name", "rrtype", "rrclass", "ttl", "data")})
                frame_exp.append((f, True))
        for f, opt in frame_exp:
            out.append(expect(frame, f, optional=optional or opt,
                              note=", ".join(notes + (["answer of a query"] if opt else []))))
    return out


def dns_truth_data(t: int, vals: List[str], k: int, types: List[str]):
    if k >= len(vals):
        return ANY
    v = vals[k]
    if t == 1 or t == 28:
        return norm_ip(v)
    if t == 16:
        # one dns.txt value per character-string: only comparable when
        # every TXT record of the message holds exactly one string
        n_txt = sum(1 for x in types if x == "16")
        if n_txt != len(vals) or any(norm_int(x) in BITMAP_TYPES for x in types):
            return ANY
        return norm_text(v)
    if tshark_marker(v):
        return ANY
    return norm_name(v)


def dns_ours_data(t, rdata_hex) -> object:
    """Our RDATA (lowercase hex) decoded the way tshark shows the data."""
    if rdata_hex is None:
        return ""
    try:
        data = bytes.fromhex(str(rdata_hex))
    except ValueError:
        return "<bad hex>"
    if t == 1 and len(data) == 4:
        return str(ipaddress.IPv4Address(data))
    if t == 28 and len(data) == 16:
        return ipaddress.IPv6Address(data).compressed
    if t in (5, 12, 2):
        n = wire_name(data)
        return norm_name(n) if n is not None else "<bad name " + data.hex() + ">"
    if t == 15 and len(data) >= 3:
        n = wire_name(data, 2)
        return norm_name(n) if n is not None else "<bad name " + data.hex() + ">"
    if t == 16:
        strings, off = [], 0
        while off < len(data):
            n = data[off]
            strings.append(data[off + 1:off + 1 + n].decode("latin-1"))
            off += 1 + n
        return norm_text(" ".join(strings))
    return data.hex()


def dns_ours(records: List[dict]) -> List[ours]:
    out = []
    for rec in records:
        if rec.get("template") != "dns":
            continue
        t = norm_int(rec.get("RRTYPE"))
        f = {
            "src": norm_ip(rec.get("IP_SOURCE")),
            "dst": norm_ip(rec.get("IP_DESTINATION")),
            "sport": norm_int(rec.get("PORT_SOURCE")),
            "dport": norm_int(rec.get("PORT_DESTINATION")),
            "transport": norm_int(rec.get("TRANSPORT")) or 0,
            "name": norm_name(rec.get("DOMAIN")),
            "rrtype": t,
            "rrclass": norm_int(rec.get("RRCLASS")),
            "ttl": norm_int(rec.get("TTL")),
            "data": dns_ours_data(t, rec.get("RDATA")),
        }
        out.append(ours(f, rec))
    return out


# ---------------------------------------------------------------- matching

@dataclass
class file_result:
    pcap: str
    protocol: str
    truth: int = 0            # required truth records
    optional_truth: int = 0
    ours: int = 0
    matched: int = 0          # required truth records matched
    optional_matched: int = 0
    unmatched_truth: List[Tuple[expect, str]] = field(default_factory=list)
    unmatched_ours: List[Tuple[ours, str]] = field(default_factory=list)
    error: Optional[str] = None
    seconds: float = 0.0
    excused_truth: int = 0
    excused_ours: int = 0
    limit_reason: str = ""

    def recall(self):
        d = self.truth - self.excused_truth
        return 100.0 * self.matched / d if d > 0 else 100.0

    def precision(self):
        d = self.ours - self.excused_ours
        return 100.0 * (self.matched + self.optional_matched) / d if d > 0 else 100.0


def specificity(e: expect) -> int:
    """Wildcards, alternatives and prefix-matched fields of an expectation."""
    return sum(1 for v in e.fields.values() if v is ANY or isinstance(v, alts)) + len(e.prefix_fields)


def diff_fields(e_fields, o_fields, names, prefix_fields=()) -> List[str]:
    return [k for k in names
            if not field_eq(k, e_fields[k], o_fields[k], k in prefix_fields)]


def match(expects: List[expect], got: List[ours], key: Tuple[str, ...],
          names: Tuple[str, ...], result: file_result):
    """Multiset matching: each record satisfies at most one expectation.
    Required expectations are served before optional ones, and within them
    the most specific (fewest wildcards) first, so a wildcard never takes a
    record an exact expectation needs."""
    buckets = defaultdict(list)
    for i, o in enumerate(got):
        buckets[tuple(o.fields[k] for k in key)].append(i)
    used = [False] * len(got)
    order = sorted(range(len(expects)), key=lambda i: (expects[i].optional, specificity(expects[i]), i))
    matched_exp = [False] * len(expects)
    for i in order:
        e = expects[i]
        for j in buckets.get(e.bucket(key), ()):
            if used[j]:
                continue
            if not diff_fields(e.fields, got[j].fields, names, e.prefix_fields):
                used[j] = True
                matched_exp[i] = True
                break
    result.truth = sum(1 for e in expects if not e.optional)
    result.optional_truth = len(expects) - result.truth
    result.ours = len(got)
    result.matched = sum(1 for i, e in enumerate(expects) if matched_exp[i] and not e.optional)
    result.optional_matched = sum(1 for i, e in enumerate(expects) if matched_exp[i] and e.optional)

    # explain the misses: the nearest candidate with the same addresses/ports
    for i, e in enumerate(expects):
        if matched_exp[i] or e.optional:
            continue
        idx = buckets.get(e.bucket(key), [])
        cands = [got[j] for j in idx if not used[j]] or [got[j] for j in idx]
        result.unmatched_truth.append((e, explain(e.fields, cands, names, e.prefix_fields)))
    ebuckets = defaultdict(list)
    for i, e in enumerate(expects):
        ebuckets[e.bucket(key)].append(i)
    for j, o in enumerate(got):
        if used[j]:
            continue
        idx = ebuckets.get(tuple(o.fields[k] for k in key), [])
        cands = [expects[i] for i in idx if not matched_exp[i]] or [expects[i] for i in idx]
        if cands:
            best = min(cands, key=lambda e: len(diff_fields(e.fields, o.fields, names, e.prefix_fields)))
            d = diff_fields(best.fields, o.fields, names, best.prefix_fields)
            why = ("differs from truth frame " + best.frame + " in " + ", ".join(
                f"{k} (truth {show(best.fields[k])}, ours {show(o.fields[k])})" for k in d)) if d else \
                f"duplicate of truth frame {best.frame}"
        else:
            why = "no truth row with these addresses and ports"
        result.unmatched_ours.append((o, why))


def show(v, n=70):
    if isinstance(v, alts):
        return " or ".join(show(x, n // 2) for x in v)
    s = repr(v) if v is not ANY else "*"
    return s if len(s) <= n else s[:n] + "...'"


def explain(e_fields, cands: List[ours], names, prefix_fields) -> str:
    if not cands:
        return "no record with these addresses and ports"
    best = min(cands, key=lambda o: len(diff_fields(e_fields, o.fields, names, prefix_fields)))
    d = diff_fields(e_fields, best.fields, names, prefix_fields)
    if not d:
        return "an equal record exists but served another truth row (the truth has it more often)"
    return "nearest record differs in " + ", ".join(
        f"{k} (truth {show(e_fields[k])}, ours {show(best.fields[k])})" for k in d)


# ---------------------------------------------------------------- limits

def load_known_limits(path: Optional[Path]) -> Dict[Tuple[str, str], Tuple[int, int, str]]:
    """known_limits.tsv: file, protocol, count, reason. `count` is either N
    (N truth rows of that file may stay unmatched, and N of our records)
    or T/O (T truth rows, O records), because of the documented reason."""
    out = {}
    if not path or not path.exists():
        return out
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if cols[0] == "file":
            continue
        m = re.fullmatch(r"(\d+)(?:/(\d+))?", cols[2].strip()) if len(cols) >= 4 else None
        if not m or cols[1].strip() not in PROTOCOLS or not cols[3].strip():
            raise ValueError(f"{path}:{n}: expected file<TAB>http|dns<TAB>N or T/O<TAB>reason")
        t = int(m.group(1))
        o = int(m.group(2)) if m.group(2) is not None else t
        out[(cols[0].strip(), cols[1].strip())] = (t, o, cols[3].strip())
    return out


# ---------------------------------------------------------------- driver

def compare_records(protocol: str, corpus: Path, pcap: str, records: List[dict]) -> file_result:
    res = file_result(pcap, protocol)
    tpath = corpus / "truth" / (pcap + TRUTH_SUFFIX[protocol])
    spec = SPECS[protocol]
    match(spec.truth(tpath, corpus, pcap), spec.ours(records), spec.key, spec.fields, res)
    return res


def run_one(args, corpus: Path, pcap: str, protocols: List[str]) -> List[file_result]:
    """Runs the appliance once for `pcap` and compares every protocol."""
    if args.records_dir:
        results = []
        for p in protocols:
            recs, bad = mpi.parse_json_lines((Path(args.records_dir) / f"{pcap}.{p}.jsonl").read_bytes())
            results.append(compare_records(p, corpus, pcap, recs))
        return results
    work = mpi.make_workdir(args.work_dir, pcap.replace(".pcap", ""))
    config = Path(args.config) if args.config else None
    run = mpi.run_appliance(Path(args.bin_dir), corpus / pcap, work, config=config,
                            groups=tuple(sorted({GROUP_OF[p] for p in protocols})),
                            extra_sets=args.set or (),
                            timeout=args.timeout)
    results = []
    failed = False
    for p in protocols:
        if run.timed_out:
            r = file_result(pcap, p, error=f"metaprobe did not finish within {args.timeout:.0f} s")
        elif run.returncode != 0:
            r = file_result(pcap, p, error=f"metaprobe exited {run.returncode}:\n{run.tail()}")
        else:
            recs, err = mpi.decode_ipfix(Path(args.bin_dir), run.files[GROUP_OF[p]])
            r = compare_records(p, corpus, pcap, recs)
            r.error = err
        san = mpi.sanitizer_lines(run.stderr)
        if san and not r.error:
            r.error = "sanitizer report: " + san[0]
        r.seconds = run.seconds
        failed = failed or r.error is not None
        results.append(r)
    if failed or args.keep:
        for r in results:
            if r.error:
                r.error += f"\n(run kept in {work})"
    else:
        shutil.rmtree(work, ignore_errors=True)
    return results


def truth_files(corpus: Path, protocols, only) -> Dict[str, List[str]]:
    plan = defaultdict(list)
    for p in protocols:
        for t in sorted((corpus / "truth").glob("*" + TRUTH_SUFFIX[p])):
            pcap = t.name[:-len(TRUTH_SUFFIX[p])]
            if only and pcap not in only and pcap.replace(".pcap", "") not in only:
                continue
            if (corpus / pcap).exists():
                plan[pcap].append(p)
    return dict(sorted(plan.items()))


def pct_text(pct: float) -> str:
    """A threshold as it was given: 99.5 -> '99.5', 99.0 -> '99', 99.25 -> '99.25'."""
    return f"{pct:.6f}".rstrip("0").rstrip(".")


def report(results: List[file_result], limits, protocols, min_pct: float, max_show: int) -> bool:
    ok = True
    for p in protocols:
        rs = [r for r in results if r.protocol == p]
        if not rs:
            continue
        print(f"\n== {p}: metaprobe vs tshark")
        print(f"{'file':44s} {'truth':>6s} {'opt':>5s} {'ours':>6s} {'match':>6s} {'recall%':>8s} {'prec%':>7s}  note")
        tot = file_result("TOTAL", p)
        stale = []
        for r in rs:
            lim = limits.get((r.pcap, p))
            if lim:
                r.excused_truth = min(lim[0], len(r.unmatched_truth))
                r.excused_ours = min(lim[1], len(r.unmatched_ours))
                r.limit_reason = lim[2]
            note = "ERROR" if r.error else (
                f"known limit ({r.excused_truth}/{r.excused_ours} excused)" if lim else "")
            print(f"{r.pcap:44s} {r.truth:6d} {r.optional_truth:5d} {r.ours:6d} {r.matched:6d} "
                  f"{r.recall():8.2f} {r.precision():7.2f}  {note}")
            for k in ("truth", "optional_truth", "ours", "matched", "optional_matched",
                      "excused_truth", "excused_ours"):
                setattr(tot, k, getattr(tot, k) + getattr(r, k))
            if lim and (lim[0] > len(r.unmatched_truth) or lim[1] > len(r.unmatched_ours)):
                # An excuse that no longer applies hides the next regression.
                print(f"   STALE: known_limits.tsv allows {lim[0]}/{lim[1]} for {r.pcap}/{p} but "
                      f"{len(r.unmatched_truth)}/{len(r.unmatched_ours)} are unmatched: tighten it")
                stale.append(f"{r.pcap}/{p}")
        print(f"{'TOTAL':44s} {tot.truth:6d} {tot.optional_truth:5d} {tot.ours:6d} {tot.matched:6d} "
              f"{tot.recall():8.2f} {tot.precision():7.2f}")
        errors = [r for r in rs if r.error]
        for r in errors:
            print(f"\n!! {r.pcap} ({p}): {r.error}")
        for r in rs:
            if not r.unmatched_truth and not r.unmatched_ours:
                continue
            print(f"\n-- {r.pcap} ({p}): {len(r.unmatched_truth)} truth rows unmatched, "
                  f"{len(r.unmatched_ours)} records unmatched"
                  + (f"; known limit: {r.limit_reason}" if r.limit_reason else ""))
            for e, why in r.unmatched_truth[:max_show]:
                print(f"   missing  frame {e.frame}: " + " ".join(
                    f"{k}={show(v, 60)}" for k, v in e.fields.items() if v is not ANY and v != ""))
                print(f"            -> {why}")
            for o, why in r.unmatched_ours[:max_show]:
                print(f"   extra    " + " ".join(
                    f"{k}={show(v, 60)}" for k, v in o.fields.items() if v not in ("", None)))
                print(f"            -> {why}")
        rec, prec = tot.recall(), tot.precision()
        raw = file_result("raw", p, truth=tot.truth, ours=tot.ours, matched=tot.matched,
                          optional_matched=tot.optional_matched)
        if tot.excused_truth or tot.excused_ours:
            print(f"\n{p}: before known limits recall {raw.recall():.2f}%, precision {raw.precision():.2f}%; "
                  f"excused {tot.excused_truth} truth rows and {tot.excused_ours} records")
        verdict = rec >= min_pct and prec >= min_pct and not errors and not stale
        print(f"\n{p}: recall {rec:.2f}%, precision {prec:.2f}% (required {pct_text(min_pct)}%"
              f"{', after known limits' if tot.excused_truth or tot.excused_ours else ''})"
              f"{'' if not errors else f'; {len(errors)} capture(s) failed'}"
              f"{'' if not stale else f'; stale known limits: {len(stale)}'} -> "
              f"{'PASS' if verdict else 'FAIL'}")
        ok = ok and verdict
    return ok


def load_plugins() -> None:
    """Registers HTTP and DNS, then every tests/integration/truth_<proto>.py
    module (its register(tc) gets this module)."""
    import importlib
    add_protocol("http", protocol_spec(".http_req.tsv", "clickstream", http_truth, http_ours,
                                       HTTP_KEY, HTTP_FIELDS))
    add_protocol("dns", protocol_spec(".dns.tsv", "dns", dns_truth, dns_ours, DNS_KEY, DNS_FIELDS))
    global _registering
    here = Path(__file__).resolve().parent
    for f in sorted(here.glob("truth_*.py")):
        if f.stem in ("truth_compare", "truth_selftest"):
            continue
        _registering = f.stem[len("truth_"):]
        importlib.import_module(f.stem).register(sys.modules[__name__])
    _registering = ""


def expand_protocols(arg: str) -> List[str]:
    """`all`, a protocol, or a plug-in module's name (every protocol it
    registers: `tls` is tls and tls_sh)."""
    if arg == "all":
        return list(PROTOCOLS)
    by_module = [p for p in PROTOCOLS if MODULE_OF.get(p) == arg]
    return by_module or [arg]


load_plugins()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", help="folder of metaprobe and metaprobe-receiver")
    ap.add_argument("--corpus", default=os.environ.get("METAPROBE_CORPUS"))
    ap.add_argument("--protocol", choices=sorted(set(PROTOCOLS) | set(MODULE_OF.values())) + ["all"],
                    default="all", help="a protocol, a plug-in module (all it registers) or all")
    ap.add_argument("--files", nargs="*", help="only these captures (name with or without .pcap)")
    ap.add_argument("--config", default=str(Path(__file__).resolve().parent / "configs" / "truth.conf"))
    ap.add_argument("--set", action="append", help="extra key=value for the appliance")
    ap.add_argument("--known-limits", default=str(Path(__file__).resolve().parent / "known_limits.tsv"))
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per appliance run")
    ap.add_argument("--work-dir", help="parent of the per-run temp dirs (default: system temp)")
    ap.add_argument("--keep", action="store_true", help="keep every run's files")
    ap.add_argument("--records-dir", help="compare <pcap>.<protocol>.jsonl from here instead of running")
    ap.add_argument("--min", type=float, default=99.0, help="required recall and precision, percent")
    ap.add_argument("--show", type=int, default=5, help="unmatched rows shown per file and side")
    args = ap.parse_args(argv)
    corpus = mpi.corpus_or_skip(args.corpus)
    if not args.records_dir and not args.bin_dir:
        ap.error("--bin-dir is required unless --records-dir is given")
    protocols = expand_protocols(args.protocol)
    plan = truth_files(corpus, protocols, set(args.files or ()))
    if not plan:
        print("no capture with truth for " + ", ".join(protocols))
        return 1
    if not args.records_dir:
        for b in ("metaprobe", "metaprobe-capture", "metaprobe-exporter", "metaprobe-receiver"):
            mpi.find_bin(Path(args.bin_dir), b)
    limits = load_known_limits(Path(args.known_limits) if args.known_limits else None)
    results = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for rs in pool.map(lambda kv: run_one(args, corpus, kv[0], kv[1]), plan.items()):
            results.extend(rs)
    ok = report(results, limits, protocols, args.min, args.show)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
