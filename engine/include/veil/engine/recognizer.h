// The identity code: face-api's port of the dlib ResNet-34 face descriptor (128-D).
//
//   auto rec = veil::engine::Recognizer::Create({});
//   auto codes = (*rec)->DescribeFaces(bgr, faces);           // aligned, batched
//   float d = veil::engine::DescriptorDistance(codes->at(0), other);
//
// Distances are Euclidean; dlib and face-api call two faces the same person below 0.6. On this
// engine's own measurements (docs in tests/engine/README.md) the same face under flip, crop and
// JPEG re-encoding stays far below 0.6, but different people of similar age and ethnicity also
// fall below 0.6 often, so do not treat 0.6 as proof of identity.
// Weights are loaded once in Create(); Describe* are not thread safe.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "veil/engine/face.h"
#include "veil/status.h"

namespace veil::engine {

using Descriptor = std::array<float, 128>;

// dlib's and face-api's usual same-person threshold on DescriptorDistance.
inline constexpr float kSamePersonDistance = 0.6f;

struct RecognizerParams {
  std::string models_dir;        // empty: the default (runtime.h)
  int max_batch = 16;            // faces per forward pass
  bool verify_checksums = true;
};

class Recognizer {
 public:
  static constexpr int kInputSize = 150;

  static StatusOr<std::unique_ptr<Recognizer>> Create(const RecognizerParams& params);
  virtual ~Recognizer() = default;

  // Descriptors of 8-bit BGR face crops of any size (face-api's preprocessing: centred zero
  // padding to a square, TF bilinear resize to 150). Aligned 150x150 crops pass through unchanged.
  virtual StatusOr<std::vector<Descriptor>> DescribeAligned(const std::vector<cv::Mat>& faces) = 0;

  // The identity codes of detected faces: each is aligned to a 150x150 chip (Aligner with dlib's
  // template) and all chips run in batches. Faces without landmarks are InvalidArgument.
  virtual StatusOr<std::vector<Descriptor>> DescribeFaces(const cv::Mat& image, const std::vector<Face>& faces) = 0;

  // Descriptors of integer crops of a BGR image (clipped to the image), as face-api computes them.
  virtual StatusOr<std::vector<Descriptor>> DescribeCrops(const cv::Mat& image, const std::vector<cv::Rect>& crops) = 0;
};

// Euclidean distance between two descriptors.
float DescriptorDistance(const Descriptor& a, const Descriptor& b);
// Cosine similarity in [-1, 1].
float DescriptorCosine(const Descriptor& a, const Descriptor& b);

}  // namespace veil::engine
