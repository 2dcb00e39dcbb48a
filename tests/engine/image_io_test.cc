// Untrusted image input: bad files give a Status with a clear message, never a crash, and an image
// without faces is an ordinary empty result.
#include <doctest/doctest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "test_support.h"
#include "veil/engine/face_detector.h"
#include "veil/engine/image_io.h"
#include "veil/keys/fs.h"

namespace veil::engine {
namespace {

std::string Encode(const cv::Mat& image, const char* ext) {
  std::vector<uchar> buf;
  REQUIRE(cv::imencode(ext, image, buf));
  return std::string(buf.begin(), buf.end());
}

// A syntactically valid PNG signature + IHDR claiming `w` x `h` pixels, and nothing else.
std::string PngHeader(uint32_t w, uint32_t h) {
  std::string b = "\x89PNG\r\n\x1a\n";
  b += std::string("\0\0\0\x0dIHDR", 8);
  for (uint32_t v : {w, h}) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<char>((v >> s) & 0xFF));
  }
  b += std::string("\x08\x02\0\0\0", 5) + std::string(4, '\0');
  return b;
}

TEST_CASE("the header is read without decoding: PNG, JPEG, BMP, WebP, TIFF and PNM sizes") {
  const cv::Mat image(37, 53, CV_8UC3, cv::Scalar(10, 20, 30));
  for (const char* ext : {".png", ".jpg", ".bmp", ".webp", ".tif", ".ppm"}) {
    auto size = PeekImageSize(Encode(image, ext));
    REQUIRE_MESSAGE(size.ok(), ext);
    CHECK(*size == cv::Size(53, 37));
  }
}

TEST_CASE("a JPEG's size is read from its frame header after other segments and fill bytes; a broken header is refused") {
  const std::string soi("\xFF\xD8", 2);
  const std::string app1 = std::string("\xFF\xE1\x00\x0A", 4) + "Exif" + std::string("\0\0\0\0", 4);  // 8 payload bytes
  const std::string fill("\xFF\xFF", 2);
  // SOF0: length 11, precision 8, height 0x0123, width 0x0456, 1 component (3 bytes).
  const std::string sof = std::string("\xFF\xC0\x00\x0B\x08\x01\x23\x04\x56\x01", 10) + std::string("\x01\x11\x00", 3);
  const std::string sos("\xFF\xDA\x00\x08\x01\x01\x00\x00\x3F\x00", 10);
  auto size = PeekImageSize(soi + app1 + fill + sof + sos);
  REQUIRE_MESSAGE(size.ok(), size.status().ToString());
  CHECK(*size == cv::Size(0x456, 0x123));
  // A scan before any frame header; a frame header too short for its size fields; a segment whose
  // length runs past the file; a byte where a marker belongs.
  CHECK(PeekImageSize(soi + app1 + sos).status().message().find("no frame header") != std::string::npos);
  CHECK(PeekImageSize(soi + std::string("\xFF\xC0\x00\x05\x08\x01\x23", 7) + sos).status().message().find("malformed JPEG") != std::string::npos);
  CHECK(PeekImageSize(soi + std::string("\xFF\xE1\x40\x00", 4) + sof + sos).status().message().find("malformed JPEG") != std::string::npos);
  CHECK(PeekImageSize(soi + "x" + sof + sos).status().message().find("malformed JPEG") != std::string::npos);
  // FF 00 is no marker: libjpeg skips it and would read a frame header that a length taken from
  // "00 19" jumps over (a 32768 x 32768 claim hidden behind a smaller one).
  const std::string big = std::string("\xFF\xC0\x00\x0B\x08\x80\x00\x80\x00\x01", 10) + std::string("\x01\x11\x00", 3);
  const std::string hidden = soi + std::string("\xFF\x00\x00\x19", 4) + big + std::string("\xFF\xFE\x00\x15", 4) + sof + sos;
  CHECK(PeekImageSize(hidden).status().message().find("malformed JPEG") != std::string::npos);
  CHECK(PeekImageSize(soi + std::string("\xFF\x42\x00\x04\x00\x00", 6) + sof + sos).status().message().find("malformed JPEG") !=
        std::string::npos);
}

