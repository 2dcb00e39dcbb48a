// FaceRenderer (E + G): shapes, determinism, the FLOP budget, and the model-file round trip.
// Untrained (seeded) networks: these tests check the machinery, not the quality of the faces,
// which the trainer measures on held-out images (models/README.md).
#include <doctest/doctest.h>

#include <filesystem>
#include <random>

#include <unistd.h>

#include <opencv2/core.hpp>

#include "veil/engine/face_renderer.h"

namespace veil::engine {
namespace {

std::vector<cv::Mat> RandomCrops(int n, uint32_t seed) {
  cv::RNG rng(seed);
  std::vector<cv::Mat> crops;
  for (int i = 0; i < n; ++i) {
    cv::Mat m(FaceRenderer::kCropSize, FaceRenderer::kCropSize, CV_8UC3);
    rng.fill(m, cv::RNG::UNIFORM, 0, 256);
    crops.push_back(m);
  }
  return crops;
}

std::vector<Descriptor> RandomCodes(int n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 0.12f);
  std::vector<Descriptor> codes(n);
  for (auto& c : codes) for (float& v : c) v = normal(gen);
  return codes;
}

bool SameBits(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

TEST_CASE("the renderer maps 128x128 BGR crops and codes to 128x128 BGR crops, one per input") {
  auto r = FaceRenderer::CreateUntrained(7);
  REQUIRE(r.ok());
  auto out = (*r)->Render(RandomCrops(3, 1), RandomCodes(3, 2));
  REQUIRE(out.ok());
  REQUIRE(out->size() == 3);
  for (const cv::Mat& m : *out) {
    CHECK(m.rows == 128);
    CHECK(m.cols == 128);
    CHECK(m.type() == CV_8UC3);
  }
}

TEST_CASE("the renderer refuses mismatched counts and wrong crop sizes") {
  auto r = FaceRenderer::CreateUntrained(7);
  REQUIRE(r.ok());
  CHECK((*r)->Render(RandomCrops(2, 1), RandomCodes(1, 2)).status().code() == StatusCode::kInvalidArgument);
  std::vector<cv::Mat> wrong = {cv::Mat(150, 150, CV_8UC3, cv::Scalar::all(0))};
  CHECK((*r)->Render(wrong, RandomCodes(1, 2)).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("the same crops and codes give identical bits, and the identity changes the face") {
  auto r = FaceRenderer::CreateUntrained(11);
  REQUIRE(r.ok());
  const auto crops = RandomCrops(4, 5);
  const auto codes = RandomCodes(4, 6);
  auto a = (*r)->Render(crops, codes);
  auto b = (*r)->Render(crops, codes);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  for (size_t i = 0; i < a->size(); ++i) CHECK(SameBits(a->at(i), b->at(i)));
  auto other = (*r)->Render(crops, RandomCodes(4, 99));
  REQUIRE(other.ok());
  CHECK_FALSE(SameBits(a->at(0), other->at(0)));
}

TEST_CASE("E + G stay within the inference budget of 1.8 GFLOP per face") {
  auto r = FaceRenderer::CreateUntrained(1);
  REQUIRE(r.ok());
  const int64_t flops = (*r)->FlopsPerFace();
  MESSAGE("E + G: " << flops / 1e9 << " GFLOP per face");
  CHECK(flops > 500'000'000);    // the counter really counted the convolutions
  CHECK(flops <= 1'800'000'000);
}

TEST_CASE("saved model files load back into a renderer that renders the same faces") {
  const auto dir = std::filesystem::temp_directory_path() / ("veil_renderer_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string enc = (dir / "enc.veilmodel").string(), gen = (dir / "gen.veilmodel").string();
  auto r = FaceRenderer::CreateUntrained(3);
  REQUIRE(r.ok());
  FaceRendererSaveInfo info;
  info.fp16 = false;  // exact round trip
  info.info["note"] = "test";
  REQUIRE((*r)->Save(enc, gen, info).ok());
  CHECK((*r)->Save(enc, gen, info).code() == StatusCode::kAlreadyExists);

  auto loaded = FaceRenderer::Create({.encoder_path = enc, .generator_path = gen});
  REQUIRE(loaded.ok());
  const auto crops = RandomCrops(2, 8);
  const auto codes = RandomCodes(2, 9);
  auto a = (*r)->Render(crops, codes);
  auto b = (*loaded)->Render(crops, codes);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  for (size_t i = 0; i < a->size(); ++i) CHECK(SameBits(a->at(i), b->at(i)));

  // The encoder file is not a generator.
  auto swapped = FaceRenderer::Create({.encoder_path = gen, .generator_path = enc});
  CHECK(swapped.status().code() == StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace veil::engine

namespace veil::engine {
namespace {

TEST_CASE("the shipped encoder and generator load and render deterministically") {
  // The models are shipped in models/: missing ones are a broken checkout, not a reason to skip.
  REQUIRE(std::filesystem::exists(DefaultEncoderModelPath()));
  REQUIRE(std::filesystem::exists(DefaultGeneratorModelPath()));
  auto r = FaceRenderer::Create({});
  REQUIRE(r.ok());
  const auto crops = RandomCrops(2, 3);
  const auto codes = RandomCodes(2, 4);
  auto a = (*r)->Render(crops, codes);
  auto b = (*r)->Render(crops, codes);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  for (size_t i = 0; i < a->size(); ++i) CHECK(SameBits(a->at(i), b->at(i)));
  CHECK((*r)->FlopsPerFace() <= 1'800'000'000);
}

}  // namespace
}  // namespace veil::engine
