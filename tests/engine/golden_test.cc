// The C++ port against the original JavaScript face-api (tfjs 4.22.0, wasm backend) on the six demo
// photos: tools/golden/make_golden.sh wrote the vectors; the inputs here are the same pixels.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <opencv2/imgproc.hpp>

#include "test_support.h"
#include "veil/engine/face_detector.h"
#include "veil/engine/recognizer.h"

namespace veil::engine {
namespace {

using testing::DemoImage;
using testing::Golden;

cv::Rect RectOf(const nlohmann::json& r) {
  return {r["x"].get<int>(), r["y"].get<int>(), r["width"].get<int>(), r["height"].get<int>()};
}
cv::Rect2f BoxOf(const nlohmann::json& r) {
  return {r["x"].get<float>(), r["y"].get<float>(), r["width"].get<float>(), r["height"].get<float>()};
}

FaceDetector& Detector(DetectorKind kind) {
  static std::unique_ptr<FaceDetector> detectors[2];
  auto& d = detectors[kind == DetectorKind::kTiny ? 1 : 0];
  if (!d) {
    FaceDetectorParams p;
    p.models_dir = testing::ModelsDir().string();
    p.kind = kind;
    auto created = FaceDetector::Create(p);
    REQUIRE_MESSAGE(created.ok(), created.status().ToString());
    d = std::move(created).value();
  }
  return *d;
}

void CheckBoxes(DetectorKind kind, const char* key) {
  float worst_iou = 1, worst_score = 0;
  for (const auto& img : Golden()["images"]) {
    const cv::Mat& image = DemoImage(img["name"]);
    auto boxes = Detector(kind).DetectBoxes(image);
    REQUIRE(boxes.ok());
    const auto& expected = img[key];
    INFO(img["name"].get<std::string>() << " " << key);
    REQUIRE(boxes->size() == expected.size());
    for (const auto& e : expected) {
      float best = 0, score_diff = 1;
      for (const FaceBox& b : *boxes) {
        const float iou = BoxIou(b.box, BoxOf(e["box"]));
        if (iou > best) best = iou, score_diff = std::abs(b.score - e["score"].get<float>());
      }
      CHECK(best >= 0.98f);
      CHECK(score_diff < 0.01f);
      worst_iou = std::min(worst_iou, best);
      worst_score = std::max(worst_score, score_diff);
    }
  }
  MESSAGE(std::string(key) << ": worst box IoU " << worst_iou << ", worst score difference " << worst_score);
}

TEST_SUITE("golden") {

TEST_CASE("the demo photos decode to the pixels the JavaScript reference saw") {
  for (const auto& img : Golden()["images"]) {
    const cv::Mat& image = DemoImage(img["name"]);
    CHECK(image.cols == img["width"].get<int>());
    CHECK(image.rows == img["height"].get<int>());
    CHECK(testing::RgbFnv1a32(image) == img["rgb_fnv1a32"].get<uint32_t>());
  }
}

TEST_CASE("tiny face detector finds the same faces as face-api (IoU >= 0.98)") {
  CheckBoxes(DetectorKind::kTiny, "tiny");
}

TEST_CASE("SSD MobileNet v1 finds the same faces as face-api (IoU >= 0.98)") {
  CheckBoxes(DetectorKind::kSsd, "ssd");
}

TEST_CASE("68 landmarks are within 0.5 px of face-api's on the same crops") {
  double worst = 0;
  size_t faces = 0;
  for (const auto& img : Golden()["images"]) {
    std::vector<cv::Rect> crops;
    for (const auto& f : img["faces"]) crops.push_back(RectOf(f["landmark_crop"]));
    auto marks = Detector(DetectorKind::kTiny).LandmarksForCrops(DemoImage(img["name"]), crops);
    REQUIRE(marks.ok());
    REQUIRE(marks->size() == crops.size());
    for (size_t i = 0; i < crops.size(); ++i) {
      const auto& expected = img["faces"][i]["landmarks_in_crop"];
      for (int k = 0; k < 68; ++k) {
        const double dx = (*marks)[i][k].x - (expected[k][0].get<double>() + crops[i].x);
        const double dy = (*marks)[i][k].y - (expected[k][1].get<double>() + crops[i].y);
        worst = std::max(worst, std::hypot(dx, dy));
      }
      ++faces;
    }
  }
  MESSAGE("landmarks: " << faces << " faces, worst point distance " << worst << " px");
  CHECK(faces >= 30);
  CHECK(worst <= 0.5);
}

TEST_CASE("descriptors are within 1e-4 (L2) of face-api's on the same crops, at batch 1 and batched") {
  RecognizerParams p;
  p.models_dir = testing::ModelsDir().string();
  auto rec = Recognizer::Create(p);
  REQUIRE_MESSAGE(rec.ok(), rec.status().ToString());
  double worst = 0, worst_single = 0;
  size_t faces = 0;
  for (const auto& img : Golden()["images"]) {
    std::vector<cv::Rect> crops;
    for (const auto& f : img["faces"]) crops.push_back(RectOf(f["descriptor_crop"]));
    const cv::Mat& image = DemoImage(img["name"]);
    auto codes = (*rec)->DescribeCrops(image, crops);
    REQUIRE(codes.ok());
    REQUIRE(codes->size() == crops.size());
    for (size_t i = 0; i < crops.size(); ++i) {
      Descriptor expected;
      for (int k = 0; k < 128; ++k) expected[k] = img["faces"][i]["descriptor"][k].get<float>();
      worst = std::max<double>(worst, DescriptorDistance((*codes)[i], expected));
      ++faces;
    }
    auto single = (*rec)->DescribeCrops(image, {crops.front()});
    REQUIRE(single.ok());
    worst_single = std::max<double>(worst_single, DescriptorDistance(single->front(), codes->front()));
  }
  MESSAGE("descriptors: " << faces << " faces, worst L2 difference " << worst << ", batch-1 vs batched " << worst_single);
  CHECK(faces >= 30);
  CHECK(worst <= 1e-4);
  CHECK(worst_single <= 1e-4);
}

TEST_CASE("Detect() crops each SSD box like face-api and returns its landmarks and 5 derived points") {
  double worst = 0;
  for (const auto& img : Golden()["images"]) {
    auto faces = Detector(DetectorKind::kSsd).Detect(DemoImage(img["name"]));
    REQUIRE(faces.ok());
    REQUIRE(faces->size() == img["ssd"].size());
    // make_golden.mjs lists the SSD faces first, in detection order.
    for (size_t i = 0; i < faces->size(); ++i) {
      const Face& f = (*faces)[i];
      const auto& g = img["faces"][i];
      REQUIRE(f.has_landmarks);
      const cv::Rect crop = RectOf(g["landmark_crop"]);
      for (int k = 0; k < 68; ++k) {
        const cv::Point2f e(g["landmarks_in_crop"][k][0].get<float>() + crop.x,
                            g["landmarks_in_crop"][k][1].get<float>() + crop.y);
        worst = std::max<double>(worst, cv::norm(f.landmarks[k] - e));
      }
      cv::Point2f left_eye(0, 0);
      for (int k = 36; k < 42; ++k) left_eye += f.landmarks[k] * (1.0f / 6);
      CHECK(cv::norm(f.landmarks5[0] - left_eye) < 1e-3);
      CHECK(f.landmarks5[2] == f.landmarks[30]);
    }
  }
  CHECK(worst <= 0.5);
}

TEST_CASE("an image larger than max_input_side is downscaled and the faces come back in its own coordinates") {
  const cv::Mat& image = DemoImage("sample1.jpg");
  cv::Mat big;
  cv::resize(image, big, cv::Size(), 2.5, 2.5, cv::INTER_LINEAR);  // 4800 x 3200
  auto faces = Detector(DetectorKind::kSsd).Detect(big);
  REQUIRE(faces.ok());
  const auto& expected = Golden()["images"][0]["ssd"];
  REQUIRE(faces->size() == expected.size());
  for (size_t i = 0; i < faces->size(); ++i) {
    cv::Rect2f e = BoxOf(expected[i]["box"]);
    e = cv::Rect2f(e.x * 2.5f, e.y * 2.5f, e.width * 2.5f, e.height * 2.5f);
    CHECK(BoxIou((*faces)[i].box, e) > 0.9f);
  }
}

}  // TEST_SUITE
}  // namespace
}  // namespace veil::engine
