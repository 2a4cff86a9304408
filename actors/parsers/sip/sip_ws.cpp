// SPDX-License-Identifier: Apache-2.0
#include "parsers/sip/sip_ws.hpp"

namespace metaprobe {

sip_ws_session::sip_ws_session(const parser_options& opts, parser_counters& counters)
  : engine_(opts, counters),
    deframers_{websocket::deframer(opts.max_buffered, ws_counters_),
               websocket::deframer(opts.max_buffered, ws_counters_)} {}

websocket::counters sip_ws_session::take_counters() {
  const websocket::counters c = ws_counters_;
  ws_counters_ = websocket::counters{};
  return c;
}

void sip_ws_session::deliver(direction dir, const uint8_t* data, size_t len, uint64_t ts_ns,
                             record_sink& out) {
  if (over())
    return;
  cur_dir_ = dir;
  cur_ts_ = ts_ns;
  cur_out_ = &out;
  deframers_[static_cast<size_t>(dir) & 1].feed(data, len, *this);
  cur_out_ = nullptr;
}

void sip_ws_session::gap(direction dir, size_t len) {
  deframers_[static_cast<size_t>(dir) & 1].gap(len);
}

bool sip_ws_session::over() const {
  const auto stopped = [](const websocket::deframer& d) { return d.failed() || d.closed(); };
  return engine_.state() == parser_state::violated ||
         (stopped(deframers_[0]) && stopped(deframers_[1]));
}

void sip_ws_session::on_message(websocket::opcode /*op*/, std::string_view payload) {
  if (cur_out_ == nullptr)
    return;
  engine_.on_datagram(cur_dir_, reinterpret_cast<const uint8_t*>(payload.data()),
                      payload.size(), cur_ts_, *cur_out_);
}

} // namespace metaprobe
