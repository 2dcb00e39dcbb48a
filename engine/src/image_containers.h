// What OpenCV's decoders do not check in an image file's container (internal): whether a JPEG or
// PNG runs to its end marker, and a WebP's EXIF orientation. Bounds-checked over untrusted bytes.
#pragma once

#include <string>

namespace veil::engine::internal {

// Whether a JPEG's segments and entropy-coded scans run up to an end-of-image marker inside `b`
// (libjpeg decodes a truncated JPEG silently, grey at the bottom). Bytes after the marker (a
// phone's motion-photo video, say) are allowed: they are not part of the image and never written.
bool JpegReachesEnd(const std::string& b);

// Whether a PNG's chunks run up to its IEND chunk inside `b` (bytes after it are allowed).
bool PngReachesEnd(const std::string& b);

// The EXIF orientation (1-8) of a WebP file's EXIF chunk; 1 when it has none or it does not parse.
// OpenCV 4.6 applies the orientation of JPEG, PNG and TIFF files itself, not of WebP.
int WebpExifOrientation(const std::string& b);

}  // namespace veil::engine::internal
