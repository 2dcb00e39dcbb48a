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

// `webp` (a simple lossless file, one VP8L chunk) in the extended format, with an EXIF chunk that
// holds `orientation` (big-endian TIFF, as phones write it).
std::string WebpWithOrientation(const std::string& webp, int w, int h, uint16_t orientation) {
  auto le = [](uint32_t v, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
    return s;
  };
  std::string exif = std::string("MM\0\x2a\0\0\0\x08", 8) + std::string("\0\x01", 2) +       // header, IFD0: one entry
                     std::string("\x01\x12\0\x03\0\0\0\x01", 8) +                           // Orientation, SHORT, 1
                     std::string(1, '\0') + std::string(1, static_cast<char>(orientation)) +       // its value
                     std::string(2, '\0') + std::string(4, '\0');                                 // padding, no next IFD
  std::string chunks = "VP8X" + le(10, 4) + std::string(1, '\x08') + std::string(3, '\0') + le(w - 1, 3) + le(h - 1, 3);
  chunks += webp.substr(12);  // the VP8L chunk
  chunks += "EXIF" + le(static_cast<uint32_t>(exif.size()), 4) + exif;
  return "RIFF" + le(static_cast<uint32_t>(4 + chunks.size()), 4) + "WEBP" + chunks;
}

TEST_CASE("a WebP's EXIF orientation is applied, as a JPEG's is") {
  cv::Mat image(30, 50, CV_8UC3, cv::Scalar(0, 0, 0));
  cv::rectangle(image, cv::Rect(0, 0, 10, 5), cv::Scalar(255, 255, 255), cv::FILLED);  // a corner marks the top left
  std::vector<uchar> buf;
  REQUIRE(cv::imencode(".webp", image, buf, {cv::IMWRITE_WEBP_QUALITY, 101}));
  const std::string webp(buf.begin(), buf.end());
  REQUIRE(webp.compare(12, 4, "VP8L") == 0);
  auto upright = DecodeImage(WebpWithOrientation(webp, 50, 30, 1));
  REQUIRE_MESSAGE(upright.ok(), upright.status().ToString());
  CHECK(cv::norm(*upright, image, cv::NORM_INF) == 0);
  auto turned = DecodeImage(WebpWithOrientation(webp, 50, 30, 6));  // "rotate 90 degrees clockwise to view"
  REQUIRE(turned.ok());
  cv::Mat expected;
  cv::rotate(image, expected, cv::ROTATE_90_CLOCKWISE);
  CHECK(cv::norm(*turned, expected, cv::NORM_INF) == 0);
  auto mirrored = DecodeImage(WebpWithOrientation(webp, 50, 30, 2));
  REQUIRE(mirrored.ok());
  cv::flip(image, expected, 1);
  CHECK(cv::norm(*mirrored, expected, cv::NORM_INF) == 0);
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
