#include "test_support.h"

#include <doctest/doctest.h>

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

}  // namespace veil::engine::testing
