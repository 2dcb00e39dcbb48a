// face-api's FaceLandmark68Net: four dense blocks of separable convolutions and a 256->136 layer.
// Input: N x 3 x 112 x 112, RGB minus (122.782, 117.001, 104.298), / 255.
// Output: N x 136, interleaved (x, y) in [0, 1] of the (padded) input square.
#pragma once

#include "nets/tensor_util.h"

namespace veil::engine::nets {

class Landmark68NetImpl : public TfjsNetBase {
 public:
  static constexpr int kInputSize = 112;
  static constexpr float kMeanRgb[3] = {122.782f, 117.001f, 104.298f};

  Status LoadFrom(TfjsWeights& weights);
  torch::Tensor forward(const torch::Tensor& x) const;

 private:
  torch::Tensor DenseBlock(const torch::Tensor& x, int block) const;
};
TORCH_MODULE(Landmark68Net);

}  // namespace veil::engine::nets
