// The TF.js weights-manifest loader: real face-api files load; truncated, padded, altered,
// renamed or reshaped ones are refused with DataLoss.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "test_support.h"
#include "veil/engine/face_detector.h"
#include "veil/engine/tfjs_weights.h"
#include "veil/keys/fs.h"

namespace veil::engine {
namespace {

namespace fs = std::filesystem;

// A scratch copy of one model's two files, removed at the end of the test.
struct ModelCopy {
  explicit ModelCopy(const std::string& name) : model(name) {
    dir = fs::temp_directory_path() / ("veil-tfjs-" + std::to_string(::getpid()) + "-" + model);
    fs::create_directories(dir);
    for (const char* suffix : {"-weights_manifest.json", ".bin"}) {
      fs::copy_file(testing::ModelsDir() / (model + suffix), dir / (model + suffix), fs::copy_options::overwrite_existing);
    }
  }
  ~ModelCopy() { fs::remove_all(dir); }
  std::string Read(const std::string& suffix) const { return *keys::ReadFile((dir / (model + suffix)).string()); }
  void Write(const std::string& suffix, const std::string& bytes) const {
    std::ofstream(dir / (model + suffix), std::ios::binary | std::ios::trunc) << bytes;
  }
  std::string model;
  fs::path dir;
};

TEST_CASE("the four face-api models load with the expected tensor counts") {
  const std::pair<const char*, size_t> models[] = {{"face_recognition_model", 117},
                                                   {"tiny_face_detector_model", 19},
                                                   {"face_landmark_68_model", 49},
                                                   {"ssd_mobilenetv1_model", 151}};
  for (const auto& [model, count] : models) {
    auto w = TfjsWeights::Load(testing::ModelsDir(), model);
    REQUIRE_MESSAGE(w.ok(), w.status().ToString());
    CHECK(w->size() == count);
  }
}

TEST_CASE("uint8 quantized values decode as q * scale + min; float32 and int32 are read raw") {
  const std::string manifest = R"([{"paths": ["a.bin"], "weights": [
      {"name": "q", "shape": [3], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1}},
      {"name": "f", "shape": [1], "dtype": "float32"},
      {"name": "i", "shape": [], "dtype": "int32"}]}])";
  std::string bin = {'\x00', '\x02', '\xff'};
  const float f = 3.25f;
  const int32_t i = -7;
  bin.append(reinterpret_cast<const char*>(&f), 4).append(reinterpret_cast<const char*>(&i), 4);
  auto w = TfjsWeights::Parse(manifest, {{"a.bin", bin}});
  REQUIRE_MESSAGE(w.ok(), w.status().ToString());
  auto q = w->Take("q", {3});
  REQUIRE(q.ok());
  CHECK((*q)->values == std::vector<float>{-1.0f, 0.0f, 126.5f});
  CHECK((*w->Take("f", {1}))->values[0] == 3.25f);
  CHECK((*w->Take("i", {}))->values[0] == -7.0f);
  CHECK(w->CheckAllTaken().ok());
}

TEST_CASE("float16 values decode exactly: normal, subnormal, zero, negative, infinity") {
  const std::string manifest = R"([{"paths": ["h.bin"], "weights": [
      {"name": "h", "shape": [6], "dtype": "float32", "quantization": {"dtype": "float16", "original_dtype": "float32"}}]}])";
  // 1.0, -2.5, 65504 (largest), 2^-24 (smallest subnormal), -0.0, +inf; little-endian.
  const uint16_t halves[6] = {0x3c00, 0xc100, 0x7bff, 0x0001, 0x8000, 0x7c00};
  const std::string bin(reinterpret_cast<const char*>(halves), sizeof(halves));
  auto w = TfjsWeights::Parse(manifest, {{"h.bin", bin}});
  REQUIRE_MESSAGE(w.ok(), w.status().ToString());
  const auto& v = (*w->Take("h", {6}))->values;
  CHECK(v[0] == 1.0f);
  CHECK(v[1] == -2.5f);
  CHECK(v[2] == 65504.0f);
  CHECK(v[3] == std::ldexp(1.0f, -24));
  CHECK((v[4] == 0.0f && std::signbit(v[4])));
  CHECK(std::isinf(v[5]));
  // A float16 shard one byte short is truncated.
  CHECK(TfjsWeights::Parse(manifest, {{"h.bin", bin.substr(1)}}).status().code() == StatusCode::kDataLoss);
}

TEST_CASE("a manifest asking for more bytes than the shard holds is refused as truncated") {
  const std::string manifest = R"([{"paths": ["a.bin"], "weights": [{"name": "f", "shape": [2], "dtype": "float32"}]}])";
  auto w = TfjsWeights::Parse(manifest, {{"a.bin", std::string(7, '\0')}});
  CHECK(w.status().code() == StatusCode::kDataLoss);
  CHECK(w.status().message().find("truncated") != std::string::npos);
}

