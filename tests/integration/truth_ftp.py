# SPDX-License-Identifier: Apache-2.0
"""FTP accuracy against tshark (plug-in of truth_compare.py).

<pcap>.ftp.tsv lists every FTP control message tshark dissected (requests:
ftp.request.command/arg, replies: ftp.response.code/arg; continuation lines
of multi-line replies carry an argument without a code). metaprobe reports
events, not messages (see actors/parsers/ftp/ftp_parser.hpp): the expected
records are derived from tshark's message sequence of each control
connection by the same rules:
  - the client is the side that sends commands (for reply rows, the
    receiver); replies with a code answer the pending commands in order,
    1xx replies are preliminary, a 220 with nothing pending is the greeting;
  - login: the reply to PASS, or to USER when it is 230 or >= 400;
  - data connection: the reply to PORT/EPRT/LPRT (mode 0) or
    PASV/EPSV/LPSV (mode 1); a 2xx reply makes it the session's mode;
  - fields: server = HOST argument if sent, else the greeting's text
    (ftp.response.arg); user / password = the latest USER / PASS argument
    (USER clears the password); mode (login: the session's mode, 0 before
    any); result = the reply code.
The ftp template has no ports: records are matched by addresses (client =
source).
"""

from collections import defaultdict
from pathlib import Path

KEY = ("cip", "sip")
FIELDS = ("cip", "sip", "server", "user", "password", "mode", "result")
ACTIVE = {"PORT", "EPRT", "LPRT"}
PASSIVE = {"PASV", "EPSV", "LPSV"}
PENDING_CAP = 16

tc = None  # truth_compare, set by register()


class _session:
    def __init__(self):
        self.pending = []
        self.user = ""
        self.password = ""
        self.mode = 0
        self.server = ""
        self.greeting = False
        self.host = False


def ftp_truth(path: Path, corpus: Path, pcap: str):
    flags = tc.l2l3_flags(corpus, pcap)
    sessions = defaultdict(_session)
    out = []
    for r in tc.read_tsv(path):
        src, dst, sport, dport, _tcp = tc.frame_addrs(r)
        cmds = tc.multi(r["ftp.request.command"])
        args = tc.multi(r["ftp.request.arg"])
        codes = tc.multi(r["ftp.response.code"])
        rargs = tc.multi(r["ftp.response.arg"])
        frame = r["frame.number"]
        if cmds:
            s = sessions[(src, dst, sport, dport)]
            # arguments are listed only for commands that have one
            arg_of = args if len(args) == len(cmds) else [""] * len(cmds)
            if len(args) != len(cmds) and len(cmds) == 1:
                arg_of = [r["ftp.request.arg"]]
            for c, a in zip(cmds, arg_of):
                c = c.strip().upper()
                if c == "USER":
                    s.user, s.password = a, ""
                elif c == "PASS":
                    s.password = a
                elif c == "HOST":
                    s.server, s.host = a, True
                s.pending.append(c)
                if len(s.pending) > PENDING_CAP:
                    s.pending.pop(0)
        if codes:
            s = sessions[(dst, src, dport, sport)]
            text_of = rargs if len(rargs) == len(codes) else [""] * len(codes)
            if len(rargs) != len(codes) and len(codes) == 1:
                text_of = [r["ftp.response.arg"]]
            for code_s, text in zip(codes, text_of):
                code = tc.norm_int(code_s)
                if not isinstance(code, int) or code < 200:
                    continue
                if not s.pending:
                    if code == 220 and not s.greeting and not s.host:
                        s.server, s.greeting = text, True
                    continue
                c = s.pending.pop(0)
                mode = None
                if c == "USER" and (code == 230 or code >= 400):
                    mode = s.mode
                elif c == "PASS":
                    mode = s.mode
                elif c in ACTIVE or c in PASSIVE:
                    mode = 0 if c in ACTIVE else 1
                    if 200 <= code < 300:
                        s.mode = mode
                if mode is None:
                    continue
                f = {"cip": dst, "sip": src, "server": tc.norm_text(s.server),
                     "user": tc.norm_text(s.user), "password": tc.norm_text(s.password),
                     "mode": mode, "result": code}
                e = tc.expect(frame, f)
                if "unreassembled" in flags.get(frame, ()):
                    e.optional = True
                    e.note = "dissected from an unreassembled IP fragment"
                out.append(e)
    return out


def ftp_ours(records):
    out = []
    for rec in records:
        if rec.get("template") != "ftp":
            continue
        f = {
            "cip": tc.norm_ip(rec.get("IP_SOURCE")),
            "sip": tc.norm_ip(rec.get("IP_DESTINATION")),
            "server": tc.norm_text(rec.get("SERVER_NAME")),
            "user": tc.norm_text(rec.get("USER")),
            "password": tc.norm_text(rec.get("PASSWORD")),
            "mode": tc.norm_int(rec.get("MODE")) or 0,
            "result": tc.norm_int(rec.get("RESULT_CODE")) or 0,
        }
        out.append(tc.ours(f, rec))
    return out


def register(truth_compare):
    global tc
    tc = truth_compare
    tc.add_protocol("ftp", tc.protocol_spec(suffix=".ftp.tsv", group="meta", truth=ftp_truth,
                                            ours=ftp_ours, key=KEY, fields=FIELDS))
