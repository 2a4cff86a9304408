// SPDX-License-Identifier: Apache-2.0
#include "parsers/websocket/ws_handshake.hpp"

#include "parsers/common/text_line.hpp"

namespace metaprobe::websocket {

bool list_has_token(std::string_view value, std::string_view token) {
  size_t start = 0;
  while (start <= value.size()) {
    size_t end = value.find(',', start);
    if (end == std::string_view::npos)
      end = value.size();
    std::string_view item = value.substr(start, end - start);
    const size_t cut = item.find_first_of(";/");
    if (cut != std::string_view::npos)
      item = item.substr(0, cut);
    if (text::iequals(text::trim_ows(item), token))
      return true;
    start = end + 1;
  }
  return false;
}

} // namespace metaprobe::websocket
