#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Generates the IPFIX field table of metaprobe from spec/templates.tsv.

One definition (spec/templates.tsv, bound to the record types of
proto/metaprobe/v1/records.proto) drives:

  * C++: template ids, field lists and one encode function per template that
    reads the protobuf record directly (no reflection);
  * config/ipfix/metaprobe_fixbuf.xml: information elements for libfixbuf's
    `ipfixDump --element-file`;
  * config/ipfix/metaprobe_libfds.xml: the same for ipfixcol2 / libfds.

Usage:
  gen_ipfix.py --spec spec/templates.tsv --proto proto/metaprobe/v1/records.proto
               [--hpp OUT.hpp --cpp OUT.cpp] [--xml-dir DIR] [--check-xml DIR]

--check-xml DIR exits 1 (with a message) when the element files in DIR differ
from what the spec generates; the unit tests run it so the checked-in files
cannot go stale. Regenerate them with the `ipfix_update_config` build target.
"""

import argparse
import os
import re
import sys
from collections import OrderedDict

PEN = 43823

# Template ids (RFC 7011: >= 256). Fixed and documented in docs/ipfix.md:
# IPv4 = base, IPv6 = base + 1. A new kind gets the next free pair.
TEMPLATE_ID_BASE = OrderedDict([
    ("clickstream", 1000),
    ("http_reply", 1002),
    ("ssl_reply", 1004),
    ("sip", 1006),
    ("ftp", 1008),
    ("im", 1010),
    ("mail", 1012),
    ("raw", 1014),
    ("dns", 1016),
    ("fullflow", 1018),
])
FAMILIES = ("ipv4", "ipv6")

# Template field names that read FlowMeta (`meta`) instead of the record's
# own field of the same snake_case name.
META_FIELDS = {
    "TIME_STAMP": "time_stamp",
    "LOGIN": "login",
    "IP_SOURCE": "ip_source",
    "SOURCE_IPV4_ADDRESS": "ip_source",
    "SOURCE_IPV6_ADDRESS": "ip_source",
    "IP_DESTINATION": "ip_destination",
    "DESTINATION_IPV4_ADDRESS": "ip_destination",
    "DESTINATION_IPV6_ADDRESS": "ip_destination",
    "PORT_SOURCE": "port_source",
    "SOURCE_TRANSPORT_PORT": "port_source",
    "SOURCE_PORT": "port_source",
    "PORT_DESTINATION": "port_destination",
    "DESTINATION_TRANSPORT_PORT": "port_destination",
    "DESTINATION_PORT": "port_destination",
    "SESSION_ID": "session_id",
    "BRIDGE_CHANNEL_NUM": "bridge_channel_num",
    "VLAN_ID": "vlan_id",
    "SRC_VLAN": "vlan_id",
    "POST_VLAN_ID": "post_vlan_id",
    "DST_VLAN": "post_vlan_id",
    "SOURCE_MAC": "source_mac",
    "SRC_MAC": "source_mac",
    "DESTINATION_MAC": "destination_mac",
    "DST_MAC": "destination_mac",
    "MPLS_LABELS": "mpls_labels",
    "PROTOCOL_IDENTIFIER": "protocol",
    "PROTOCOL": "protocol",
}

# Variable-length fields carrying binary data rather than UTF-8 text.
OCTET_ARRAY_FIELDS = {"CIPHER_SUITES", "MPLS_LABELS", "RDATA", "RAW_DATA"}
IPV4_ELEMENTS = {(PEN, 1003), (PEN, 1004), (0, 8), (0, 12), (0, 225)}
IPV6_ELEMENTS = {(PEN, 1103), (PEN, 1104), (0, 27), (0, 28)}
DATETIME_MS_ELEMENTS = {(0, 152), (0, 153)}

INT_PROTO_TYPES = {"uint32", "uint64", "int32", "int64", "bool", "fixed32",
                   "fixed64", "sint32", "sint64", "sfixed32", "sfixed64"}


class SpecError(Exception):
    pass


def abstract_type(name, pen, eid, length):
    if length == 65535:
        return "octet_array" if name in OCTET_ARRAY_FIELDS else "string"
    if length == 4 and (pen, eid) in IPV4_ELEMENTS:
        return "ipv4_address"
    if length == 16 and (pen, eid) in IPV6_ELEMENTS:
        return "ipv6_address"
    if length == 6:
        return "mac_address"
    if length == 8 and (pen, eid) in DATETIME_MS_ELEMENTS:
        return "date_time_milliseconds"
    if length in (1, 2, 4, 8):
        return "unsigned%d" % (length * 8)
    raise SpecError("%s: no abstract type for length %d" % (name, length))


IANA_TYPE_NAMES = {
    "string": "string",
    "octet_array": "octetArray",
    "ipv4_address": "ipv4Address",
    "ipv6_address": "ipv6Address",
    "mac_address": "macAddress",
    "date_time_milliseconds": "dateTimeMilliseconds",
    "unsigned8": "unsigned8",
    "unsigned16": "unsigned16",
    "unsigned32": "unsigned32",
    "unsigned64": "unsigned64",
}


def read_spec(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) < 7:
                raise SpecError("%s:%d: expected 7 or 8 tab-separated columns" % (path, lineno))
            kind, family, order, eid, ent, length, name = cols[:7]
            note = cols[7] if len(cols) > 7 else ""
            try:
                row = dict(kind=kind, family=family, order=int(order), id=int(eid),
                           pen=int(ent), length=int(length), name=name, note=note,
                           line=lineno)
            except ValueError:
                raise SpecError("%s:%d: order, element_id, enterprise and length must be numbers"
                                % (path, lineno))
            if family not in FAMILIES:
                raise SpecError("%s:%d: family must be ipv4 or ipv6" % (path, lineno))
            if not (0 < row["id"] < 32768):
                raise SpecError("%s:%d: element id out of range" % (path, lineno))
            if not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
                raise SpecError("%s:%d: field name %r is not UPPER_SNAKE" % (path, lineno, name))
            rows.append(row)
    templates = OrderedDict()
    for r in rows:
        templates.setdefault((r["kind"], r["family"]), []).append(r)
    for (kind, family), fields in templates.items():
        if kind not in TEMPLATE_ID_BASE:
            raise SpecError("template kind %r has no template id: add it to TEMPLATE_ID_BASE in %s"
                            % (kind, os.path.basename(__file__)))
        orders = [f["order"] for f in fields]
        if orders != list(range(1, len(fields) + 1)):
            raise SpecError("%s/%s: orders must run 1..%d in file order" % (kind, family, len(fields)))
    for kind in {k for k, _ in templates}:
        for fam in FAMILIES:
            if (kind, fam) not in templates:
                raise SpecError("template %s has no %s variant" % (kind, fam))
    # Stable output order: the order of TEMPLATE_ID_BASE, ipv4 before ipv6.
    ordered = OrderedDict()
    for kind in TEMPLATE_ID_BASE:
        for fam in FAMILIES:
            if (kind, fam) in templates:
                ordered[(kind, fam)] = templates[(kind, fam)]
    return ordered


def read_proto(path):
    """Returns ({message: {field: type}}, {oneof field name: message type})."""
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"//[^\n]*", "", text)
    messages = {}
    record_kinds = {}
    pos = 0
    for m in re.finditer(r"\bmessage\s+(\w+)\s*\{", text):
        if m.start() < pos:
            continue
        depth, i = 1, m.end()
        while depth and i < len(text):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
            i += 1
        body = text[m.end():i - 1]
        # drop nested enum / message bodies
        flat = body
        while True:
            n = re.sub(r"\b(enum|message)\s+\w+\s*\{[^{}]*\}", "", flat)
            if n == flat:
                break
            flat = n
        fields = {}
        oneof = re.search(r"\boneof\s+kind\s*\{([^}]*)\}", flat)
        if oneof:
            for fm in re.finditer(r"(\w+)\s+(\w+)\s*=\s*\d+\s*;", oneof.group(1)):
                record_kinds[fm.group(2)] = fm.group(1)
            flat = flat.replace(oneof.group(0), "")
        for fm in re.finditer(r"(?:repeated\s+)?([\w.]+)\s+(\w+)\s*=\s*\d+\s*;", flat):
            fields[fm.group(2)] = fm.group(1)
        messages[m.group(1)] = fields
        pos = i
    return messages, record_kinds


def bind_fields(templates, messages, record_kinds):
    """Resolves every template field to (accessor path, proto type)."""
    if "FlowMeta" not in messages:
        raise SpecError("records.proto has no FlowMeta message")
    meta = messages["FlowMeta"]
    out = OrderedDict()
    for (kind, family), fields in templates.items():
        msg = record_kinds.get(kind)
        if msg is None:
            raise SpecError("template %s: Record has no oneof field %r" % (kind, kind))
        own = messages.get(msg, {})
        if own.get("meta") != "FlowMeta":
            raise SpecError("message %s has no FlowMeta meta field" % msg)
        bound = []
        for f in fields:
            if f["name"] in META_FIELDS:
                fname = META_FIELDS[f["name"]]
                if fname not in meta:
                    raise SpecError("FlowMeta has no field %s (for %s)" % (fname, f["name"]))
                src, ptype = "m." + fname + "()", meta[fname]
            else:
                fname = f["name"].lower()
                if fname not in own:
                    raise SpecError("%s/%s field %s: message %s has no field %s"
                                    % (kind, family, f["name"], msg, fname))
                src, ptype = "r." + fname + "()", own[fname]
            atype = abstract_type(f["name"], f["pen"], f["id"], f["length"])
            if atype in ("string", "octet_array", "ipv4_address", "ipv6_address", "mac_address"):
                if ptype not in ("string", "bytes"):
                    raise SpecError("%s/%s field %s: %s needs a string/bytes proto field, got %s"
                                    % (kind, family, f["name"], atype, ptype))
            elif ptype not in INT_PROTO_TYPES and ptype not in messages:
                # enums are integers too; anything else is a mistake
                if ptype[0].isupper() and ptype not in messages:
                    pass  # enum type: accepted as an integer
                else:
                    raise SpecError("%s/%s field %s: %s needs an integer proto field, got %s"
                                    % (kind, family, f["name"], atype, ptype))
            bound.append(dict(f, src=src, ptype=ptype, atype=atype))
        out[(kind, family)] = (msg, bound)
    return out


def collect_elements(bound):
    """One definition per (pen, id): first name seen; lengths must agree."""
    elems = OrderedDict()
    for (kind, family), (_, fields) in bound.items():
        for f in fields:
            key = (f["pen"], f["id"])
            if key in elems:
                e = elems[key]
                if e["length"] != f["length"] or e["atype"] != f["atype"]:
                    raise SpecError("element %d/%d is %s/%d in %s but %s/%d in %s/%s"
                                    % (key[0], key[1], e["atype"], e["length"], e["where"],
                                       f["atype"], f["length"], kind, family))
                if f["name"] not in e["aliases"]:
                    e["aliases"].append(f["name"])
                continue
            elems[key] = dict(pen=f["pen"], id=f["id"], length=f["length"], name=f["name"],
                              atype=f["atype"], note=f["note"], aliases=[f["name"]],
                              where="%s/%s" % (kind, family), kind=kind)
    # Element names must be unique (libfds refuses duplicates in a scope):
    # the first element keeps the template field name, a later element with
    # the same name gets a suffix: _IPV6 for IPv6 addresses, else _<KIND>.
    taken = {}
    for key, e in elems.items():
        name = e["name"]
        if name in taken and taken[name] != key:
            suffix = "IPV6" if e["atype"] == "ipv6_address" else e["kind"].upper()
            name = "%s_%s" % (name, suffix)
            if name in taken:
                raise SpecError("cannot give element %d/%d a unique name" % key)
            e["name"] = name
        taken[name] = key
    return OrderedDict(sorted(elems.items()))


WRITERS = {
    "string": "put_string",
    "octet_array": "put_octets",
    "ipv4_address": "put_ipv4",
    "ipv6_address": "put_ipv6",
    "mac_address": "put_mac",
    "date_time_milliseconds": "put_u64",
    "unsigned8": "put_u8",
    "unsigned16": "put_u16",
    "unsigned32": "put_u32",
    "unsigned64": "put_u64",
}


def cpp_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def gen_hpp(bound, source_name):
    kinds = list(OrderedDict.fromkeys(k for k, _ in bound))
    lines = [
        "// SPDX-License-Identifier: Apache-2.0",
        "// GENERATED by tools/codegen/gen_ipfix.py from %s. Do not edit." % source_name,
        "#pragma once",
        "",
        "#include <cstddef>",
        "#include <cstdint>",
        "",
        "namespace metaprobe::ipfix {",
        "",
        "// Template kinds of spec/templates.tsv, in template id order.",
        "enum class template_kind : uint8_t {",
    ]
    for k in kinds:
        lines.append("  %s," % k)
    lines += [
        "};",
        "",
        "inline constexpr size_t template_kind_count = %d;" % len(kinds),
        "// Templates: kind x family; index = 2 * kind + family (ipv4 0, ipv6 1).",
        "inline constexpr size_t template_count = %d;" % len(bound),
        "inline constexpr size_t generated_element_count = %d;" % len(collect_elements(bound)),
        "inline constexpr uint32_t metaprobe_pen = %d;" % PEN,
        "",
        "// Template ids: IPv4 = base, IPv6 = base + 1.",
    ]
    for k in kinds:
        lines.append("inline constexpr uint16_t template_id_%s_ipv4 = %d;" % (k, TEMPLATE_ID_BASE[k]))
        lines.append("inline constexpr uint16_t template_id_%s_ipv6 = %d;" % (k, TEMPLATE_ID_BASE[k] + 1))
    lines += ["", "} // namespace metaprobe::ipfix", ""]
    return "\n".join(lines)


def gen_cpp(bound, elements, source_name):
    lines = [
        "// SPDX-License-Identifier: Apache-2.0",
        "// GENERATED by tools/codegen/gen_ipfix.py from %s. Do not edit." % source_name,
        '#include "exporters/ipfix/field_table.hpp"',
        "",
        '#include "exporters/ipfix/field_writer.hpp"',
        '#include "metaprobe/v1/records.pb.h"',
        "",
        "namespace metaprobe::ipfix {",
        "namespace {",
        "",
    ]
    for (kind, family), (msg, fields) in bound.items():
        lines.append("const field_def fields_%s_%s[] = {" % (kind, family))
        for f in fields:
            lines.append("  {%d, %d, %d, abstract_type::%s, %s}," %
                         (f["id"], f["pen"], f["length"], f["atype"], cpp_str(f["name"])))
        lines.append("};")
        lines.append("")
    for (kind, family), (msg, fields) in bound.items():
        lines.append("void encode_%s_%s(const v1::%s& r, field_writer& w) {" % (kind, family, msg))
        lines.append("  const v1::FlowMeta& m = r.meta();")
        uses_m = any(f["src"].startswith("m.") for f in fields)
        if not uses_m:
            lines.append("  (void)m;")
        for f in fields:
            lines.append("  w.%s(%s); // %s" % (WRITERS[f["atype"]], f["src"], f["name"]))
        lines.append("}")
        lines.append("")
    lines.append("const template_def templates_table[template_count] = {")
    for (kind, family), (msg, fields) in bound.items():
        tid = TEMPLATE_ID_BASE[kind] + (1 if family == "ipv6" else 0)
        fixed = sum(f["length"] for f in fields if f["length"] != 65535)
        nvar = sum(1 for f in fields if f["length"] == 65535)
        lines.append("  {template_kind::%s, ip_family::%s, %d, %s, %s, fields_%s_%s, %d, %d, %d}," %
                     (kind, family, tid, cpp_str(kind), cpp_str(family), kind, family,
                      len(fields), fixed, nvar))
    lines.append("};")
    lines.append("")
    lines.append("// Every element of the table once, sorted by (pen, id); name = first use.")
    lines.append("const element_def elements_table[generated_element_count] = {")
    for (pen, eid), e in elements.items():
        lines.append("  {%d, %d, %d, abstract_type::%s, %s}," %
                     (eid, pen, e["length"], e["atype"], cpp_str(e["name"])))
    lines.append("};")
    lines += [
        "",
        "} // namespace",
        "",
        "const template_def* template_table() { return templates_table; }",
        "const element_def* element_table() { return elements_table; }",
        "",
        "int template_index(const v1::Record& rec) {",
        "  int family = 0;",
        "  switch (rec.kind_case()) {",
    ]
    kinds = list(OrderedDict.fromkeys(k for k, _ in bound))
    for i, k in enumerate(kinds):
        lines.append("  case v1::Record::k%s:" % "".join(p.capitalize() for p in k.split("_")))
        lines.append("    family = rec.%s().meta().family() == v1::FAMILY_IPV6 ? 1 : 0;" % k)
        lines.append("    return %d + family;" % (2 * i))
    lines += [
        "  default:",
        "    return -1;",
        "  }",
        "}",
        "",
        "void encode_fields(int index, const v1::Record& rec, field_writer& w) {",
        "  switch (index) {",
    ]
    for i, ((kind, family), _) in enumerate(bound.items()):
        lines.append("  case %d: encode_%s_%s(rec.%s(), w); break;" % (i, kind, family, kind))
    lines += [
        "  default: break;",
        "  }",
        "}",
        "",
        "} // namespace metaprobe::ipfix",
        "",
    ]
    return "\n".join(lines)


def xml_escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def semantics(e):
    if e["atype"].startswith("unsigned"):
        n = e["name"]
        if n == "TIME_STAMP":
            return None
        if n.endswith("_COUNT") or n.startswith("DROPPED_"):
            return "deltaCounter" if "DELTA" in n else "totalCounter"
        if n in ("TCP_FLAGS", "LOCKED"):
            return "flags"
        if n.endswith("_LEN") or n.endswith("_LENGTH") or n in ("TTL",):
            return "quantity"
        return "identifier"
    if e["atype"] in ("ipv4_address", "ipv6_address", "mac_address"):
        return "default"
    return None


def description(e):
    parts = ["metaprobe %s" % "/".join(e["aliases"])]
    if e["note"]:
        parts.append(e["note"])
    return ". ".join(parts)


def gen_fixbuf_xml(elements, source_name):
    out = [
        "<?xml version='1.0' encoding='UTF-8'?>",
        "<!-- SPDX-License-Identifier: Apache-2.0 -->",
        "<!-- GENERATED by tools/codegen/gen_ipfix.py from %s. Do not edit. -->" % source_name,
        "<!-- metaprobe information elements (PEN %d) for libfixbuf's ipfixDump" % PEN,
        "     (its element-file option): see docs/ipfix.md. -->",
        "<registry id=\"metaprobe_ipfix\"",
        "          xmlns=\"http://www.iana.org/assignments\"",
        "          xmlns:cert=\"http://www.cert.org/ipfix\">",
        "",
        "  <title>metaprobe IPFIX Information Elements</title>",
        "",
        "  <registry id=\"metaprobe-information-elements\">",
        "    <title>metaprobe Enterprise IPFIX Elements (PEN %d)</title>" % PEN,
        "",
    ]
    for (pen, eid), e in elements.items():
        if pen != PEN:
            continue
        out.append("    <record>")
        out.append("      <name>%s</name>" % xml_escape(e["name"]))
        out.append("      <dataType>%s</dataType>" % IANA_TYPE_NAMES[e["atype"]])
        sem = semantics(e)
        if sem and sem != "default":
            out.append("      <dataTypeSemantics>%s</dataTypeSemantics>" % sem)
        out.append("      <cert:enterpriseId>%d</cert:enterpriseId>" % pen)
        out.append("      <elementId>%d</elementId>" % eid)
        out.append("      <status>current</status>")
        out.append("      <description><paragraph>%s</paragraph></description>"
                   % xml_escape(description(e)))
        out.append("    </record>")
        out.append("")
    out += ["  </registry>", "</registry>", ""]
    return "\n".join(out)


def gen_libfds_xml(elements, source_name):
    out = [
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>",
        "<!-- SPDX-License-Identifier: Apache-2.0 -->",
        "<!-- GENERATED by tools/codegen/gen_ipfix.py from %s. Do not edit. -->" % source_name,
        "<!-- metaprobe information elements (PEN %d) for ipfixcol2 / libfds:" % PEN,
        "     copy into the libfds elements directory (e.g. /etc/libfds/user/elements/). -->",
        "<ipfix-elements>",
        "  <scope>",
        "    <pen>%d</pen>" % PEN,
        "    <name>metaprobe</name>",
        "    <biflow mode=\"none\"></biflow>",
        "  </scope>",
        "",
    ]
    for (pen, eid), e in elements.items():
        if pen != PEN:
            continue
        out.append("  <element>")
        out.append("    <id>%d</id>" % eid)
        out.append("    <name>%s</name>" % xml_escape(e["name"]))
        out.append("    <dataType>%s</dataType>" % IANA_TYPE_NAMES[e["atype"]])
        sem = semantics(e)
        if sem:
            out.append("    <dataSemantics>%s</dataSemantics>" % sem)
        out.append("    <status>current</status>")
        out.append("  </element>")
    out += ["", "</ipfix-elements>", ""]
    return "\n".join(out)


XML_FILES = {
    "metaprobe_fixbuf.xml": gen_fixbuf_xml,
    "metaprobe_libfds.xml": gen_libfds_xml,
}


def write_if_changed(path, text):
    try:
        if open(path, encoding="utf-8").read() == text:
            return
    except OSError:
        pass
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", required=True)
    ap.add_argument("--proto", required=True)
    ap.add_argument("--hpp")
    ap.add_argument("--cpp")
    ap.add_argument("--xml-dir", help="write the element definition files here")
    ap.add_argument("--check-xml", metavar="DIR",
                    help="fail if the element definition files in DIR are not up to date")
    a = ap.parse_args(argv)
    try:
        templates = read_spec(a.spec)
        messages, record_kinds = read_proto(a.proto)
        bound = bind_fields(templates, messages, record_kinds)
        elements = collect_elements(bound)
    except (SpecError, OSError) as e:
        print("gen_ipfix: error: %s" % e, file=sys.stderr)
        return 2
    src = "spec/templates.tsv"
    if a.hpp:
        write_if_changed(a.hpp, gen_hpp(bound, src))
    if a.cpp:
        write_if_changed(a.cpp, gen_cpp(bound, elements, src))
    if a.xml_dir:
        for name, fn in XML_FILES.items():
            write_if_changed(os.path.join(a.xml_dir, name), fn(elements, src))
    if a.check_xml:
        stale = []
        for name, fn in XML_FILES.items():
            p = os.path.join(a.check_xml, name)
            try:
                cur = open(p, encoding="utf-8").read()
            except OSError:
                cur = None
            if cur != fn(elements, src):
                stale.append(p)
        if stale:
            print("gen_ipfix: out of date (run the ipfix_update_config target): %s"
                  % ", ".join(stale), file=sys.stderr)
            return 1
        print("gen_ipfix: %s up to date" % ", ".join(XML_FILES))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
