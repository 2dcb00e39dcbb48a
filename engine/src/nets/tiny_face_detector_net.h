// face-api's TinyFaceDetector (a Tiny-YOLOv2 with depthwise separable convolutions).
// Input: N x 3 x S x S, RGB minus (117.001, 114.697, 97.404), / 255; S a multiple of 32 (default 416).
// Output: N x 25 x S/32 x S/32: per cell 5 anchors x (tx, ty, tw, th, objectness).
#pragma once

#include <array>
#include <filesystem>

#include "nets/tensor_util.h"

namespace veil::engine::nets {

struct TinyFaceDetectorNetOptions {
  TORCH_ARG(double, iou_threshold) = 0.4;
};

class TinyFaceDetectorNetImpl : public TfjsNetBase {
 public:
  static constexpr float kMeanRgb[3] = {117.001f, 114.697f, 97.404f};
  static constexpr std::array<std::array<float, 2>, 5> kAnchors = {{{1.603231f, 2.094468f},
                                                                     {6.041143f, 7.080126f},
                                                                     {2.882459f, 3.518061f},
                                                                     {4.266906f, 5.178857f},
                                                                     {9.041765f, 10.66308f}}};

  explicit TinyFaceDetectorNetImpl(TinyFaceDetectorNetOptions options = {}) : options_(options) {}
  Status LoadFrom(TfjsWeights& weights);
  torch::Tensor forward(const torch::Tensor& x) const;
  const TinyFaceDetectorNetOptions& options() const { return options_; }

 private:
  TinyFaceDetectorNetOptions options_;
};
TORCH_MODULE(TinyFaceDetectorNet);

}  // namespace veil::engine::nets
