// Paths and fixtures shared by the engine tests.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "veil/engine/face_detector.h"
#include "veil/keys/key_store.h"
#include "veil/keys/principal_key.h"

namespace veil::engine::testing {

// The face-api model folder ($VEIL_FACE_API_DIR or the configured default). Fails the running test
// with "run tools/fetch_face_api.sh" when the models are missing.
std::filesystem::path ModelsDir();
// package/demo next to the models.
std::filesystem::path DemoDir();
// The golden vectors written by tools/golden/make_golden.sh.
const nlohmann::json& Golden();
// A demo photo decoded to BGR (cached).
const cv::Mat& DemoImage(const std::string& name);
// face-api's SSD MobileNet v1 detector (with landmarks) on ModelsDir(), created once per test
// binary; fails the running test when it cannot be created.
FaceDetector& SsdDetector();
// FNV-1a (32 bit) over the image's RGB bytes, as make_golden.mjs computes it.
uint32_t RgbFnv1a32(const cv::Mat& bgr);

// A throw-away key store (raw key of 32 x `fill`) in a temporary folder: approvers a and b (the
// keyring needs `approvals` of them) and operator op. Removed with the object.
class TestStore {
 public:
  static constexpr int64_t kNow = 1'900'000'000;
  explicit TestStore(char fill = 'p', uint32_t approvals = 2);
  ~TestStore();
  keys::KeyStore& store() { return *store_; }
  keys::KeyHandle Key();
  // A grant for a request naming SHA-256(file_bytes), approved by a and b.
  keys::RestoreGrant Grant(const std::string& file_bytes);

 private:
  std::string dir_;
  std::unique_ptr<keys::KeyStore> store_;
  keys::PrincipalKey a_, b_;
};

}  // namespace veil::engine::testing
