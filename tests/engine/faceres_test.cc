// The second, measuring-only recognizer (human's FaceRes): loads only the pinned files, and tells a
// face and its mirror image apart from two different people.
#include <doctest/doctest.h>

#include <filesystem>
#include <unistd.h>

#include <opencv2/core.hpp>

#include "test_support.h"
#include "veil/engine/face_detector.h"
#include "veil/engine/faceres.h"
#include "veil/keys/fs.h"

namespace veil::engine {
namespace {

namespace fs = std::filesystem;

std::unique_ptr<FaceResRecognizer> Load() {
  auto r = FaceResRecognizer::Create({});
  REQUIRE_MESSAGE(r.ok(), r.status().ToString(), " (run tools/fetch_human.sh)");
  return std::move(r.value());
}

}  // namespace

TEST_CASE("FaceRes places a face and its mirror image together and different people apart") {
  auto r = Load();
  FaceDetector& detector = testing::SsdDetector();
  const cv::Mat& photo = testing::DemoImage("sample1.jpg");
  auto faces = detector.Detect(photo);
  REQUIRE(faces.ok());
  REQUIRE(faces->size() == 3);
  std::vector<cv::Mat> crops;
  for (const auto& f : *faces) crops.push_back(photo(cv::Rect(f.box) & cv::Rect(0, 0, photo.cols, photo.rows)).clone());
  cv::Mat mirrored;
  cv::flip(crops[0], mirrored, 1);
  crops.push_back(mirrored);
  auto d = r->Describe(crops);
  REQUIRE_MESSAGE(d.ok(), d.status().ToString());
  REQUIRE(d->size() == 4);
  for (const auto& v : *d) {
    double norm = 0;
    for (float x : v) norm += x * x;
    CHECK(norm == doctest::Approx(1.0).epsilon(1e-4));
  }
  const float same = FaceResDistance((*d)[0], (*d)[3]);
  CHECK(same < 0.5f);
  CHECK(same < FaceResDistance((*d)[0], (*d)[1]) - 0.3f);
  CHECK(same < FaceResDistance((*d)[0], (*d)[2]) - 0.3f);
  // Deterministic: the same crops give the same bits.
  auto again = r->Describe(crops);
  REQUIRE(again.ok());
  CHECK((*again)[0] == (*d)[0]);
}

TEST_CASE("FaceRes refuses altered model files and says how to fetch missing ones") {
  const fs::path src = DefaultHumanModelsDir();
  const fs::path dir = fs::temp_directory_path() / ("veil-faceres-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const char* f : {"faceres.json", "faceres.bin"}) fs::copy_file(src / f, dir / f, fs::copy_options::overwrite_existing);
  std::string bin = *keys::ReadFile((dir / "faceres.bin").string());
  bin[1000] ^= 0x01;
  REQUIRE(keys::WriteFileAtomic((dir / "faceres.bin").string(), bin, true).ok());
  CHECK(FaceResRecognizer::Create({dir.string()}).status().code() == StatusCode::kDataLoss);
  auto missing = FaceResRecognizer::Create({(dir / "nowhere").string()});
  CHECK(missing.status().code() == StatusCode::kNotFound);
  CHECK(missing.status().message().find("fetch_human.sh") != std::string::npos);
  fs::remove_all(dir);
}

}  // namespace veil::engine
