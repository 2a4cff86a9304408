// SPDX-License-Identifier: Apache-2.0
#pragma once
// RDATA of one resource record: a readable text form and a self-contained
// byte form.
//
// Text (Dns.rdata_text), as dig shows it, with names rendered like tshark
// (see read_name: no trailing dot, "<Root>" for the root):
//   A      192.0.2.1                 AAAA   2001:db8::1 (RFC 5952)
//   NS, CNAME, PTR, DNAME, MB, MD, MF, MG, MR   target name
//   MX, AFSDB, RT, KX   "<preference> <name>"
//   SOA    "<mname> <rname> <serial> <refresh> <retry> <expire> <minimum>"
//   SRV    "<priority> <weight> <port> <target>"
//   TXT, SPF, HINFO    each character-string in double quotes, separated by
//          one space; '"' and '\' escaped with '\', bytes below 0x20, 0x7f and
//          bytes that are not well-formed UTF-8 as "\DDD" (decimal)
//   other  RFC 3597 generic form "\# <length> <hex>"
// A malformed RDATA gives an empty text.
//
// Bytes (Dns.rdata): the RDATA as on the wire, except that compressed names
// in NS/CNAME/PTR/DNAME/MB/MD/MF/MG/MR/MX/AFSDB/RT/KX/SOA/SRV RDATA are
// expanded, so the value stands on its own outside its message.

#include <cstddef>
#include <cstdint>
#include <string>

namespace metaprobe::dns {

// rdata_off/rdlen must lie inside msg[0..len). Returns false when the RDATA
// does not match its type's layout (text empty, bytes = raw RDATA).
bool format_rdata(const uint8_t* msg, size_t len, size_t rdata_off, uint16_t rdlen,
                  uint16_t type, std::string& text, std::string& bytes);

} // namespace metaprobe::dns
