// Paths and fixtures shared by the engine tests.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

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
// FNV-1a (32 bit) over the image's RGB bytes, as make_golden.mjs computes it.
uint32_t RgbFnv1a32(const cv::Mat& bgr);

}  // namespace veil::engine::testing
