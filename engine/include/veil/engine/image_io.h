// Reading untrusted images safely: the header is checked before anything is decoded, so a file
// that claims 30000 x 30000 pixels is refused (ResourceExhausted) without allocating for it.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include <opencv2/core.hpp>

#include "veil/status.h"

namespace veil::engine {

struct ImageLimits {
  int64_t max_pixels = 50'000'000;      // width * height
  int max_side = 16384;                 // either dimension
  size_t max_file_bytes = 256u << 20;   // encoded size
  // OpenCV and libpng print decoder errors on stderr themselves. When set, stderr (fd 2) is pointed
  // at /dev/null while decoding, so a bad image is reported only through the Status. Process-wide:
  // meant for command-line programs; one whose other threads write to stderr holds HoldStderr()
  // around those writes, so that none is swallowed.
  bool silence_decoder_stderr = false;
};

// While the returned lock lives no decode has stderr silenced (and none starts silencing it).
std::unique_lock<std::mutex> HoldStderr();

// Width and height from a PNG, JPEG, BMP, WebP or PNM header; InvalidArgument when the bytes are
// not one of these formats or the header is malformed.
StatusOr<cv::Size> PeekImageSize(const std::string& bytes);

// Decodes to 8-bit BGR. NotFound / IoError for the file, InvalidArgument for a non-image or an
// undecodable (e.g. truncated) one, ResourceExhausted when over `limits`.
StatusOr<cv::Mat> DecodeImage(const std::string& bytes, const ImageLimits& limits = {});
StatusOr<cv::Mat> ReadImage(const std::string& path, const ImageLimits& limits = {});

}  // namespace veil::engine
