# SPDX-License-Identifier: Apache-2.0
"""SMTP accuracy against tshark (plug-in of truth_compare.py); also holds
the helpers that truth_pop.py and truth_imap.py share.

One metaprobe "mail" record (meta group, MAIL_PROTOCOL 0, EVENT 1) per
mail transaction, i.e. per MAIL command in <pcap>.smtp.tsv. The mail
template has no ports, so records are matched by addresses (client =
source). Expected fields, rebuilt from the command/reply rows of each TCP
flow in frame order (replies matched to commands in order, as the parser
does; an AUTH exchange's 334 replies and its unnamed continuation rows are
skipped):
  sender    the MAIL FROM path (inside <>); the message's imf.from when the
            path is null
  receiver  every RCPT TO path of the transaction, joined with ", "
  cc, subject
            imf.cc / imf.subject of the first imf.tsv row of the same flow
            after the DATA frame (and before the next MAIL); "" without
            DATA; a wildcard when DATA was sent but tshark shows no message
            (the capture ends inside it)
  servers   first word of the 220 greeting (the domain RFC 5321 puts there)
  result    the reply to the transaction's last command: the reply after the
            data (or 354 when the capture ends inside DATA), a rejected
            MAIL / DATA, else the last RCPT reply
Header values are compared unfolded (tshark prints the CRLF of a folded
field as the two characters \\r\\n; metaprobe removes the CRLF, RFC 5322
2.2.3) with runs of white space made one space.
"""

import re
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

KEY = ("src", "dst")
FIELDS = ("src", "dst", "sender", "receiver", "cc", "subject", "servers", "event", "proto",
          "result")

tc = None  # truth_compare, set by register()


def mail_text(v) -> str:
    """A header value as compared: unfolded, white space runs made one space."""
    if v is None:
        return ""
    s = str(v).replace("\\r\\n", "").replace("\\n", "").replace("\\t", " ").replace("\\r", "")
    s = re.sub(r"[\t\r\n ]+", " ", s)
    return tc.norm_text(s)


def path_of(param: str) -> str:
    """The path of 'FROM: <a@b> SIZE=1' / 'To:<c@d>' (after the colon)."""
    colon = param.find(":")
    rest = param[colon + 1:].strip() if colon >= 0 else param.strip()
    if rest.startswith("<"):
        end = rest.find(">")
        return rest[1:end] if end >= 0 else rest[1:]
    return rest.split()[0] if rest.split() else ""


def flows(rows, client_port_of) -> Dict[tuple, list]:
    """Rows grouped by TCP flow (client ip, server ip, client port, server
    port), each list in frame order. client_port_of(row) -> True when the
    row's source is the client."""
    out = defaultdict(list)
    for r in rows:
        src, dst, sport, dport, _ = tc.frame_addrs(r)
        if client_port_of(r):
            out[(src, dst, sport, dport)].append((r, True))
        else:
            out[(dst, src, dport, sport)].append((r, False))
    for v in out.values():
        v.sort(key=lambda x: int(x[0]["frame.number"]))
    return out


def imf_rows(corpus: Path, pcap: str) -> List[dict]:
    p = corpus / "truth" / (pcap + ".imf.tsv")
    if not p.exists():
        return []
    return [r for r in tc.read_tsv(p)
            if any(r.get(k, "") for k in ("imf.from", "imf.to", "imf.cc", "imf.subject"))]


def mail_ours(records: List[dict], proto: int) -> list:
    out = []
    for rec in records:
        if rec.get("template") != "mail" or tc.norm_int(rec.get("MAIL_PROTOCOL")) != proto:
            continue
        f = {
            "src": tc.norm_ip(rec.get("IP_SOURCE")),
            "dst": tc.norm_ip(rec.get("IP_DESTINATION")),
            "sender": mail_text(rec.get("MAIL_SENDER")),
            "receiver": mail_text(rec.get("MAIL_RECEIVER")),
            "cc": mail_text(rec.get("MAIL_CC")),
            "subject": mail_text(rec.get("MAIL_SUBJECT")),
            "servers": mail_text(rec.get("MAIL_SERVERS")),
            "event": tc.norm_int(rec.get("EVENT")),
            "proto": tc.norm_int(rec.get("MAIL_PROTOCOL")),
            "result": tc.norm_int(rec.get("RESULT_CODE")),
        }
        out.append(tc.ours(f, rec))
    return out


