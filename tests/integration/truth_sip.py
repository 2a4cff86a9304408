# SPDX-License-Identifier: Apache-2.0
"""SIP accuracy against tshark (plug-in of truth_compare.py).

<pcap>.sip.tsv holds one row per frame with a SIP message; each row expects
one of our "sip" records (meta group). The sip template has no ports, so
records are matched by addresses (sender = source). Compared:
  msg       request: sip.Method; response: the method of sip.CSeq (metaprobe
            exports the answered method as MSG_CODE of a response)
  status    sip.Status-Code (0 for requests)
  uri       sip.r-uri (empty for responses)
  from, to  sip.from.addr, sip.to.addr
  callid    sip.Call-ID        ua: sip.User-Agent     ctype: sip.Content-Type
  gateways  the sent-by host of every sip.Via entry (topmost first), joined
            with ',' (GATEWAYS)

Rules:
- a frame with several IP headers whose SIP message is quoted in an ICMP
  error or tunnelled (ip.src lists more than one address) is optional:
  metaprobe parses the flow the datagram belongs to, not ICMP quotes.
- a frame with several SIP messages lists each field once per message,
  joined with '|': one expectation per message (fields that tshark lists
  only when present become wildcards when the counts differ).
- rows dissected from an IP fragment that was never completed (l2l3 truth)
  are optional, as for HTTP.
"""

from pathlib import Path
from typing import List

KEY = ("src", "dst")
FIELDS = ("src", "dst", "msg", "status", "uri", "from", "to", "callid", "ua", "ctype",
          "gateways")

tc = None  # truth_compare, set by register()


def via_hosts(value: str) -> List[str]:
    """Sent-by hosts of one Via header value (comma-separated via-parms)."""
    hosts = []
    parts, cur, quoted = [], "", False
    for c in value:
        if c == '"':
            quoted = not quoted
        if c == "," and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    parts.append(cur)
    for p in parts:
        p = p.strip()
        # sent-protocol "SIP/2.0/UDP" (LWS allowed around '/'), then sent-by
        slash = 0
        i = 0
        while i < len(p) and slash < 2:
            if p[i] == "/":
                slash += 1
            i += 1
        if slash < 2:
            continue
        rest = p[i:].lstrip(" \t")
        j = 0
        while j < len(rest) and rest[j] not in " \t;":
            j += 1
        rest = rest[j:].lstrip(" \t")
        if rest.startswith("["):
            end = rest.find("]")
            if end < 0:
                continue
            host = rest[1:end]
        else:
            k = 0
            while k < len(rest) and rest[k] not in ":; \t":
                k += 1
            host = rest[:k]
        if host:
            hosts.append(host)
    return hosts


def sip_truth(path: Path, corpus: Path, pcap: str):
    flags = tc.l2l3_flags(corpus, pcap)
    out = []
    for r in tc.read_tsv(path):
        src, dst, _sport, _dport, _tcp = tc.frame_addrs(r)
        methods = tc.multi(r["sip.Method"])
        codes = tc.multi(r["sip.Status-Code"])
        cseqs = tc.multi(r["sip.CSeq"])
        n = max(1, len(cseqs), len(methods) + len(codes))
        quoted = len(tc.multi(r.get("ip.src", ""))) > 1 or len(tc.multi(r.get("ipv6.src", ""))) > 1

        def pick(col, i, text=True):
            vals = tc.multi(r[col])
            if len(vals) == n:
                v = vals[i]
            elif n == 1:
                v = r[col]
            else:
                return tc.ANY
            return tc.norm_text(v) if text else v

        for i in range(n):
            cseq = pick("sip.CSeq", i)
            if n == 1:
                method = tc.norm_text(r["sip.Method"])
                code = tc.norm_int(r["sip.Status-Code"]) or 0
            else:
                method, code = tc.ANY, tc.ANY
            if method == "" and isinstance(cseq, str):
                words = cseq.split()
                method = words[1] if len(words) > 1 else ""
            via = pick("sip.Via", i, text=False)
            gateways = tc.ANY if via is tc.ANY else ",".join(
                tc.norm_text(h) for v in tc.multi(via) for h in via_hosts(v))
            f = {
                "src": src, "dst": dst,
                "msg": method,
                "status": code,
                "uri": pick("sip.r-uri", i),
                "from": pick("sip.from.addr", i),
                "to": pick("sip.to.addr", i),
                "callid": pick("sip.Call-ID", i),
                "ua": pick("sip.User-Agent", i),
                "ctype": pick("sip.Content-Type", i),
                "gateways": gateways,
            }
            e = tc.expect(r["frame.number"], f)
            if quoted:
                e.optional = True
                e.note = "SIP quoted in ICMP / tunnelled"
            if "unreassembled" in flags.get(r["frame.number"], ()):
                e.optional = True
                e.note = "dissected from an unreassembled IP fragment"
            out.append(e)
    return out


def sip_ours(records):
    out = []
    for rec in records:
        if rec.get("template") != "sip":
            continue
        f = {
            "src": tc.norm_ip(rec.get("IP_SOURCE")),
            "dst": tc.norm_ip(rec.get("IP_DESTINATION")),
            "msg": tc.norm_text(rec.get("MSG_CODE")),
            "status": tc.norm_int(rec.get("STATUS_CODE")) or 0,
            "uri": tc.norm_text(rec.get("URI")),
            "from": tc.norm_text(rec.get("FROM")),
            "to": tc.norm_text(rec.get("TO")),
            "callid": tc.norm_text(rec.get("CALLID")),
            "ua": tc.norm_text(rec.get("UAGENT")),
            "ctype": tc.norm_text(rec.get("CTYPE")),
            "gateways": tc.norm_text(rec.get("GATEWAYS")),
        }
        out.append(tc.ours(f, rec))
    return out


def register(truth_compare):
    global tc
    tc = truth_compare
    tc.add_protocol("sip", tc.protocol_spec(suffix=".sip.tsv", group="meta", truth=sip_truth,
                                            ours=sip_ours, key=KEY, fields=FIELDS))