TEST_CASE("an image whose header claims 30000 x 30000 is refused before decoding") {
  auto r = DecodeImage(PngHeader(30000, 30000));
  CHECK(r.status().code() == StatusCode::kResourceExhausted);
  CHECK(r.status().message().find("30000x30000") != std::string::npos);
}

TEST_CASE("empty, non-image, truncated and missing inputs give clear errors") {
  CHECK(DecodeImage("").status().code() == StatusCode::kInvalidArgument);
  CHECK(DecodeImage("hello, this is not an image").status().code() == StatusCode::kInvalidArgument);
  const std::string jpeg = Encode(cv::Mat(64, 64, CV_8UC3, cv::Scalar(1, 2, 3)), ".jpg");
  CHECK(DecodeImage(jpeg.substr(0, jpeg.size() / 2)).status().code() == StatusCode::kInvalidArgument);
  const std::string png = Encode(cv::Mat(64, 64, CV_8UC3, cv::Scalar(1, 2, 3)), ".png");
  CHECK(DecodeImage(png.substr(0, png.size() / 2)).status().code() == StatusCode::kInvalidArgument);
  CHECK(DecodeImage(PngHeader(64, 64)).status().code() == StatusCode::kInvalidArgument);
  // Cut inside the last scan or just before the end marker: refused (libjpeg would fill in grey).
  CHECK(DecodeImage(jpeg.substr(0, jpeg.size() - 2)).status().code() == StatusCode::kInvalidArgument);
  CHECK(DecodeImage(png.substr(0, png.size() - 4)).status().code() == StatusCode::kInvalidArgument);
  CHECK(ReadImage("/nonexistent/photo.jpg").status().code() == StatusCode::kNotFound);
  CHECK(ReadImage("/tmp").status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("corrupted PNG, JPEG, BMP, WebP and TIFF bytes never crash the decoder: each is an image or an error") {
  cv::Mat image(48, 64, CV_8UC3);
  cv::randu(image, 0, 255);
  cv::RNG rng(7);
  ImageLimits quiet;
  quiet.silence_decoder_stderr = true;
  for (const char* ext : {".png", ".jpg", ".bmp", ".webp", ".tif"}) {
    const std::string good = Encode(image, ext);
    for (int trial = 0; trial < 300; ++trial) {
      std::string bad = good;
      const int flips = 1 + trial % 8;
      for (int k = 0; k < flips; ++k) bad[rng.uniform(0, static_cast<int>(bad.size()))] = static_cast<char>(rng.uniform(0, 256));
      if (trial % 5 == 0) bad.resize(rng.uniform(1, static_cast<int>(bad.size())));
      auto r = DecodeImage(bad, quiet);
      if (r.ok()) {
        CHECK(r->type() == CV_8UC3);
      } else {
        CHECK(r.status().code() != StatusCode::kOk);
      }
    }
  }
}

TEST_CASE("bytes after a complete JPEG or PNG (a phone's motion-photo video) do not make it truncated") {
  const cv::Mat image(48, 64, CV_8UC3, cv::Scalar(40, 90, 160));
  std::string trailer(64 * 1024, '\0');
  for (size_t i = 0; i < trailer.size(); ++i) trailer[i] = static_cast<char>((i * 131) % 251);  // no end marker at its end
  for (const char* ext : {".jpg", ".png"}) {
    const std::string plain = Encode(image, ext);
    auto with_video = DecodeImage(plain + trailer);
    REQUIRE_MESSAGE(with_video.ok(), ext, ": ", with_video.status().ToString());
    CHECK(cv::norm(*with_video, *DecodeImage(plain), cv::NORM_INF) == 0);
  }
  // A progressive JPEG (several scans with tables between them) is read to its end marker too.
  std::vector<uchar> progressive;
  REQUIRE(cv::imencode(".jpg", image, progressive, {cv::IMWRITE_JPEG_PROGRESSIVE, 1}));
  CHECK(DecodeImage(std::string(progressive.begin(), progressive.end()) + trailer).ok());
  CHECK(DecodeImage(std::string(progressive.begin(), progressive.end() - 2)).status().code() == StatusCode::kInvalidArgument);
}

// An EXIF TIFF structure whose first directory holds `orientation` (big-endian, as phones write it).
std::string ExifTiff(uint16_t orientation) {
  return std::string("MM\0\x2a\0\0\0\x08", 8) + std::string("\0\x01", 2) +         // header, IFD0: one entry
         std::string("\x01\x12\0\x03\0\0\0\x01", 8) +                             // Orientation, SHORT, 1
         std::string(1, '\0') + std::string(1, static_cast<char>(orientation)) +         // its value
         std::string(2, '\0') + std::string(4, '\0');                                   // padding, no next IFD
}

std::string Le(uint32_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return s;
}

std::string Be(uint32_t v, int n) {
  std::string s;
  for (int i = n - 1; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return s;
}

// `webp` (a simple lossless file, one VP8L chunk) in the extended format, with an EXIF chunk that
// holds `orientation`.
std::string WebpWithOrientation(const std::string& webp, int w, int h, uint16_t orientation) {
  const std::string exif = ExifTiff(orientation);
  std::string chunks = "VP8X" + Le(10, 4) + std::string(1, '\x08') + std::string(3, '\0') + Le(w - 1, 3) + Le(h - 1, 3);
  chunks += webp.substr(12);  // the VP8L chunk
  chunks += "EXIF" + Le(static_cast<uint32_t>(exif.size()), 4) + exif;
  return "RIFF" + Le(static_cast<uint32_t>(4 + chunks.size()), 4) + "WEBP" + chunks;
}

// A JPEG segment: marker, big-endian length, payload.
std::string JpegSegment(uint8_t marker, const std::string& payload) {
  return std::string("\xFF", 1) + std::string(1, static_cast<char>(marker)) + Be(static_cast<uint32_t>(payload.size() + 2), 2) + payload;
}

uint32_t Crc32(const std::string& b) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char x : b) {
    c ^= x;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

// `png` with a chunk of `type` inserted after IHDR (CRC right).
std::string PngWithChunk(const std::string& png, const std::string& type, const std::string& data) {
  const size_t after_ihdr = 8 + 12 + 13;
  return png.substr(0, after_ihdr) + Be(static_cast<uint32_t>(data.size()), 4) + type + data + Be(Crc32(type + data), 4) +
         png.substr(after_ihdr);
}

// A picture whose top left corner is marked, so turns and mirrors show.
cv::Mat MarkedPicture() {
  cv::Mat image(30, 50, CV_8UC3, cv::Scalar(0, 0, 0));
  cv::rectangle(image, cv::Rect(0, 0, 10, 5), cv::Scalar(255, 255, 255), cv::FILLED);
  return image;
}

cv::Mat Turned(const cv::Mat& image) {
  cv::Mat out;
  cv::rotate(image, out, cv::ROTATE_90_CLOCKWISE);
  return out;
}

TEST_CASE("a WebP's EXIF orientation is applied, as a JPEG's is") {
  const cv::Mat image = MarkedPicture();
  std::vector<uchar> buf;
  REQUIRE(cv::imencode(".webp", image, buf, {cv::IMWRITE_WEBP_QUALITY, 101}));
  const std::string webp(buf.begin(), buf.end());
  REQUIRE(webp.compare(12, 4, "VP8L") == 0);
  auto upright = DecodeImage(WebpWithOrientation(webp, 50, 30, 1));
  REQUIRE_MESSAGE(upright.ok(), upright.status().ToString());
  CHECK(cv::norm(*upright, image, cv::NORM_INF) == 0);
  auto turned = DecodeImage(WebpWithOrientation(webp, 50, 30, 6));  // "rotate 90 degrees clockwise to view"
  REQUIRE(turned.ok());
  CHECK(cv::norm(*turned, Turned(image), cv::NORM_INF) == 0);
  auto mirrored = DecodeImage(WebpWithOrientation(webp, 50, 30, 2));
  REQUIRE(mirrored.ok());
  cv::Mat expected;
  cv::flip(image, expected, 1);
  CHECK(cv::norm(*mirrored, expected, cv::NORM_INF) == 0);
}

TEST_CASE("a JPEG's orientation is applied when an XMP segment comes before its EXIF segment") {
  // OpenCV 4.6 reads only the first APP1 segment; phones and editors often write XMP first. A
  // sideways photo then stayed sideways, and the detector misses sideways faces.
  const std::string jpg = Encode(MarkedPicture(), ".jpg");
  const cv::Mat plain = *DecodeImage(jpg);
  const std::string xmp = JpegSegment(0xE1, std::string("http://ns.adobe.com/xap/1.0/\0", 29) + "<x:xmpmeta/>");
  const std::string exif = JpegSegment(0xE1, std::string("Exif\0\0", 6) + ExifTiff(6));
  for (const std::string& segments : {exif, xmp + exif}) {
    const std::string file = jpg.substr(0, 2) + segments + jpg.substr(2);
    auto turned = DecodeImage(file);
    REQUIRE_MESSAGE(turned.ok(), turned.status().ToString());
    CHECK(turned->size() == cv::Size(30, 50));
    CHECK(cv::norm(*turned, Turned(plain), cv::NORM_INF) == 0);
    if (segments == exif) {  // where OpenCV's own reading is right, it gives the same pixels
      const std::vector<uchar> bytes(file.begin(), file.end());
      CHECK(cv::norm(*turned, cv::imdecode(bytes, cv::IMREAD_COLOR), cv::NORM_INF) == 0);
    }
  }
  // An EXIF segment that is not the first one with "Exif" is not read; a broken one means upright.
  const std::string broken = JpegSegment(0xE1, std::string("Exif\0\0", 6) + "garbage");
  auto upright = DecodeImage(jpg.substr(0, 2) + broken + exif + jpg.substr(2));
  REQUIRE(upright.ok());
  CHECK(cv::norm(*upright, plain, cv::NORM_INF) == 0);
}

TEST_CASE("a PNG's eXIf orientation is applied") {
  const cv::Mat image = MarkedPicture();
  const std::string png = PngWithChunk(Encode(image, ".png"), "eXIf", ExifTiff(6));
  auto turned = DecodeImage(png);
  REQUIRE_MESSAGE(turned.ok(), turned.status().ToString());
  CHECK(cv::norm(*turned, Turned(image), cv::NORM_INF) == 0);
}

TEST_CASE("transparent pixels are flattened onto white: what lies under them never shows") {
  // Red stored under fully transparent pixels (an erased part of a picture), half-transparent
  // blue, and opaque green.
  cv::Mat rgba(20, 30, CV_8UC4, cv::Scalar(0, 0, 255, 0));
  rgba(cv::Rect(10, 0, 10, 20)).setTo(cv::Scalar(255, 0, 0, 128));
  rgba(cv::Rect(20, 0, 10, 20)).setTo(cv::Scalar(0, 255, 0, 255));
  std::vector<uchar> buf;
  REQUIRE(cv::imencode(".webp", rgba, buf, {cv::IMWRITE_WEBP_QUALITY, 101}));
  const std::string webp(buf.begin(), buf.end());
  for (const std::string& file : {Encode(rgba, ".png"), webp, Encode(rgba, ".tif")}) {
    CAPTURE(file.substr(0, 4));
    auto flat = DecodeImage(file);
    REQUIRE_MESSAGE(flat.ok(), flat.status().ToString());
    REQUIRE(flat->type() == CV_8UC3);
    CHECK(flat->at<cv::Vec3b>(5, 5) == cv::Vec3b(255, 255, 255));
    const cv::Vec3b half = flat->at<cv::Vec3b>(5, 15);  // 255 * 128/255 + 255 * 127/255 in blue
    CHECK(half[0] == 255);
    CHECK(std::abs(half[1] - 127) <= 1);
    CHECK(std::abs(half[2] - 127) <= 1);
    CHECK(flat->at<cv::Vec3b>(5, 25) == cv::Vec3b(0, 255, 0));
  }
  // A WebP whose extended header leaves the alpha flag out, around a lossless bitstream with alpha:
  // viewers (libwebp) show it transparent, OpenCV would not: refused.
  REQUIRE(webp.compare(12, 4, "VP8L") == 0);
  std::string hidden = "VP8X" + Le(10, 4) + std::string(4, '\0') + Le(30 - 1, 3) + Le(20 - 1, 3) + webp.substr(12);
  hidden = "RIFF" + Le(static_cast<uint32_t>(4 + hidden.size()), 4) + "WEBP" + hidden;
  CHECK(DecodeImage(hidden).status().code() == StatusCode::kUnsupported);
  // An alpha channel that is opaque everywhere changes nothing.
  cv::Mat opaque;
  cv::cvtColor(MarkedPicture(), opaque, cv::COLOR_BGR2BGRA);
  auto same = DecodeImage(Encode(opaque, ".png"));
  REQUIRE(same.ok());
  CHECK(cv::norm(*same, MarkedPicture(), cv::NORM_INF) == 0);
  // A palette PNG's transparency (tRNS) is flattened too: colour type 3 with one transparent entry.
  const cv::Mat grey(4, 4, CV_8UC3, cv::Scalar(90, 90, 90));
  const std::string plte = std::string(3, '\x5a');
  std::string indexed = "\x89PNG\r\n\x1a\n";
  const std::string ihdr = Be(4, 4) + Be(4, 4) + std::string("\x08\x03\0\0\0", 5);
  indexed += Be(13, 4) + "IHDR" + ihdr + Be(Crc32("IHDR" + ihdr), 4);
  indexed += Be(3, 4) + "PLTE" + plte + Be(Crc32("PLTE" + plte), 4);
  indexed += Be(1, 4) + std::string("tRNS") + std::string(1, '\0') + Be(Crc32(std::string("tRNS") + std::string(1, '\0')), 4);
  // Four rows of filter byte 0 and four palette indices 0, stored (uncompressed deflate block).
  const std::string raw(20, '\0');
  std::string zlib = std::string("\x78\x01\x01", 3) + Le(20, 2) + Le(0xFFFF ^ 20, 2) + raw;
  uint32_t a = 1, b = 0;
  for (unsigned char x : raw) a = (a + x) % 65521, b = (b + a) % 65521;
  zlib += Be(b << 16 | a, 4);
  indexed += Be(static_cast<uint32_t>(zlib.size()), 4) + "IDAT" + zlib + Be(Crc32("IDAT" + zlib), 4);
  indexed += Be(0, 4) + "IEND" + Be(Crc32("IEND"), 4);
  const std::vector<uchar> indexed_bytes(indexed.begin(), indexed.end());
  REQUIRE(cv::norm(cv::imdecode(indexed_bytes, cv::IMREAD_COLOR), grey, cv::NORM_INF) == 0);  // what lies under
  auto white = DecodeImage(indexed);
  REQUIRE_MESSAGE(white.ok(), white.status().ToString());
  CHECK(cv::norm(*white, cv::Mat(4, 4, CV_8UC3, cv::Scalar::all(255)), cv::NORM_INF) == 0);
}

TEST_CASE("a valid image decodes to 8-bit BGR of its header's size") {
  const cv::Mat image(21, 34, CV_8UC3, cv::Scalar(5, 6, 7));
  for (const char* ext : {".png", ".tif"}) {
    CAPTURE(ext);
    auto r = DecodeImage(Encode(image, ext));
    REQUIRE(r.ok());
    CHECK(r->size() == cv::Size(34, 21));
    CHECK(r->type() == CV_8UC3);
    CHECK(cv::norm(*r, image, cv::NORM_INF) == 0);  // both lossless
  }
}

TEST_CASE("an image without faces is an empty result, for both detectors") {
  const cv::Mat blank(480, 640, CV_8UC3, cv::Scalar(128, 128, 128));
  for (DetectorKind kind : {DetectorKind::kTiny, DetectorKind::kSsd}) {
    FaceDetectorParams p;
    p.models_dir = testing::ModelsDir().string();
    p.kind = kind;
    auto d = FaceDetector::Create(p);
    REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    auto faces = (*d)->Detect(blank);
    REQUIRE(faces.ok());
    CHECK(faces->empty());
    CHECK((*d)->Detect(cv::Mat()).status().code() == StatusCode::kInvalidArgument);
    CHECK((*d)->Detect(cv::Mat(4, 4, CV_32FC3)).status().code() == StatusCode::kInvalidArgument);
    CHECK((*d)->Detect(cv::Mat(1, 1, CV_8UC3, cv::Scalar(0, 0, 0))).ok());
  }
}

TEST_CASE("bad detector options are refused") {
  FaceDetectorParams p;
  p.models_dir = testing::ModelsDir().string();
  p.tiny_input_size = 100;
  CHECK(FaceDetector::Create(p).status().code() == StatusCode::kInvalidArgument);
  p.tiny_input_size = 416;
  p.score_threshold = 1.5f;
  CHECK(FaceDetector::Create(p).status().code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace veil::engine