def smtp_truth(path: Path, corpus: Path, pcap: str) -> list:
    rows = tc.read_tsv(path)
    imf = imf_rows(corpus, pcap)
    out = []
    # the client sends commands; the server's rows carry reply codes
    per_flow = flows(rows, lambda r: r.get("smtp.response.code", "") == "")
    for (cip, sip, cport, sport), frows in per_flow.items():
        flow_imf = [r for r in imf
                    if tc.frame_addrs(r)[:4] == (cip, sip, cport, sport)]
        flow_imf.sort(key=lambda r: int(r["frame.number"]))
        servers = ""
        greeted = False
        pending = []          # commands awaiting a reply
        txns = []             # finished transactions
        cur = None

        def end():
            nonlocal cur
            if cur is not None:
                txns.append(cur)
            cur = None

        for r, from_client in frows:
            if from_client:
                verb = r.get("smtp.req.command", "").strip().upper()
                param = r.get("smtp.req.parameter", "")
                if not verb:
                    continue  # AUTH continuation or message data
                if verb == "MAIL":
                    end()
                    cur = {"frame": r["frame.number"], "sender": path_of(param), "rcpt": [],
                           "data_frame": None, "result": 0, "failed": False}
                    pending.append("mail")
                elif verb == "RCPT":
                    if cur is not None:
                        p = path_of(param)
                        if p:
                            cur["rcpt"].append(p)
                    pending.append("rcpt")
                elif verb == "DATA":
                    if cur is not None:
                        cur["data_frame"] = int(r["frame.number"])
                    pending.append("data")
                elif verb == "AUTH":
                    pending.append("auth")
                elif verb in ("RSET", "QUIT"):
                    end()
                    pending.append("other")
                else:
                    pending.append("other")
                continue
            for code_s in tc.multi(r.get("smtp.response.code", "")):
                code = int(code_s)
                if not greeted and not pending:
                    greeted = True
                    if code == 220:
                        params = tc.multi(r.get("smtp.rsp.parameter", ""))
                        words = params[0].split() if params else []
                        servers = words[0] if words else ""
                    continue
                greeted = True
                if pending and pending[0] == "auth" and code == 334:
                    continue
                if not pending:
                    continue
                c = pending.pop(0)
                if cur is None:
                    continue
                if c == "mail":
                    cur["result"] = code
                    cur["failed"] = code >= 400
                elif c == "rcpt":
                    if not cur["failed"]:
                        cur["result"] = code
                elif c == "data":
                    cur["result"] = code
                    if code == 354:
                        pending.insert(0, "data_end")
                    else:
                        end()
                elif c == "data_end":
                    cur["result"] = code
                    end()
        end()
        for i, t in enumerate(txns):
            nxt = int(txns[i + 1]["frame"]) if i + 1 < len(txns) else None
            msg = None
            if t["data_frame"] is not None:
                for m in flow_imf:
                    fn = int(m["frame.number"])
                    if fn > t["data_frame"] and (nxt is None or fn < nxt):
                        msg = m
                        break
            if t["data_frame"] is None:
                cc = subject = ""
                from_hdr = ""
            elif msg is None:
                cc = subject = from_hdr = tc.ANY
            else:
                cc, subject = mail_text(msg["imf.cc"]), mail_text(msg["imf.subject"])
                from_hdr = mail_text(msg["imf.from"])
            f = {
                "src": cip, "dst": sip,
                "sender": mail_text(t["sender"]) if t["sender"] else from_hdr,
                "receiver": mail_text(", ".join(t["rcpt"])),
                "cc": cc, "subject": subject,
                "servers": mail_text(servers),
                "event": 1, "proto": 0,
                "result": t["result"],
            }
            out.append(tc.expect(t["frame"], f))
    return out


def smtp_ours(records: List[dict]) -> list:
    return mail_ours(records, 0)


def register(truth_compare):
    global tc
    tc = truth_compare
    tc.add_protocol("smtp", tc.protocol_spec(".smtp.tsv", "meta", smtp_truth, smtp_ours,
                                             KEY, FIELDS))
