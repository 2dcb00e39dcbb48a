// A second face recognizer, used only to measure: HSE FaceRes (a MobileNet v1 face descriptor by
// A. Savchenko, HSE, https://github.com/HSE-asavchenko/HSE_FaceRec_tf), as converted and shipped
// in @vladmandic/human 3.3.6 (MIT; tools/fetch_human.sh). Veil never trains against it and never
// uses it to anonymize, so `veil eval` can ask whether a face a recognizer Veil does not use would
// still re-identify.
//
//   auto r = veil::engine::FaceResRecognizer::Create({});   // $VEIL_HUMAN_DIR or .cache/human/...
//   auto d = (*r)->Describe(crops);                          // 1024-D, L2-normalized
//   float dist = veil::engine::FaceResDistance((*d)[0], (*d)[1]);  // Euclidean, 0..2
//
// Input crops: 8-bit BGR faces, any size, resized (bilinear) to 224x224; Veil's aligned crops work.
// Not thread safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "veil/status.h"

namespace veil::engine {

using FaceResDescriptor = std::vector<float>;  // 1024 values, unit length

struct FaceResParams {
  std::string models_dir;        // empty: $VEIL_HUMAN_DIR, else <repo>/.cache/human/package/models
  bool verify_checksums = true;  // faceres.json and faceres.bin must match the SHA-256 pinned for 3.3.6
};

class FaceResRecognizer {
 public:
  static StatusOr<std::unique_ptr<FaceResRecognizer>> Create(const FaceResParams& params);
  virtual ~FaceResRecognizer() = default;
  virtual StatusOr<std::vector<FaceResDescriptor>> Describe(const std::vector<cv::Mat>& faces) = 0;
};

// The default folder of faceres.json / faceres.bin.
std::string DefaultHumanModelsDir();
// Euclidean distance of two unit descriptors (0 = same direction, 2 = opposite).
float FaceResDistance(const FaceResDescriptor& a, const FaceResDescriptor& b);

}  // namespace veil::engine
