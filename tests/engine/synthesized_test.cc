// Keyed pseudonym faces through the whole pipeline, with the shipped identity models (models/).
#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>

#include <opencv2/imgcodecs.hpp>

#include "test_support.h"
#include "veil/engine/pipeline.h"
#include "veil/engine/recognizer.h"
#include "veil/keys/key_store.h"
#include "veil/keys/principal_key.h"

using namespace veil;
using namespace veil::engine;

namespace {

using Store = testing::TestStore;

std::unique_ptr<Pipeline> Synthesizing() {
  PipelineParams p;
  p.models_dir = testing::ModelsDir().string();
  p.method = ReplaceMethod::kSynthesized;
  auto pipeline = Pipeline::Create(p);
  REQUIRE_MESSAGE(pipeline.ok(), pipeline.status().ToString());
  return std::move(pipeline.value());
}

cv::Mat Decode(const std::string& bytes) {
  return cv::imdecode(std::vector<uchar>(bytes.begin(), bytes.end()), cv::IMREAD_COLOR);
}

}  // namespace

TEST_CASE("synthesized faces: same key same bytes, another key other bytes, and the manifest names the models") {
  Store s('a'), t('b');
  auto pipeline = Synthesizing();
  const cv::Mat& input = testing::DemoImage("sample1.jpg");
  auto a1 = pipeline->AnonymizeImage(input, s.Key(), ".png");
  auto a2 = pipeline->AnonymizeImage(input, s.Key(), ".png");
  auto b = pipeline->AnonymizeImage(input, t.Key(), ".png");
  REQUIRE_MESSAGE(a1.ok(), a1.status().ToString());
  REQUIRE((a2.ok() && b.ok()));
  CHECK(a1->image_bytes == a2->image_bytes);
  CHECK(a1->image_bytes != b->image_bytes);
  int synthesized = 0;
  for (const auto& f : a1->manifest.faces) synthesized += f.method == ReplaceMethod::kSynthesized;
  CHECK(synthesized == 3);
  std::vector<std::string> roles;
  for (const auto& m : a1->manifest.models) roles.push_back(m.role);
  for (const char* role : {"detector", "flow", "encoder", "generator", "recognizer"}) {
    CHECK(std::find(roles.begin(), roles.end(), role) != roles.end());
  }
  // The key changes the faces and nothing else. (How different the faces look is a property of the
  // weights, measured by `veil eval`, not asserted here.)
  cv::Mat da = Decode(a1->image_bytes), db = Decode(b->image_bytes);
  cv::Mat outside(da.size(), CV_8U, cv::Scalar(255));
  for (const auto& f : a1->manifest.faces) {
    CHECK(cv::norm(da(f.region), db(f.region), cv::NORM_L1) > 0);
    outside(f.region).setTo(0);
  }
  CHECK(cv::norm(da, db, cv::NORM_INF, outside) == 0);
  CHECK(cv::norm(da, input, cv::NORM_INF, outside) == 0);
}

TEST_CASE("synthesized faces restore exactly from their payloads, and approximately through the inverse flow") {
  Store s('c');
  auto pipeline = Synthesizing();
  const cv::Mat& input = testing::DemoImage("sample1.jpg");
  auto out = pipeline->AnonymizeImage(input, s.Key(), ".png");
  REQUIRE(out.ok());
  cv::Mat anonymized = Decode(out->image_bytes);
  auto grant = s.Grant(out->image_bytes);
  auto exact = RestoreFromPayloads(anonymized, out->manifest, grant);
  REQUIRE(exact.ok());
  CHECK(cv::norm(exact->image, input, cv::NORM_INF) == 0);
  auto approx = pipeline->RestoreApproximate(anonymized, out->manifest, grant);
  REQUIRE_MESSAGE(approx.ok(), approx.status().ToString());
  CHECK(approx->faces_restored + approx->faces_without_payload == 3);
  CHECK(approx->faces_restored >= 1);  // the pseudonyms are found again as faces
}
