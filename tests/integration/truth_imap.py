# SPDX-License-Identifier: Apache-2.0
"""IMAP accuracy against tshark (plug-in of truth_compare.py).

One metaprobe "mail" record (meta group, MAIL_PROTOCOL 2, EVENT 2) per FETCH
response carrying a message or its header. tshark's imap.tsv has one row
per IMAP frame and does not break FETCH data items out; the message it
carried is the imf.tsv row of that frame (the server sends it). So: one
expectation per imf.tsv row (with any imf field) whose flow is one of the
IMAP flows of <pcap>.imap.tsv, server = source:
  sender = imf.from, receiver = imf.to (a wildcard when empty: metaprobe
  then names the LOGIN account), cc = imf.cc, subject = imf.subject,
  servers "", result 0.
Header values are compared as in truth_smtp.py (mail_text).
"""

from pathlib import Path
from typing import List

import truth_smtp as mail

tc = None


def imap_truth(path: Path, corpus: Path, pcap: str) -> list:
    rows = tc.read_tsv(path)
    imap_flows = set()
    for r in rows:
        src, dst, sport, dport, _ = tc.frame_addrs(r)
        imap_flows.add((src, dst, sport, dport))
        imap_flows.add((dst, src, dport, sport))
    out = []
    for m in mail.imf_rows(corpus, pcap):
        src, dst, sport, dport, _ = tc.frame_addrs(m)
        if (src, dst, sport, dport) not in imap_flows:
            continue
        to = mail.mail_text(m["imf.to"])
        f = {"src": src, "dst": dst, "sender": mail.mail_text(m["imf.from"]),
             "receiver": to or tc.ANY, "cc": mail.mail_text(m["imf.cc"]),
             "subject": mail.mail_text(m["imf.subject"]), "servers": "", "event": 2,
             "proto": 2, "result": 0}
        out.append(tc.expect(m["frame.number"], f))
    return out


def imap_ours(records: List[dict]) -> list:
    return mail.mail_ours(records, 2)


def register(truth_compare):
    global tc
    tc = truth_compare
    mail.tc = truth_compare
    tc.add_protocol("imap", tc.protocol_spec(".imap.tsv", "meta", imap_truth, imap_ours,
                                             mail.KEY, mail.FIELDS))
