// Little-endian 32-bit integers in byte strings: the fixed encodings of associated data and of the
// payload container's length prefixes (internal to the engine).
#pragma once

#include <cstdint>
#include <string>

namespace veil::engine::internal {

inline void PutLittleEndian32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// `s` holds at least 4 bytes.
inline uint32_t ReadLittleEndian32(const std::string& s) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

}  // namespace veil::engine::internal