TEST_CASE("extra bytes after the last tensor are refused") {
  const std::string manifest = R"([{"paths": ["a.bin"], "weights": [{"name": "f", "shape": [1], "dtype": "float32"}]}])";
  CHECK(TfjsWeights::Parse(manifest, {{"a.bin", std::string(5, '\0')}}).status().code() == StatusCode::kDataLoss);
}

TEST_CASE("malformed manifests are refused: not JSON, unknown dtype, duplicate name, missing shard") {
  CHECK(TfjsWeights::Parse("{not json", {}).status().code() == StatusCode::kDataLoss);
  CHECK(TfjsWeights::Parse(R"([{"paths": ["a.bin"], "weights": [{"name": "f", "shape": [1], "dtype": "float16"}]}])",
                           {{"a.bin", "ab"}}).status().code() == StatusCode::kDataLoss);
  CHECK(TfjsWeights::Parse(R"([{"paths": ["a.bin"], "weights": [{"name": "f", "shape": [1], "dtype": "int32"},
                              {"name": "f", "shape": [1], "dtype": "int32"}]}])",
                           {{"a.bin", std::string(8, '\0')}}).status().code() == StatusCode::kDataLoss);
  CHECK(TfjsWeights::Parse(R"([{"paths": ["b.bin"], "weights": []}])", {}).status().code() == StatusCode::kDataLoss);
}

TEST_CASE("a truncated weights file is refused, with and without checksum verification") {
  ModelCopy copy("tiny_face_detector_model");
  const std::string bin = copy.Read(".bin");
  copy.Write(".bin", bin.substr(0, bin.size() - 100));
  auto checked = TfjsWeights::Load(copy.dir, copy.model, /*verify_checksums=*/true);
  CHECK(checked.status().code() == StatusCode::kDataLoss);
  auto unchecked = TfjsWeights::Load(copy.dir, copy.model, /*verify_checksums=*/false);
  CHECK(unchecked.status().code() == StatusCode::kDataLoss);
  CHECK(unchecked.status().message().find("truncated") != std::string::npos);
}

TEST_CASE("one altered byte in the weights is caught by the pinned SHA-256") {
  ModelCopy copy("tiny_face_detector_model");
  std::string bin = copy.Read(".bin");
  bin[bin.size() / 2] ^= 0x01;
  copy.Write(".bin", bin);
  auto w = TfjsWeights::Load(copy.dir, copy.model);
  CHECK(w.status().code() == StatusCode::kDataLoss);
  CHECK(w.status().message().find("SHA-256") != std::string::npos);
}

TEST_CASE("a renamed or reshaped tensor is refused by the network that loads it") {
  ModelCopy copy("tiny_face_detector_model");
  std::string manifest = copy.Read("-weights_manifest.json");
  FaceDetectorParams p;
  p.models_dir = copy.dir.string();
  p.kind = DetectorKind::kTiny;
  p.with_landmarks = false;
  p.verify_checksums = false;
  REQUIRE(FaceDetector::Create(p).ok());

  std::string renamed = manifest;
  renamed.replace(renamed.find("conv8/bias"), 10, "conv9/bias");
  copy.Write("-weights_manifest.json", renamed);
  auto r = FaceDetector::Create(p);
  CHECK(r.status().code() == StatusCode::kDataLoss);
  CHECK(r.status().message().find("conv8/bias") != std::string::npos);

  // conv8/filters [1,1,512,25] -> [1,1,25,512]: same byte count, wrong shape.
  std::string reshaped = manifest;
  const size_t at = reshaped.find("[1, 1, 512, 25]") != std::string::npos ? reshaped.find("[1, 1, 512, 25]")
                                                                           : reshaped.find("[1,1,512,25]");
  REQUIRE(at != std::string::npos);
  reshaped.replace(at, reshaped.find(']', at) - at + 1, "[1,1,25,512]");
  copy.Write("-weights_manifest.json", reshaped);
  auto s = FaceDetector::Create(p);
  CHECK(s.status().code() == StatusCode::kDataLoss);
  CHECK(s.status().message().find("shape") != std::string::npos);
}

TEST_CASE("a missing model folder is NotFound and says how to fetch the models") {
  auto w = TfjsWeights::Load("/nonexistent/veil-models", "face_recognition_model");
  CHECK(w.status().code() == StatusCode::kNotFound);
  CHECK(w.status().message().find("fetch_face_api.sh") != std::string::npos);
}

}  // namespace
}  // namespace veil::engine
