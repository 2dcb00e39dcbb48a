// The checks Veil makes on an image file's container before OpenCV decodes it: JPEG and PNG end
// markers, a WebP's EXIF orientation (engine/src/image_containers.h; plain C++, built here alone).
#include <cstddef>
#include <cstdint>
#include <string>

#include "image_containers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  (void)veil::engine::internal::JpegReachesEnd(bytes);
  (void)veil::engine::internal::PngReachesEnd(bytes);
  const int orientation = veil::engine::internal::WebpExifOrientation(bytes);
  if (orientation < 1 || orientation > 8) __builtin_trap();
  return 0;
}
