#include "image_containers.h"

#include <cstddef>
#include <cstdint>

namespace veil::engine::internal {

bool JpegReachesEnd(const std::string& b) {
  const auto at = [&](size_t i) { return static_cast<uint8_t>(b[i]); };
  size_t i = 2;  // after SOI
  while (i + 1 < b.size()) {
    if (at(i) != 0xFF) {  // extraneous bytes before a marker: libjpeg skips them with a warning
      ++i;
      continue;
    }
    while (i + 1 < b.size() && at(i + 1) == 0xFF) ++i;  // fill bytes
    if (i + 1 >= b.size()) return false;
    const uint8_t marker = at(i + 1);
    i += 2;
    if (marker == 0xD9) return true;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no length
    if (i + 2 > b.size()) return false;
    const size_t length = (static_cast<size_t>(at(i)) << 8) | at(i + 1);
    if (length < 2 || i + length > b.size()) return false;
    i += length;
    if (marker != 0xDA) continue;
    // Entropy-coded data: 0xFF is followed by 0x00 (a stuffed byte) or a restart marker inside it;
    // anything else is the next marker.
    while (i + 1 < b.size() && !(at(i) == 0xFF && at(i + 1) != 0x00 && !(at(i + 1) >= 0xD0 && at(i + 1) <= 0xD7))) ++i;
  }
  return false;
}

bool PngReachesEnd(const std::string& b) {
  size_t i = 8;  // after the signature
  while (i + 12 <= b.size()) {
    const auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(b[i + k])); };
    const size_t length = (byte(0) << 24) | (byte(1) << 16) | (byte(2) << 8) | byte(3);
    if (length > b.size() - i - 12) return false;
    if (b.compare(i + 4, 4, "IEND") == 0) return true;
    i += 12 + length;
  }
  return false;
}

int WebpExifOrientation(const std::string& b) {
  const auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(b[i])); };
  const auto le32 = [&](size_t i) { return byte(i) | byte(i + 1) << 8 | byte(i + 2) << 16 | byte(i + 3) << 24; };
  if (b.size() < 12 || b.compare(0, 4, "RIFF") != 0 || b.compare(8, 4, "WEBP") != 0) return 1;
  // The chunks: fourcc, little-endian size, data padded to an even length.
  size_t i = 12;
  while (i + 8 <= b.size()) {
    const size_t size = le32(i + 4);
    if (size > b.size() - i - 8) return 1;
    if (b.compare(i, 4, "EXIF") != 0) {
      i += 8 + size + (size & 1);
      continue;
    }
    size_t t = i + 8;  // the TIFF structure, sometimes after an "Exif\0\0" prefix
    const size_t end = t + size;
    if (size >= 6 && b.compare(t, 6, std::string("Exif\0\0", 6)) == 0) t += 6;
    if (end - t < 8) return 1;
    const bool big = b.compare(t, 2, "MM") == 0;
    if (!big && b.compare(t, 2, "II") != 0) return 1;
    const auto u16 = [&](size_t k) { return big ? byte(k) << 8 | byte(k + 1) : byte(k) | byte(k + 1) << 8; };
    const auto u32 = [&](size_t k) { return big ? u16(k) << 16 | u16(k + 2) : u16(k) | u16(k + 2) << 16; };
    if (u16(t + 2) != 42) return 1;
    const size_t ifd = u32(t + 4);
    if (ifd > end - t - 2) return 1;
    const size_t entries = u16(t + ifd);
    for (size_t e = 0; e < entries; ++e) {
      const size_t at = t + ifd + 2 + 12 * e;
      if (at + 12 > end) return 1;
      if (u16(at) != 0x0112) continue;
      if (u16(at + 2) != 3 || u32(at + 4) != 1) return 1;  // one SHORT
      const uint32_t v = u16(at + 8);
      return v >= 1 && v <= 8 ? static_cast<int>(v) : 1;
    }
    return 1;
  }
  return 1;
}

}  // namespace veil::engine::internal
