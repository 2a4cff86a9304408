// SPDX-License-Identifier: Apache-2.0
#include "correlator/correlator.hpp"

#include <algorithm>

#include "core/subscribers.hpp"
#include "correlator/subscriber_source.hpp"

namespace metaprobe {

namespace {

v1::FlowMeta* meta_of(v1::Record& rec) {
  switch (rec.kind_case()) {
    case v1::Record::kClickstream: return rec.mutable_clickstream()->mutable_meta();
    case v1::Record::kHttpReply: return rec.mutable_http_reply()->mutable_meta();
    case v1::Record::kSslReply: return rec.mutable_ssl_reply()->mutable_meta();
    case v1::Record::kSip: return rec.mutable_sip()->mutable_meta();
    case v1::Record::kFtp: return rec.mutable_ftp()->mutable_meta();
    case v1::Record::kIm: return rec.mutable_im()->mutable_meta();
    case v1::Record::kMail: return rec.mutable_mail()->mutable_meta();
    case v1::Record::kRaw: return rec.mutable_raw()->mutable_meta();
    case v1::Record::kDns: return rec.mutable_dns()->mutable_meta();
    case v1::Record::kFullflow: return rec.mutable_fullflow()->mutable_meta();
    case v1::Record::KIND_NOT_SET: break;
  }
  return nullptr;
}

void set_address(std::string* dst, const ip_address& a) {
  dst->assign(reinterpret_cast<const char*>(a.bytes.data()), a.size());
}

} // namespace

std::string encode_mpls_labels(const l2_context& l2) {
  std::string out;
  out.reserve(l2.mpls_count * 3);
  for (int i = 0; i < l2.mpls_count && i < l2_context::max_mpls; ++i) {
    uint32_t e = l2.mpls[i];
    // label(20) tc(3) s(1) are the top 24 bits of the 32-bit stack entry
    out.push_back(static_cast<char>((e >> 24) & 0xff));
    out.push_back(static_cast<char>((e >> 16) & 0xff));
    out.push_back(static_cast<char>((e >> 8) & 0xff));
  }
  return out;
}

void correlator::fill_meta(const flow_info& info, direction dir, uint64_t ts_ns,
                           v1::FlowMeta& meta) {
  bool c2s = dir == direction::client_to_server;
  const ip_address& src = c2s ? info.client : info.server;
  const ip_address& dst = c2s ? info.server : info.client;
  meta.set_time_stamp(static_cast<uint32_t>(ts_ns / 1000000000ull));
  meta.set_time_ns(ts_ns);
  meta.set_family(info.client.family == 6 ? v1::FAMILY_IPV6 : v1::FAMILY_IPV4);
  set_address(meta.mutable_ip_source(), src);
  set_address(meta.mutable_ip_destination(), dst);
  meta.set_port_source(c2s ? info.client_port : info.server_port);
  meta.set_port_destination(c2s ? info.server_port : info.client_port);
  meta.set_protocol(info.l4_proto);
  meta.set_session_id(expectations_.session_for(info.session_id, info.l4_proto, info.server,
                                                info.server_port, info.first_ts_ns));
  meta.set_bridge_channel_num(opts_.bridge_channel_num);
  const l2_context& l2 = info.l2; // first packet of the flow (client side)
  meta.set_vlan_id(l2.vlan_id);
  meta.set_post_vlan_id(l2.post_vlan_id);
  if (l2.has_ethernet) {
    const uint8_t* smac = c2s ? l2.src_mac : l2.dst_mac;
    const uint8_t* dmac = c2s ? l2.dst_mac : l2.src_mac;
    meta.set_source_mac(reinterpret_cast<const char*>(smac), 6);
    meta.set_destination_mac(reinterpret_cast<const char*>(dmac), 6);
  }
  if (l2.mpls_count)
    meta.set_mpls_labels(encode_mpls_labels(l2));
  if (opts_.subscribers) {
    auto login = opts_.subscribers->login_for(info.client);
    if (login.empty())
      login = opts_.subscribers->login_for(info.server);
    if (!login.empty()) {
      meta.set_login(std::string(login));
      ++counters_.logins_attached;
    }
  }
}

void correlator::refresh_subscribers() {
  if (!opts_.subscriber_updates)
    return;
  const uint64_t v = opts_.subscriber_updates->version();
  if (v == subscribers_version_)
    return;
  subscribers_version_ = v;
  subscribers_held_ = opts_.subscriber_updates->current();
  opts_.subscribers = subscribers_held_.get();
}

void correlator::process(record_batch&& in, export_batches& out) {
  refresh_subscribers();
  for (auto& item : in.items) {
    auto& rec = item.rec.record;
    auto* meta = meta_of(rec);
    if (!meta)
      continue;
    const flow_info& info = in.infos[item.info_index];
    expectations_.advance(item.rec.ts_ns);
    fill_meta(info, item.rec.dir, item.rec.ts_ns, *meta);
    if (item.rec.expect.valid())
      learn(info, item.rec, meta->session_id());
    if (rec.kind_case() == v1::Record::kClickstream && rec.clickstream().tcp_sequence() == 0)
      rec.mutable_clickstream()->set_tcp_sequence(item.rec.tcp_seq);
    ++counters_.records;
    out.groups[static_cast<int>(group_of(rec))].push_back(std::move(rec));
  }
  process(std::move(in.closed), out);
}

void correlator::process(std::vector<flow_summary>&& closed, export_batches& out) {
  refresh_subscribers();
  for (auto& s : closed)
    add_summary(s, out);
}

void correlator::learn(const flow_info& info, const parsed_record& rec, uint64_t session_id) {
  const expected_connection& e = rec.expect;
  // Address family 0: the record's destination (FTP EPSV: the control
  // flow's server, whichever side of the flow that is).
  const ip_address& dst =
    rec.dir == direction::client_to_server ? info.server : info.client;
  expectations_.learn(e.server.family ? e.server : dst, e.server_port, e.mode, session_id,
                      rec.ts_ns);
}

void correlator::process(flow_batch&& in, export_batches& out) {
  refresh_subscribers();
  for (const auto& r : in.raw)
    add_raw(in, r, out);
  process(std::move(in.summaries), out);
}

void correlator::add_raw(const flow_batch& in, const raw_packet& r, export_batches& out) {
  if (r.info_index >= in.raw_infos.size())
    return;
  const flow_info& info = in.raw_infos[r.info_index];
  v1::Record rec;
  auto* raw = rec.mutable_raw();
  fill_meta(info, r.dir, r.ts_ns, *raw->mutable_meta());
  const bool c2s = r.dir == direction::client_to_server;
  uint32_t flw_dir = c2s ? 0 : 1; // the client is the subscriber
  if (opts_.subscribers) {
    const ip_address& src = c2s ? info.client : info.server;
    const ip_address& dst = c2s ? info.server : info.client;
    if (!opts_.subscribers->login_for(src).empty())
      flw_dir = 0;
    else if (!opts_.subscribers->login_for(dst).empty())
      flw_dir = 1;
  }
  raw->set_flw_dir(flw_dir);
  raw->set_dir_data(c2s ? 0 : 1);
  raw->set_vdpi_proto(static_cast<uint32_t>(r.proto));
  raw->set_meta_proto(r.meta_proto);
  raw->set_raw_data(reinterpret_cast<const char*>(in.data_of(r)), r.len);
  raw->set_tcp_flags(r.tcp_flags);
  raw->set_tcp_sequence(r.tcp_seq);
  ++counters_.records;
  ++counters_.raw_records;
  out.groups[static_cast<int>(group_of(rec))].push_back(std::move(rec));
}

void correlator::add_summary(flow_summary& s, export_batches& out) {
  auto& group = out.groups[static_cast<int>(sink_group::fullflow)];
  expectations_.advance(std::max(s.dir[0].last_ts_ns, s.dir[1].last_ts_ns));
  for (int d = 0; d < 2 && !opts_.fullflow; ++d)
    if (s.dir[d].packets)
      ++counters_.fullflow_skipped;
  for (int d = 0; d < 2 && opts_.fullflow; ++d) {
    const direction_counters& dc = s.dir[d];
    if (dc.packets == 0)
      continue;
    auto dir = static_cast<direction>(d);
    v1::Record rec;
    auto* ff = rec.mutable_fullflow();
    fill_meta(s.info, dir, dc.last_ts_ns, *ff->mutable_meta());
    // L2 context as seen in this direction
    auto* meta = ff->mutable_meta();
    meta->set_vlan_id(dc.l2.vlan_id);
    meta->set_post_vlan_id(dc.l2.post_vlan_id);
    if (dc.l2.has_ethernet) {
      meta->set_source_mac(reinterpret_cast<const char*>(dc.l2.src_mac), 6);
      meta->set_destination_mac(reinterpret_cast<const char*>(dc.l2.dst_mac), 6);
    }
    if (dc.l2.mpls_count)
      meta->set_mpls_labels(encode_mpls_labels(dc.l2));
    ff->set_octet_delta_count(dc.bytes);
    ff->set_packet_delta_count(dc.packets);
    ff->set_ip_class_of_service(dc.tos);
    ff->set_original_tos(dc.tos);
    ff->set_flow_start_milliseconds(dc.first_ts_ns / 1000000ull);
    ff->set_flow_end_milliseconds(dc.last_ts_ns / 1000000ull);
    ff->set_ip_version(s.info.client.family == 6 ? 6 : 4);
    ff->set_http_host_or_cn_https(s.host);
    ff->set_dpi_protocol(static_cast<uint32_t>(s.info.proto));
    ff->set_frgmt_delta_packs(dc.fragments);
    ff->set_repeat_delta_pack(dc.retransmissions);
    ff->set_packet_deliver_time(s.rtt_half_ms);
    ff->set_tcp_flags(dc.tcp_flags);
    ff->set_end_reason(static_cast<uint32_t>(s.reason));
    ++counters_.fullflow_records;
    group.push_back(std::move(rec));
  }
  if (s.reason != flow_end_reason::active)
    expectations_.release(s.info.session_id); // the flow is over
}

} // namespace metaprobe
