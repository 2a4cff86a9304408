// SPDX-License-Identifier: Apache-2.0
#pragma once
// What a parser's buffers hold on the heap, for stream_parser::memory_bytes
// and datagram_parser::memory_bytes (the memory budget, core/memory_budget.hpp).

#include <cstddef>
#include <string>
#include <vector>

namespace metaprobe {

// Heap bytes of strings and vectors (for memory_bytes(); a string in its
// small-string buffer holds none).
inline size_t heap_bytes(const std::string& s) {
  return s.capacity() > 15 ? s.capacity() + 1 : 0;
}
template <class T>
size_t heap_bytes(const std::vector<T>& v) {
  return v.capacity() * sizeof(T);
}
template <class A, class B, class... R>
size_t heap_bytes(const A& a, const B& b, const R&... rest) {
  return heap_bytes(a) + heap_bytes(b) + (size_t{0} + ... + heap_bytes(rest));
}

} // namespace metaprobe
