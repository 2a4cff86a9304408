// SPDX-License-Identifier: Apache-2.0
#pragma once
// Builds the Mail record (template "mail") the SMTP, POP3 and IMAP parsers
// emit, and the codes of its fields (seeds: EVENT 1 send, 2 receive;
// MAIL_PROTOCOL 0 smtp, 1 pop3, 2 imap; ATTACHMENT 1 when the message has
// an attachment, else 0).

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "parsers/mail/mail_message.hpp"
#include "parsers/parser.hpp"

namespace metaprobe::mail {

enum class event : uint32_t { send = 1, receive = 2 };
enum class protocol : uint32_t { smtp = 0, pop3 = 1, imap = 2 };

struct record_fields {
  std::string sender, receiver, cc, subject, servers, reply;
  bool attachment = false;
  event ev = event::receive;
  protocol proto = protocol::smtp;
  uint32_t result_code = 0;
};

// Copies the header fields of a read message into `r` (sender = From,
// receiver = To, cc = Cc, subject = Subject, reply = Reply-To).
inline void take_headers(const message_fields& m, record_fields& r) {
  r.sender = m.from;
  r.receiver = m.to;
  r.cc = m.cc;
  r.subject = m.subject;
  r.reply = m.reply_to;
  r.attachment = m.attachment;
}

inline parsed_record make_record(record_fields&& f, direction dir, uint64_t ts_ns,
                                 uint32_t tcp_seq) {
  parsed_record rec;
  rec.ts_ns = ts_ns;
  rec.dir = dir;
  rec.tcp_seq = tcp_seq;
  v1::Mail* m = rec.record.mutable_mail();
  m->set_mail_sender(std::move(f.sender));
  m->set_mail_receiver(std::move(f.receiver));
  m->set_mail_cc(std::move(f.cc));
  m->set_mail_subject(std::move(f.subject));
  m->set_mail_servers(std::move(f.servers));
  m->set_mail_reply(std::move(f.reply));
  m->set_event(static_cast<uint32_t>(f.ev));
  m->set_attachment(f.attachment ? 1 : 0);
  m->set_mail_protocol(static_cast<uint32_t>(f.proto));
  m->set_result_code(f.result_code);
  return rec;
}

// A message the server sent (POP3 RETR/TOP, IMAP FETCH) has been read in
// full: ends `msg`, adds its limit hits and truncations to `counters`,
// resets it, and appends its receive record (protocol `proto`; an empty To
// falls back to the logged-in `account`) from `server_dir` with `ts_ns` and
// `tcp_seq`, unless `records` already reached `max_records` (then counted
// as a limit hit and dropped). `records` counts this flow's records.
inline void emit_received(message_reader& msg, protocol proto, const std::string& account,
                          direction server_dir, uint64_t ts_ns, uint32_t tcp_seq,
                          size_t max_records, size_t& records, parser_counters& counters,
                          record_sink& out) {
  msg.end();
  record_fields f;
  f.ev = event::receive;
  f.proto = proto;
  take_headers(msg.fields(), f);
  if (f.receiver.empty())
    f.receiver = account;
  counters.limit_hits += msg.limit_hits();
  counters.truncated_fields += msg.truncated();
  msg.reset();
  if (records >= max_records) {
    ++counters.limit_hits;
    return;
  }
  ++records;
  ++counters.records;
  out.push_back(make_record(std::move(f), server_dir, ts_ns, tcp_seq));
}

} // namespace metaprobe::mail
