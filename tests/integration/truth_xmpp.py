# SPDX-License-Identifier: Apache-2.0
"""XMPP accuracy against tshark (plug-in of truth_compare.py).

metaprobe "im" records (meta group, IM_PROTOCOL 7) of two kinds, matched by
addresses (the sender is the source):
  login    one per TCP flow whose client sent a SASL <auth> (an xmpp.auth
           row) or a jabber:iq:auth set: screen = the first JID with a
           resource that the server addressed a stanza to (xmpp.to of a
           server row) after that frame, "" when there is none (failed
           authentication); IM_LOGIN / IM_PASSW are not in tshark's columns
           and are checked by the unit tests.
  message  one per <message> stanza with a 'to' (xmpp.message rows, either
           direction): receivers = xmpp.to; a wildcard when the frame holds
           several stanzas and tshark's xmpp.to list cannot be lined up.
Rows tshark lists for frames that are not XML (WhatsApp's FunXMPP on port
5222) carry no stanza and expect nothing.
"""

from collections import defaultdict
from pathlib import Path
from typing import List

KEY = ("src", "dst")
FIELDS = ("src", "dst", "kind", "receivers", "screen", "proto")

tc = None


def xmpp_truth(path: Path, corpus: Path, pcap: str) -> list:
    rows = tc.read_tsv(path)
    rows.sort(key=lambda r: int(r["frame.number"]))
    out = []
    by_flow = defaultdict(list)
    for r in rows:
        src, dst, sport, dport, _ = tc.frame_addrs(r)
        client = dport == 5222 or (sport != 5222 and dport != 5222 and sport > dport)
        key = (src, dst, sport, dport) if client else (dst, src, dport, sport)
        by_flow[key].append((r, client))
    for (cip, sip, cport, sport), frows in by_flow.items():
        auth_frame = None
        for r, client in frows:
            if client and "1" in tc.multi(r.get("xmpp.auth", "")):
                auth_frame = int(r["frame.number"])
                break
        if auth_frame is not None:
            screen = ""
            for r, client in frows:
                if client or int(r["frame.number"]) <= auth_frame:
                    continue
                tos = [t for t in tc.multi(r.get("xmpp.to", "")) if "/" in t]
                if tos:
                    screen = tos[0]
                    break
            out.append(tc.expect(str(auth_frame), {"src": cip, "dst": sip, "kind": "login",
                                                   "receivers": "", "screen": screen,
                                                   "proto": 7}))
        for r, client in frows:
            n_msg = tc.multi(r.get("xmpp.message", "")).count("1")
            if n_msg == 0:
                continue
            stanzas = (len(tc.multi(r.get("xmpp.iq", ""))) + len(tc.multi(r.get("xmpp.presence", "")))
                       + n_msg)
            tos = tc.multi(r.get("xmpp.to", ""))
            for _ in range(n_msg):
                recv = tos[0] if stanzas == 1 and len(tos) == 1 else tc.ANY
                src, dst = (cip, sip) if client else (sip, cip)
                out.append(tc.expect(r["frame.number"], {"src": src, "dst": dst,
                                                         "kind": "message", "receivers": recv,
                                                         "screen": tc.ANY, "proto": 7}))
    return out


def xmpp_ours(records: List[dict]) -> list:
    out = []
    for rec in records:
        if rec.get("template") != "im" or tc.norm_int(rec.get("IM_PROTOCOL")) != 7:
            continue
        recv = tc.norm_text(rec.get("IM_RECEIVERS"))
        out.append(tc.ours({
            "src": tc.norm_ip(rec.get("IP_SOURCE")),
            "dst": tc.norm_ip(rec.get("IP_DESTINATION")),
            "kind": "message" if recv else "login",
            "receivers": recv,
            "screen": tc.norm_text(rec.get("IM_SCREEN_NAME")),
            "proto": 7,
        }, rec))
    return out


def register(truth_compare):
    global tc
    tc = truth_compare
    tc.add_protocol("xmpp", tc.protocol_spec(".xmpp.tsv", "meta", xmpp_truth, xmpp_ours,
                                             KEY, FIELDS))
