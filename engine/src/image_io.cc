#include "veil/engine/image_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <opencv2/imgcodecs.hpp>

#include "image_containers.h"
#include "veil/keys/fs.h"

namespace veil::engine {
namespace {

uint32_t Be16(const std::string& b, size_t i) {
  return (static_cast<uint8_t>(b[i]) << 8) | static_cast<uint8_t>(b[i + 1]);
}
uint32_t Be32(const std::string& b, size_t i) { return (Be16(b, i) << 16) | Be16(b, i + 2); }
uint32_t Le16(const std::string& b, size_t i) {
  return static_cast<uint8_t>(b[i]) | (static_cast<uint8_t>(b[i + 1]) << 8);
}
uint32_t Le24(const std::string& b, size_t i) { return Le16(b, i) | (static_cast<uint8_t>(b[i + 2]) << 16); }
uint32_t Le32(const std::string& b, size_t i) { return Le16(b, i) | (Le16(b, i + 2) << 16); }

Status Malformed(const char* format) { return InvalidArgumentError(std::string("malformed ") + format + " header"); }

// TIFF: the width and height tags (256, 257) of the first image file directory.
StatusOr<cv::Size> TiffSize(const std::string& b) {
  const bool le = b[0] == 'I';
  auto u16 = [&](size_t i) { return le ? Le16(b, i) : Be16(b, i); };
  auto u32 = [&](size_t i) { return le ? Le32(b, i) : Be32(b, i); };
  const uint64_t ifd = u32(4);
  if (ifd < 8 || ifd + 2 > b.size()) return Malformed("TIFF");
  const uint64_t entries = u16(ifd);
  if (ifd + 2 + entries * 12 > b.size()) return Malformed("TIFF");
  uint32_t w = 0, h = 0;
  for (uint64_t k = 0; k < entries; ++k) {
    const size_t e = static_cast<size_t>(ifd + 2 + k * 12);
    const uint32_t tag = u16(e), type = u16(e + 2);
    if (tag != 256 && tag != 257) continue;
    if (type != 3 && type != 4) return Malformed("TIFF");
    const uint32_t v = type == 3 ? u16(e + 8) : u32(e + 8);
    (tag == 256 ? w : h) = v;
  }
  if (w == 0 || h == 0 || w > 0x7fffffff || h > 0x7fffffff) return Malformed("TIFF");
  return cv::Size(static_cast<int>(w), static_cast<int>(h));
}

StatusOr<cv::Size> JpegSize(const std::string& b) {
  std::optional<cv::Size> size;
  bool short_frame_header = false;
  const bool well_formed = internal::ForEachJpegSegment(b, [&](uint8_t marker, size_t data, size_t length) {
    const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (!sof) return false;
    if (length < 5) {  // precision, height, width
      short_frame_header = true;
    } else {
      size = cv::Size(static_cast<int>(Be16(b, data + 3)), static_cast<int>(Be16(b, data + 1)));
    }
    return true;
  });
  if (size) return *size;
  if (!well_formed || short_frame_header) return Malformed("JPEG");
  return InvalidArgumentError("JPEG has no frame header (truncated or corrupt)");  // a scan, the end or no more bytes first
}

StatusOr<cv::Size> PnmSize(const std::string& b) {
  size_t i = 2;
  long values[2];
  for (long& v : values) {
    while (i < b.size() && (std::isspace(static_cast<unsigned char>(b[i])) || b[i] == '#')) {
      if (b[i] == '#') { while (i < b.size() && b[i] != '\n') ++i; } else { ++i; }
    }
    size_t start = i;
    v = 0;
    while (i < b.size() && std::isdigit(static_cast<unsigned char>(b[i])) && i - start < 9) v = v * 10 + (b[i++] - '0');
    if (i == start) return Malformed("PNM");
  }
  return cv::Size(static_cast<int>(values[0]), static_cast<int>(values[1]));
}

std::mutex& StderrMutex() {
  static std::mutex m;
  return m;
}

// Points fd 2 at /dev/null for its lifetime (when enabled), one at a time.
class StderrSilencer {
 public:
  explicit StderrSilencer(bool enabled) {
    if (!enabled) return;
    StderrMutex().lock();
    std::fflush(stderr);
    saved_ = ::dup(2);
    const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (saved_ >= 0 && null >= 0) ::dup2(null, 2);
    if (null >= 0) ::close(null);
    locked_ = true;
  }
  ~StderrSilencer() {
    if (!locked_) return;
    std::fflush(stderr);
    if (saved_ >= 0) {
      ::dup2(saved_, 2);
      ::close(saved_);
    }
    StderrMutex().unlock();
  }
  StderrSilencer(const StderrSilencer&) = delete;
  StderrSilencer& operator=(const StderrSilencer&) = delete;

