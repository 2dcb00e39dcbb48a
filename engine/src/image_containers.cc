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
    if (marker == 0x00) continue;  // FF 00 outside a scan: libjpeg drops it and looks for the next FF
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

namespace {

uint32_t Byte(const std::string& b, size_t i) { return static_cast<uint8_t>(b[i]); }
uint32_t Le32At(const std::string& b, size_t i) {
  return Byte(b, i) | Byte(b, i + 1) << 8 | Byte(b, i + 2) << 16 | Byte(b, i + 3) << 24;
}
uint32_t Be32At(const std::string& b, size_t i) {
  return Byte(b, i) << 24 | Byte(b, i + 1) << 16 | Byte(b, i + 2) << 8 | Byte(b, i + 3);
}

// The orientation tag (0x0112) of the first image file directory of the TIFF structure in
// b[t, end), which may start with an "Exif\0\0" prefix; 1 when it has none or it does not parse.
int TiffStructureOrientation(const std::string& b, size_t t, size_t end) {
  if (end > b.size() || t > end) return 1;
  if (end - t >= 6 && b.compare(t, 6, std::string("Exif\0\0", 6)) == 0) t += 6;
  if (end - t < 8) return 1;
  const bool big = b.compare(t, 2, "MM") == 0;
  if (!big && b.compare(t, 2, "II") != 0) return 1;
  const auto u16 = [&](size_t k) { return big ? Byte(b, k) << 8 | Byte(b, k + 1) : Byte(b, k) | Byte(b, k + 1) << 8; };
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

// Calls `chunk(type offset, data offset, data size)` for each PNG chunk inside `b` until it
// returns true; false when none did.
template <typename F>
bool ForEachPngChunk(const std::string& b, F chunk) {
  size_t i = 8;
  while (i + 12 <= b.size()) {
    const size_t length = Be32At(b, i);
    if (length > b.size() - i - 12) return false;
    if (chunk(i + 4, i + 8, length)) return true;
    i += 12 + length;
  }
  return false;
}

// Calls `chunk(fourcc offset, data offset, data size)` for each chunk of a WebP file (fourcc,
// little-endian size, data padded to an even length) until it returns true; false when none did
// or `b` is no WebP.
template <typename F>
bool ForEachWebpChunk(const std::string& b, F chunk) {
  if (b.size() < 12 || b.compare(0, 4, "RIFF") != 0 || b.compare(8, 4, "WEBP") != 0) return false;
  size_t i = 12;
  while (i + 8 <= b.size()) {
    const size_t size = Le32At(b, i + 4);
    if (size > b.size() - i - 8) return false;
    if (chunk(i, i + 8, size)) return true;
    i += 8 + size + (size & 1);
  }
  return false;
}

}  // namespace

int WebpExifOrientation(const std::string& b) {
  int orientation = 1;
  ForEachWebpChunk(b, [&](size_t fourcc, size_t data, size_t size) {
    if (b.compare(fourcc, 4, "EXIF") != 0) return false;
    orientation = TiffStructureOrientation(b, data, data + size);
    return true;
  });
  return orientation;
}

bool ForEachJpegSegment(const std::string& b, const std::function<bool(uint8_t marker, size_t data, size_t size)>& visit) {
  size_t i = 2;  // after SOI
  while (i + 4 <= b.size()) {
    if (Byte(b, i) != 0xFF) return false;
    const uint8_t marker = static_cast<uint8_t>(Byte(b, i + 1));
    if (marker == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // no length
      i += 2;
      continue;
    }
    if (marker == 0xDA || marker == 0xD9) return true;  // the first scan, or the end
    // FF 00 is no marker: libjpeg skips it and reads on to the next FF, so a length read here would
    // walk another path through the file than the decoder does (a frame header hidden from this
    // walk, its pixel count unchecked). 02-BF are no markers either (libjpeg stops on them).
    if (marker < 0xC0) return false;
    const size_t length = Byte(b, i + 2) << 8 | Byte(b, i + 3);
    if (length < 2 || i + 2 + length > b.size()) return false;
    if (visit(marker, i + 4, length - 2)) return true;
    i += 2 + length;
  }
  return true;
}

int JpegExifOrientation(const std::string& b) {
  int orientation = 1;  // the metadata segments come before the first scan
  ForEachJpegSegment(b, [&](uint8_t marker, size_t data, size_t size) {
    if (marker != 0xE1 || size < 6 || b.compare(data, 6, std::string("Exif\0\0", 6)) != 0) return false;
    orientation = TiffStructureOrientation(b, data, data + size);
    return true;
  });
  return orientation;
}

int PngExifOrientation(const std::string& b) {
  int orientation = 1;
  ForEachPngChunk(b, [&](size_t type, size_t data, size_t size) {
    if (b.compare(type, 4, "eXIf") != 0) return false;
    orientation = TiffStructureOrientation(b, data, data + size);
    return true;
  });
  return orientation;
}

int TiffOrientation(const std::string& b) { return TiffStructureOrientation(b, 0, b.size()); }

bool WebpCarriesAlpha(const std::string& b) {
  return ForEachWebpChunk(b, [&](size_t fourcc, size_t data, size_t size) {
    return b.compare(fourcc, 4, "ALPH") == 0 || (b.compare(fourcc, 4, "VP8L") == 0 && size >= 5 && (Le32At(b, data + 1) >> 28 & 1) != 0);
  });
}

bool MayHaveAlpha(const std::string& b) {
  if (b.size() >= 26 && b.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0) {
    const uint32_t colour_type = Byte(b, 25);
    if (colour_type == 4 || colour_type == 6) return true;
    return ForEachPngChunk(b, [&](size_t type, size_t, size_t) { return b.compare(type, 4, "tRNS") == 0; });
  }
  // WebP: the extended header's alpha flag, or alpha data whatever the flag says (libwebp shows
  // it; a decode without an alpha channel is then refused).
  if (b.size() >= 21 && b.compare(0, 4, "RIFF") == 0 && b.compare(8, 4, "WEBP") == 0) {
    return (b.compare(12, 4, "VP8X") == 0 && (Byte(b, 20) & 0x10) != 0) || WebpCarriesAlpha(b);
  }
  // BMP: a 32-bit bitmap whose header (V3 and later) has an alpha mask.
  if (b.size() >= 70 && b.compare(0, 2, "BM") == 0) {
    const uint32_t header = Le32At(b, 14), bits = Byte(b, 28) | Byte(b, 29) << 8, compression = Le32At(b, 30);
    return header >= 56 && bits == 32 && (compression == 3 || compression == 6) && Le32At(b, 66) != 0;
  }
  return b.size() >= 4 && (b.compare(0, 4, std::string("II*\0", 4)) == 0 || b.compare(0, 4, std::string("MM\0*", 4)) == 0);
}

}  // namespace veil::engine::internal
