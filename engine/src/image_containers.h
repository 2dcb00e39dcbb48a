// What OpenCV's decoders do not check, or get wrong, in an image file's container (internal):
// whether a JPEG or PNG runs to its end marker, EXIF orientations, whether transparency may be
// present. Bounds-checked over untrusted bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace veil::engine::internal {

// Whether a JPEG's segments and entropy-coded scans run up to an end-of-image marker inside `b`
// (libjpeg decodes a truncated JPEG silently, grey at the bottom). Bytes after the marker (a
// phone's motion-photo video, say) are allowed: they are not part of the image and never written.
bool JpegReachesEnd(const std::string& b);

// Walks a JPEG's marker segments after SOI up to its first scan or its end, as a header reader does
// (no extraneous bytes between segments, unlike JpegReachesEnd, which walks the scans too):
// visit(marker, data, size) for each segment with a length, its payload at b[data, data + size),
// until visit returns true. False when the header is malformed first (a byte where a marker
// belongs, FF 00 or another value that is no marker, a length under 2 or past the end of `b`),
// true otherwise. Stricter than libjpeg, which skips stray bytes and FF 00 with a warning: such a
// file is refused, never read on a path the decoder does not take.
bool ForEachJpegSegment(const std::string& b, const std::function<bool(uint8_t marker, size_t data, size_t size)>& visit);

// Whether a PNG's chunks run up to its IEND chunk inside `b` (bytes after it are allowed).
bool PngReachesEnd(const std::string& b);

// EXIF orientations (1-8; 1 when there is none or it does not parse) that Veil applies itself:
// OpenCV 4.6 applies none for WebP, and for JPEG only from the first APP1 segment, so a file whose
// XMP segment comes before its EXIF one stayed sideways. JPEG: the first APP1 segment that starts
// with "Exif\0\0" (as viewers read it); PNG: the eXIf chunk; WebP: the EXIF chunk; TIFF: the tag of
// the first image file directory (OpenCV applies that one itself).
int WebpExifOrientation(const std::string& b);
int JpegExifOrientation(const std::string& b);
int PngExifOrientation(const std::string& b);
int TiffOrientation(const std::string& b);

// Whether the image may have transparent pixels: a PNG with an alpha channel or a tRNS chunk, a
// WebP with the alpha flag or alpha data (WebpCarriesAlpha), any TIFF, a 32-bit BMP with an alpha
// mask. (Other 32-bit BMPs' fourth byte is unused.)
bool MayHaveAlpha(const std::string& b);

// Whether a WebP holds transparency (an ALPH chunk, or a lossless bitstream that says it uses
// alpha), whatever its header's flag says: libwebp viewers show it, OpenCV follows the flag.
bool WebpCarriesAlpha(const std::string& b);

}  // namespace veil::engine::internal