 private:
  int saved_ = -1;
  bool locked_ = false;
};

// Composites row by row in integers, only where a pixel is not opaque: out = c a + 255 (1 - a),
// rounded, for alpha values of type T whose opaque value is `opaque`.
template <typename T>
void Composite(cv::Mat& image, const cv::Mat& alpha, uint64_t opaque) {
  for (int y = 0; y < image.rows; ++y) {
    const T* a = alpha.ptr<T>(y);
    uint8_t* p = image.ptr<uint8_t>(y);
    for (int x = 0; x < image.cols; ++x, p += 3) {
      const uint64_t w = a[x];
      if (w >= opaque) continue;
      for (int k = 0; k < 3; ++k) p[k] = static_cast<uint8_t>((p[k] * w + 255 * (opaque - w) + opaque / 2) / opaque);
    }
  }
}

// Transparent pixels are composited onto white, as a viewer shows them: the colours stored under
// them (an erased part of the picture, say) must never become visible in the output. `with_alpha`
// is the same file decoded as stored (IMREAD_UNCHANGED); nothing changes when it has no alpha
// channel or every pixel is opaque. A BMP whose alpha is 0 everywhere has an unused alpha byte.
Status FlattenTransparency(cv::Mat& image, const cv::Mat& with_alpha, const std::string& bytes) {
  if (with_alpha.empty() || (with_alpha.channels() != 4 && with_alpha.channels() != 2)) {
    if (internal::WebpCarriesAlpha(bytes)) {
      return UnsupportedError("a WebP whose header hides its transparency is not supported: re-save it, or flatten it first");
    }
    return Status::Ok();
  }
  cv::Mat alpha;
  cv::extractChannel(with_alpha, alpha, with_alpha.channels() - 1);
  const int depth = alpha.depth();
  if (depth != CV_8U && depth != CV_16U && depth != CV_32F) {
    return UnsupportedError("transparency stored other than as 8-bit, 16-bit or float values is not supported: flatten it first");
  }
  if (depth == CV_32F) alpha.convertTo(alpha, CV_16U, 65535.0);  // saturating: NaN and below 0 are transparent
  const uint64_t opaque = depth == CV_8U ? 255 : 65535;
  double lowest = 0, highest = 0;
  cv::minMaxLoc(alpha, &lowest, &highest);
  if (lowest >= static_cast<double>(opaque)) return Status::Ok();
  if (highest == 0 && bytes.compare(0, 2, "BM") == 0) return Status::Ok();
  // OpenCV has turned a TIFF's pixels to its orientation tag, but not the undecoded alpha.
  if (internal::TiffOrientation(bytes) != 1) {
    return UnsupportedError("a TIFF with transparency and an orientation tag is not supported: flatten it first");
  }
  if (alpha.size() != image.size() || image.type() != CV_8UC3) {
    return InvalidArgumentError("the image's transparency does not match its pixels");
  }
  if (alpha.depth() == CV_8U) Composite<uint8_t>(image, alpha, opaque);
  else Composite<uint16_t>(image, alpha, opaque);
  return Status::Ok();
}

}  // namespace

std::unique_lock<std::mutex> HoldStderr() { return std::unique_lock<std::mutex>(StderrMutex()); }

StatusOr<cv::Size> PeekImageSize(const std::string& b) {
  if (b.empty()) return InvalidArgumentError("image is empty (0 bytes)");
  if (b.size() >= 24 && b.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0) {
    if (b.compare(12, 4, "IHDR") != 0) return Malformed("PNG");
    const uint32_t w = Be32(b, 16), h = Be32(b, 20);
    if (w > 0x7fffffff || h > 0x7fffffff) return Malformed("PNG");
    return cv::Size(static_cast<int>(w), static_cast<int>(h));
  }
  if (b.size() >= 4 && static_cast<uint8_t>(b[0]) == 0xFF && static_cast<uint8_t>(b[1]) == 0xD8) return JpegSize(b);
  if (b.size() >= 26 && b.compare(0, 2, "BM") == 0) {
    const uint32_t header = Le32(b, 14);
    if (header == 12) return cv::Size(static_cast<int>(Le16(b, 18)), static_cast<int>(Le16(b, 20)));
    const int32_t w = static_cast<int32_t>(Le32(b, 18)), h = static_cast<int32_t>(Le32(b, 22));
    if (w <= 0 || h == INT32_MIN) return Malformed("BMP");
    return cv::Size(w, h < 0 ? -h : h);
  }
  if (b.size() >= 30 && b.compare(0, 4, "RIFF") == 0 && b.compare(8, 4, "WEBP") == 0) {
    if (b.compare(12, 4, "VP8X") == 0) return cv::Size(static_cast<int>(Le24(b, 24) + 1), static_cast<int>(Le24(b, 27) + 1));
    if (b.compare(12, 4, "VP8L") == 0) {
      const uint32_t bits = Le32(b, 21);
      return cv::Size(static_cast<int>((bits & 0x3FFF) + 1), static_cast<int>(((bits >> 14) & 0x3FFF) + 1));
    }
    if (b.compare(12, 4, "VP8 ") == 0) return cv::Size(static_cast<int>(Le16(b, 26) & 0x3FFF), static_cast<int>(Le16(b, 28) & 0x3FFF));
    return Malformed("WebP");
  }
  if (b.size() >= 8 && (b.compare(0, 4, std::string("II*\0", 4)) == 0 || b.compare(0, 4, std::string("MM\0*", 4)) == 0)) {
    return TiffSize(b);
  }
  if (b.size() >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6') return PnmSize(b);
  return InvalidArgumentError("not an image in a supported format (PNG, JPEG, BMP, WebP, TIFF, PNM)");
}

StatusOr<cv::Mat> DecodeImage(const std::string& bytes, const ImageLimits& limits) {
  if (bytes.size() > limits.max_file_bytes) {
    return ResourceExhaustedError("image file is larger than " + std::to_string(limits.max_file_bytes) + " bytes");
  }
  VEIL_ASSIGN_OR_RETURN(cv::Size size, PeekImageSize(bytes));
  if (size.width <= 0 || size.height <= 0) return InvalidArgumentError("image header says it has no pixels");
  if (size.width > limits.max_side || size.height > limits.max_side ||
      static_cast<int64_t>(size.width) * size.height > limits.max_pixels) {
    return ResourceExhaustedError("image is " + std::to_string(size.width) + "x" + std::to_string(size.height) +
                                  ", over the limit of " + std::to_string(limits.max_pixels) + " pixels / " +
                                  std::to_string(limits.max_side) + " per side");
  }
  const bool jpeg = static_cast<uint8_t>(bytes[0]) == 0xFF, png = bytes.compare(0, 4, "\x89PNG") == 0;
  const bool webp = bytes.compare(0, 4, "RIFF") == 0;
  if (jpeg && !internal::JpegReachesEnd(bytes)) return InvalidArgumentError("JPEG is truncated (no end-of-image marker)");
  if (png && !internal::PngReachesEnd(bytes)) {
    return InvalidArgumentError("PNG is truncated (no IEND chunk)");
  }
  // OpenCV's own OPENCV_IO_MAX_IMAGE_PIXELS (read once when the library loads, default 2^30) stays
  // as a second line of defence; the header check above is the one that applies our limits.
  // Orientation: Veil's own for JPEG, PNG and WebP (internal::JpegExifOrientation says why);
  // OpenCV's for TIFF.
  const int orientation = jpeg ? internal::JpegExifOrientation(bytes)
                          : png ? internal::PngExifOrientation(bytes)
                          : webp ? internal::WebpExifOrientation(bytes) : 1;
  const int flags = cv::IMREAD_COLOR | (jpeg || png || webp ? cv::IMREAD_IGNORE_ORIENTATION : 0);
  const cv::Mat encoded(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  cv::Mat image, with_alpha;
  {
    StderrSilencer silence(limits.silence_decoder_stderr);
    try {
      image = cv::imdecode(encoded, flags);
      if (!image.empty() && internal::MayHaveAlpha(bytes)) with_alpha = cv::imdecode(encoded, cv::IMREAD_UNCHANGED);
    } catch (const cv::Exception& e) {
      return InvalidArgumentError(std::string("cannot decode image: ") + e.err);
    }
  }
  if (image.empty()) return InvalidArgumentError("cannot decode image (corrupt or truncated)");
  // TIFF's orientation is OpenCV's and may swap width and height.
  if (image.size() != size && image.size() != cv::Size(size.height, size.width)) {
    return InvalidArgumentError("decoded image size differs from its header");
  }
  VEIL_RETURN_IF_ERROR(FlattenTransparency(image, with_alpha, bytes));
  with_alpha.release();
  if (orientation >= 5) cv::transpose(image, image);
  if (orientation == 2 || orientation == 6) cv::flip(image, image, 1);
  if (orientation == 3 || orientation == 7) cv::flip(image, image, -1);
  if (orientation == 4 || orientation == 8) cv::flip(image, image, 0);
  return image;
}

StatusOr<cv::Mat> ReadImage(const std::string& path, const ImageLimits& limits) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return NotFoundError(path + ": no such file");
  if (std::filesystem::is_directory(path, ec)) return InvalidArgumentError(path + ": is a directory, not an image");
  auto bytes = keys::ReadFile(path, limits.max_file_bytes);
  if (!bytes.ok()) return bytes.status().WithContext(path);
  auto image = DecodeImage(*bytes, limits);
  if (!image.ok()) return image.status().WithContext(path);
  return image;
}

}  // namespace veil::engine
