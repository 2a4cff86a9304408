#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Self-test of truth_compare.py without the appliance: records synthesised
from the truth files must match 100%, and each kind of damage (a missing
record, a wrong field, a duplicate, a wrong RDATA) must cost exactly what
the matching rules say. Also checks the value decoders on hand-made input.

Usage: truth_selftest.py [--corpus DIR]    exit 0 pass, 1 fail, 77 skip
"""

import argparse
import ipaddress
import os
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp_integration as mpi  # noqa: E402
import truth_compare as tc  # noqa: E402

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


# ------------------------------------------------------------ synthesis

def wire(name: str) -> bytes:
    if name == "":
        return b"\x00"
    out = b""
    for label in name.encode("latin-1").split(b"."):
        out += bytes([len(label)]) + label
    return out + b"\x00"


def filled(v, default):
    if isinstance(v, tc.alts):
        return v[-1]  # the last alternative: a joined or single occurrence
    return default if v is tc.ANY else v


def http_record(e: tc.expect) -> dict:
    f = e.fields
    fam = "ipv6" if ":" in f["cip"] else "ipv4"
    return {
        "template": "clickstream", "family": fam, "HOST_TYPE": 1,
        "IP_SOURCE": f["cip"], "IP_DESTINATION": f["sip"],
        "PORT_SOURCE": f["cport"], "PORT_DESTINATION": f["sport"],
        "METHOD": f["method"], "HOSTNAME": filled(f["host"], "").upper(), "PATH": f["uri"],
        "USER_AGENT": filled(f["ua"], "x"), "REFERER": filled(f["referer"], ""),
        "COOKIE": filled(f["cookie"], ""), "LOGIN": "", "SESSION_ID": 7,
    }


def dns_rdata(t, data) -> str:
    if data is tc.ANY:
        return "c0000201" if t == 1 else ""
    if t == 1:
        return ipaddress.IPv4Address(data).packed.hex()
    if t == 28:
        return ipaddress.IPv6Address(data).packed.hex()
    if t in (5, 12, 2):
        return wire(data).hex()
    if t == 15:
        return ("000a" + wire(data).hex())
    if t == 16:
        b = data.encode("latin-1")
        return (bytes([len(b)]) + b).hex()
    return ""


def dns_record(e: tc.expect) -> dict:
    f = e.fields
    t = filled(f["rrtype"], 1)
    fam = "ipv6" if ":" in f["src"] else "ipv4"
    name = filled(f["name"], "x.example")
    return {
        "template": "dns", "family": fam,
        "IP_SOURCE": f["src"], "IP_DESTINATION": f["dst"],
        "PORT_SOURCE": f["sport"], "PORT_DESTINATION": f["dport"],
        "TRANSPORT": f["transport"],
        # case and a trailing dot must not matter
        "DOMAIN": ("".join(c.upper() if c.isascii() else c for c in name) + ".") if name else "",
        "RRTYPE": t, "RRCLASS": filled(f["rrclass"], 1), "TTL": filled(f["ttl"], 0),
        "RDATA": dns_rdata(t, f["data"]),
    }


def load(protocol, corpus, pcap):
    path = corpus / "truth" / (pcap + tc.TRUTH_SUFFIX[protocol])
    if protocol == "http":
        return tc.http_truth(path, corpus, pcap)
    return tc.dns_truth(path, corpus, pcap)


def run(protocol, corpus, pcap, records):
    return tc.compare_records(protocol, corpus, pcap, records)


def selftest_file(protocol, corpus, pcap, rng):
    exps = load(protocol, corpus, pcap)
    make = http_record if protocol == "http" else dns_record
    required = [e for e in exps if not e.optional]
    # 1. every expectation as a record, in shuffled order: all match
    recs = [make(e) for e in exps]
    rng.shuffle(recs)
    r = run(protocol, corpus, pcap, recs)
    check(r.matched == r.truth and not r.unmatched_truth and not r.unmatched_ours,
          f"{pcap}/{protocol}: perfect records give matched {r.matched}/{r.truth}, "
          f"{len(r.unmatched_ours)} unmatched records"
          + (f": {r.unmatched_ours[0][1]}" if r.unmatched_ours else "")
          + (f"; missing frame {r.unmatched_truth[0][0].frame}: {r.unmatched_truth[0][1]}"
             if r.unmatched_truth else ""))
    # 1b. only the required ones: recall 100%, precision 100%
    r = run(protocol, corpus, pcap, [make(e) for e in required])
    check(r.recall() == 100.0 and r.precision() == 100.0,
          f"{pcap}/{protocol}: required-only records give recall {r.recall():.2f} precision {r.precision():.2f}")
    if not required:
        return
    victim = rng.choice(required)
    others = [make(e) for e in exps if e is not victim]
    # 2. one record missing: exactly one truth row unmatched
    r = run(protocol, corpus, pcap, others)
    check(r.matched == r.truth - 1 and len(r.unmatched_truth) == 1 and not r.unmatched_ours,
          f"{pcap}/{protocol}: a dropped record gives matched {r.matched}/{r.truth}, "
          f"{len(r.unmatched_ours)} extra")
    # 3. one compared field wrong: one miss on each side, reason names it
    bad = make(victim)
    if protocol == "http":
        bad["USER_AGENT"] = "changed-" + str(bad["USER_AGENT"])
        field = "ua"
    elif victim.fields["ttl"] is not tc.ANY:
        bad["TTL"] = int(bad["TTL"]) + 1
        field = "ttl"
    else:
        bad["DOMAIN"] = "changed." + bad["DOMAIN"]
        field = "name"
    r = run(protocol, corpus, pcap, others + [bad])
    ok = len(r.unmatched_truth) == 1 and len(r.unmatched_ours) == 1
    check(ok, f"{pcap}/{protocol}: a wrong {field} gives {len(r.unmatched_truth)} missing, "
              f"{len(r.unmatched_ours)} extra (expected 1/1)")
    if ok:
        check(field in r.unmatched_ours[0][1] or "duplicate" in r.unmatched_ours[0][1],
              f"{pcap}/{protocol}: reason '{r.unmatched_ours[0][1]}' does not name {field}")
    # 4. a duplicate: precision drops by one record, recall stays
    r = run(protocol, corpus, pcap, [make(e) for e in exps] + [make(victim)])
    check(r.matched == r.truth and len(r.unmatched_ours) <= 1,
          f"{pcap}/{protocol}: a duplicate gives matched {r.matched}/{r.truth}, {len(r.unmatched_ours)} extra")
    # 5. DNS: a wrong address in an A answer is a miss
    if protocol == "dns":
        a = [e for e in required if e.fields["rrtype"] == 1 and e.fields["data"] not in (tc.ANY, "")]
        if a:
            v = a[0]
            bad = make(v)
            bad["RDATA"] = "0a0b0c0d" if bad["RDATA"] != "0a0b0c0d" else "0a0b0c0e"
            r = run(protocol, corpus, pcap, [make(e) for e in exps if e is not v] + [bad])
            check(len(r.unmatched_truth) == 1 and "data" in (r.unmatched_truth[0][1]),
                  f"{pcap}/dns: a wrong A address is not reported as a data difference")


def decoder_tests():
    check(tc.norm_name("WWW.Example.COM.") == "www.example.com", "norm_name case/dot")
    check(tc.norm_name("<Root>") == "" and tc.norm_name(".") == "", "norm_name root")
    check(tc.norm_name("www.allyourba\\004\\005\\006arebelongto.cn")
          == "www.allyourba\x04\x05\x06arebelongto.cn", "norm_name octal escapes")
    check(tc.norm_name("a\\011b") == "a\tb", "norm_name octal is octal")
    check(tc.dns_ours_data(1, "c0000201") == "192.0.2.1", "A rdata")
    check(tc.dns_ours_data(28, "20010db8000000000000000000000001") == "2001:db8::1", "AAAA rdata")
    check(tc.dns_ours_data(5, wire("Www.Example.com").hex()) == "www.example.com", "CNAME rdata")
    check(tc.dns_ours_data(15, "000a" + wire("mx.example.com").hex()) == "mx.example.com", "MX rdata")
    check(tc.dns_ours_data(5, "03777777c00c").startswith("<bad name"), "compressed name is flagged")
    check(tc.dns_ours_data(16, "0568656c6c6f") == "hello", "TXT rdata")
    check(tc.norm_ip("2001:0db8:0000::0001") == "2001:db8::1", "IPv6 normalisation")
    check(tc.norm_text("a\ufffd\x12b ") == "ab", "norm_text keeps printable ASCII")
    check(tc.field_eq("cookie", "x" * 5000, "x" * 4096), "value cut at the export limit matches")
    check(not tc.field_eq("cookie", "x" * 5000, "x" * 100), "short prefix does not match")
    check(tc.field_eq("ua", "Mozil", "Mozilla/5.0", prefix_ok=True), "prefix rule")
    check(not tc.field_eq("ua", "Mozil", "Mozilla/5.0"), "no prefix rule by default")


def multiset_test(corpus):
    # the same request twice in the truth and once in our records: 1 of 2
    exps = [tc.expect("1", dict(cip="10.0.0.1", sip="10.0.0.2", cport=1000, sport=80, method=1,
                                host="h", uri="/", ua="u", referer="", cookie="")),
            tc.expect("2", dict(cip="10.0.0.1", sip="10.0.0.2", cport=1000, sport=80, method=1,
                                host="h", uri="/", ua="u", referer="", cookie=""))]
    rec = http_record(exps[0])
    res = tc.file_result("synthetic", "http")
    tc.match(exps, tc.http_ours([rec]), tc.HTTP_KEY, tc.HTTP_FIELDS, res)
    check(res.matched == 1 and res.truth == 2 and res.recall() == 50.0 and res.precision() == 100.0,
          f"multiset: one record for a request seen twice gives {res.matched}/{res.truth}")
    res = tc.file_result("synthetic", "http")
    tc.match(exps[:1], tc.http_ours([rec, dict(rec)]), tc.HTTP_KEY, tc.HTTP_FIELDS, res)
    check(res.matched == 1 and res.precision() == 50.0,
          f"multiset: two records for one request give precision {res.precision():.1f}")
    # a wildcard expectation must not take the record an exact one needs
    wild = tc.expect("3", dict(exps[0].fields, ua=tc.ANY))
    res = tc.file_result("synthetic", "http")
    other = dict(rec, USER_AGENT="zzz")
    tc.match([wild, exps[0]], tc.http_ours([rec, other]), tc.HTTP_KEY, tc.HTTP_FIELDS, res)
    check(res.matched == 2, f"wildcard ordering: matched {res.matched}/2")
    # non-HTTP clickstream records (SNI, CNAME) are not HTTP requests
    check(not tc.http_ours([dict(rec, HOST_TYPE=3)]), "SNI records are not counted as HTTP")
    # two Cookie headers: tshark 'a=1|b=2' is our 'a=1; b=2', and not 'a=1'
    c = tc.occurrences("a=1|b=2", ("; ",))
    check(tc.field_eq("cookie", c, "a=1; b=2") and tc.field_eq("cookie", c, "a=1|b=2")
          and not tc.field_eq("cookie", c, "a=1"), "two Cookie headers")
    h = tc.occurrences("x.example|y.example", ())
    check(tc.field_eq("host", h, "x.example") and not tc.field_eq("host", h, "z.example"), "two Host headers")


def known_limits_test(tmp: Path):
    p = tmp / "kl.tsv"
    p.write_text("file\tprotocol\tcount\treason\n# comment\nx.pcap\thttp\t2\tbecause\n"
                 "y.pcap\tdns\t0/7\tsince\n")
    kl = tc.load_known_limits(p)
    check(kl == {("x.pcap", "http"): (2, 2, "because"), ("y.pcap", "dns"): (0, 7, "since")},
          f"known limits parsed as {kl}")
    p.write_text("x.pcap\thttp\ttwo\tbecause\n")
    try:
        tc.load_known_limits(p)
        check(False, "a bad count in known_limits.tsv is accepted")
    except ValueError:
        pass
    # the repository's own file must parse
    tc.load_known_limits(Path(__file__).resolve().parent / "known_limits.tsv")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=os.environ.get("METAPROBE_CORPUS"))
    args = ap.parse_args()
    decoder_tests()
    multiset_test(None)
    with tempfile.TemporaryDirectory() as t:
        known_limits_test(Path(t))
    if failures:  # the checks without the corpus failed: say so even if it is absent
        for f in failures:
            print("FAIL:", f)
        return 1
    corpus = mpi.corpus_or_skip(args.corpus)
    rng = random.Random(1234)
    # The records are synthesised for HTTP and DNS (http_record/dns_record);
    # the plug-in protocols' matching is exercised by their own truth tests.
    plan = tc.truth_files(corpus, ["http", "dns"], set())
    n = 0
    for pcap, protocols in plan.items():
        for p in protocols:
            selftest_file(p, corpus, pcap, rng)
            n += 1
    for f in failures:
        print("FAIL:", f)
    print(f"truth_compare self-test: {n} truth files, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
