#include "test_support.h"

#include <doctest/doctest.h>

#include <stdlib.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <opencv2/imgproc.hpp>

#include "veil/engine/image_io.h"

namespace veil::engine::testing {

std::filesystem::path ModelsDir() {
  const char* env = std::getenv("VEIL_FACE_API_DIR");
  std::filesystem::path dir = env && *env ? env : VEIL_TEST_FACE_API_MODELS_DIR;
  if (!std::filesystem::exists(dir / "face_recognition_model-weights_manifest.json")) {
    FAIL("face-api models not found in " << dir.string()
                                         << ": run tools/fetch_face_api.sh (or set VEIL_FACE_API_DIR)");
  }
  return dir;
}

std::filesystem::path DemoDir() { return ModelsDir().parent_path() / "demo"; }

const nlohmann::json& Golden() {
  static const nlohmann::json golden = [] {
    std::ifstream in(std::filesystem::path(VEIL_TEST_GOLDEN_DIR) / "face_api_golden.json");
    REQUIRE_MESSAGE(in.good(), "tests/engine/golden/face_api_golden.json is missing");
    return nlohmann::json::parse(in);
  }();
  return golden;
}

FaceDetector& SsdDetector() {
  static std::unique_ptr<FaceDetector> detector = [] {
    FaceDetectorParams p;
    p.models_dir = ModelsDir().string();
    auto created = FaceDetector::Create(p);
    REQUIRE_MESSAGE(created.ok(), created.status().ToString());
    return std::move(*created);
  }();
  return *detector;
}

const cv::Mat& DemoImage(const std::string& name) {
  static std::map<std::string, cv::Mat> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  auto image = ReadImage((DemoDir() / name).string());
  REQUIRE_MESSAGE(image.ok(), image.status().ToString());
  return cache[name] = *image;
}

uint32_t RgbFnv1a32(const cv::Mat& bgr) {
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  uint32_t h = 0x811c9dc5u;
  for (int y = 0; y < rgb.rows; ++y) {
    const uint8_t* p = rgb.ptr<uint8_t>(y);
    for (int i = 0; i < rgb.cols * 3; ++i) h = (h ^ p[i]) * 0x01000193u;
  }
  return h;
}

TestStore::TestStore(char fill, uint32_t approvals)
    : a_(keys::PrincipalKey::Generate("a")), b_(keys::PrincipalKey::Generate("b")) {
  dir_ = (std::filesystem::temp_directory_path() / "veil-test-store-XXXXXX").string();
  REQUIRE(::mkdtemp(dir_.data()) != nullptr);
  std::string k(32, fill);
  auto s = keys::KeyStore::Create(dir_ + "/store", keys::Credential::FromRawKey(keys::SecretBytes::Copy(k.data(), 32)),
                                  {1, 8192}, "test", "default", approvals);
  REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  store_ = std::move(s.value());
  REQUIRE(store_->AddPrincipal("a", keys::Role::kApprover, a_.public_key()).ok());
  REQUIRE(store_->AddPrincipal("b", keys::Role::kApprover, b_.public_key()).ok());
  REQUIRE(store_->AddPrincipal("op", keys::Role::kOperator, keys::PrincipalKey::Generate("op").public_key()).ok());
}

TestStore::~TestStore() {
  store_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

keys::KeyHandle TestStore::Key() {
  auto k = store_->KeyForNewWork("default", "test");
  REQUIRE(k.ok());
  return std::move(k.value());
}

keys::RestoreGrant TestStore::Grant(const std::string& file_bytes) {
  keys::RestoreRequestSpec spec{"default", 0, {keys::Sha256(file_bytes)}, "case", "test", "op", kNow + 60};
  auto r = store_->CreateRequest(spec, kNow);
  REQUIRE(r.ok());
  r->Approve(a_, kNow);
  r->Approve(b_, kNow);
  auto g = store_->AuthorizeRestore(*r, kNow);
  REQUIRE_MESSAGE(g.ok(), g.status().ToString());
  return std::move(g.value());
}

}  // namespace veil::engine::testing
