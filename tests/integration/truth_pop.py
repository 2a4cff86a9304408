# SPDX-License-Identifier: Apache-2.0
"""POP3 accuracy against tshark (plug-in of truth_compare.py).

One metaprobe "mail" record (meta group, MAIL_PROTOCOL 1, EVENT 2) per
message the server sends: per RETR or TOP row of <pcap>.pop.tsv whose reply
is +OK (replies matched to commands in order per TCP flow; the SASL
response line after AUTH <mechanism>, which tshark lists as a command, is
skipped). Matched by addresses (server = source). The message's header
fields come from the next imf.tsv row of the same flow after the RETR/TOP
frame (tshark also lists rows without any imf field for the multi-line
replies it dissects as IMF; those are not messages):
  sender = imf.from, receiver = imf.to (a wildcard when empty: metaprobe
  then names the account), cc = imf.cc, subject = imf.subject, servers "",
  result 0. Without an imf row the header fields are wildcards.
Header values are compared as in truth_smtp.py (mail_text).
"""

from pathlib import Path
from typing import List

import truth_smtp as mail

POP_VERBS = {"USER", "PASS", "APOP", "AUTH", "STAT", "LIST", "UIDL", "RETR", "TOP", "DELE",
             "NOOP", "RSET", "QUIT", "CAPA", "STLS", "LAST", "UTF8"}

tc = None


def pop_truth(path: Path, corpus: Path, pcap: str) -> list:
    rows = tc.read_tsv(path)
    imf = mail.imf_rows(corpus, pcap)
    out = []
    per_flow = mail.flows(rows, lambda r: r.get("pop.response.indicator", "") == "")
    for (cip, sip, cport, sport), frows in per_flow.items():
        flow_imf = sorted((r for r in imf if tc.frame_addrs(r)[:4] == (sip, cip, sport, cport)),
                          key=lambda r: int(r["frame.number"]))
        used_imf = set()
        pending = []
        greeted = False
        auth_wait = False
        for r, from_client in frows:
            if from_client:
                verb = r.get("pop.request.command", "").strip().upper()
                param = r.get("pop.request.parameter", "").strip()
                if auth_wait and verb not in POP_VERBS:
                    auth_wait = False
                    continue  # the SASL response line
                auth_wait = False
                if verb == "AUTH" and param:
                    auth_wait = True
                pending.append((verb, int(r["frame.number"])))
                continue
            for ind in tc.multi(r.get("pop.response.indicator", "")):
                if not greeted and not pending:
                    greeted = True
                    continue
                greeted = True
                if not pending:
                    continue
                verb, frame = pending.pop(0)
                if verb not in ("RETR", "TOP") or ind != "+OK":
                    continue
                msg = None
                for m in flow_imf:
                    if int(m["frame.number"]) > frame and m["frame.number"] not in used_imf:
                        msg = m
                        used_imf.add(m["frame.number"])
                        break
                if msg is None:
                    hdr = dict(sender=tc.ANY, receiver=tc.ANY, cc=tc.ANY, subject=tc.ANY)
                else:
                    to = mail.mail_text(msg["imf.to"])
                    hdr = dict(sender=mail.mail_text(msg["imf.from"]), receiver=to or tc.ANY,
                               cc=mail.mail_text(msg["imf.cc"]),
                               subject=mail.mail_text(msg["imf.subject"]))
                f = {"src": sip, "dst": cip, **hdr, "servers": "", "event": 2, "proto": 1,
                     "result": 0}
                out.append(tc.expect(str(frame), f))
    return out


def pop_ours(records: List[dict]) -> list:
    return mail.mail_ours(records, 1)


def register(truth_compare):
    global tc
    tc = truth_compare
    mail.tc = truth_compare
    tc.add_protocol("pop", tc.protocol_spec(".pop.tsv", "meta", pop_truth, pop_ours,
                                            mail.KEY, mail.FIELDS))
