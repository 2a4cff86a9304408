# SPDX-License-Identifier: Apache-2.0
"""QUIC accuracy against tshark (plug-in of truth_compare.py).

<pcap>.quic.tsv has one row per QUIC frame (every long-header packet of a
datagram lists its fields '|'-joined). Our records: clickstream with
HOST_TYPE 4 (QUIC SNI), one per connection, from the client's ClientHello.

Rules:
- a row whose tls.handshake.type includes 1 is a ClientHello tshark
  decrypted and reassembled (it shows the ClientHello once, in the frame
  that completed it): one expected record, client = source. Compared:
  addresses and ports, the SNI (tls.handshake.extensions_server_name, empty
  when the ClientHello has none), CIPHER_SUITES_LEN (2 x the number of
  tls.handshake.ciphersuite values: the QUIC truth has no
  cipher_suites_length column) and CIPHER_SUITES (the first 16 values).
- rows without a ClientHello (retransmitted Initials, ACK-only Initials,
  Handshake / 1-RTT packets, server Initials with the ServerHello) expect
  nothing: metaprobe exports one record per connection, and a second
  record for a retransmission would be unmatched.
- a client flow (addresses and ports) that sent Initials but has no
  ClientHello row is a flow whose Initials tshark could not decrypt (a
  capture cut to 256 bytes per packet, a damaged packet, or tshark's
  "Decryption (checktag) failed" after Version Negotiation): one optional
  expectation with wildcard SNI and suites accepts a record there; none is
  required.
- rows dissected from an IP fragment that was never completed (l2l3 truth)
  are optional, as for HTTP.
"""

from pathlib import Path

import truth_tls  # noqa: E402  (same folder, on sys.path through truth_compare)

# The same key and fields as the TLS ClientHello comparison (truth_tls.py).
KEY = truth_tls.CH_KEY
FIELDS = truth_tls.CH_FIELDS
MAX_SUITES = truth_tls.MAX_SUITES
INITIAL = "0"

tc = None  # truth_compare, set by register()


def quic_truth(path: Path, corpus: Path, pcap: str):
    flags = tc.l2l3_flags(corpus, pcap)
    out = []
    with_hello = set()
    initial_flows = {}
    for r in tc.read_tsv(path):
        cip, sip, cport, sport, tcp = tc.frame_addrs(r)
        if tcp:
            continue
        types = tc.multi(r.get("tls.handshake.type", ""))
        flow = (cip, sip, cport, sport)
        if "1" not in types:
            # a client Initial (long packet type 0 with a DCID; a server's
            # Initial to a zero-length client CID has none, so an Initial
            # with a DCID from the side that never sends the ServerHello)
            if INITIAL in tc.multi(r.get("quic.long.packet_type", "")) and "2" not in types:
                initial_flows.setdefault(flow, r["frame.number"])
            continue
        with_hello.add(flow)
        suites = truth_tls.ints(r.get("tls.handshake.ciphersuite", ""))
        f = {"cip": cip, "sip": sip, "cport": cport, "sport": sport,
             "sni": tc.norm_text(r.get("tls.handshake.extensions_server_name", "")),
             "cs_len": 2 * len(suites), "suites": tuple(suites[:MAX_SUITES])}
        e = tc.expect(r["frame.number"], f)
        if "unreassembled" in flags.get(r["frame.number"], ()):
            e.optional = True
            e.note = "dissected from an unreassembled IP fragment"
        out.append(e)
    for flow, frame in initial_flows.items():
        rev = (flow[1], flow[0], flow[3], flow[2])
        if flow in with_hello or rev in with_hello:
            continue
        f = {"cip": flow[0], "sip": flow[1], "cport": flow[2], "sport": flow[3],
             "sni": tc.ANY, "cs_len": tc.ANY, "suites": tc.ANY}
        out.append(tc.expect(frame, f, optional=True,
                             note="client Initials tshark could not decrypt"))
    return out


def quic_ours(records):
    return truth_tls.hello_ours(records, 4)


def register(module):
    global tc
    tc = module
    tc.add_protocol("quic", tc.protocol_spec(suffix=".quic.tsv", group="clickstream",
                                             truth=quic_truth, ours=quic_ours,
                                             key=KEY, fields=FIELDS))
