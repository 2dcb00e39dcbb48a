// Untrusted image input: bad files give a Status with a clear message, never a crash, and an image
// without faces is an ordinary empty result.
#include <doctest/doctest.h>

#include <opencv2/imgcodecs.hpp>

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
