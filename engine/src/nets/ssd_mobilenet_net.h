// face-api's SSD MobileNet v1 face detector.
// Input: N x 3 x 512 x 512, RGB / 127.5 - 1 (image padded at the bottom/right to a square).
// Output: decoded boxes N x 5118 x 4 as (ymin, xmin, ymax, xmax) relative to the input square, and
// face scores N x 5118 (sigmoid of class 1).
#pragma once

#include <utility>

#include "nets/tensor_util.h"

namespace veil::engine::nets {

class SsdMobilenetNetImpl : public TfjsNetBase {
 public:
  static constexpr int kInputSize = 512;
  static constexpr int kAnchors = 5118;

  Status LoadFrom(TfjsWeights& weights);
  // {boxes, scores}
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x) const;

 private:
  torch::Tensor Pointwise(const torch::Tensor& x, const std::string& name, int64_t stride) const;
  torch::Tensor Depthwise(const torch::Tensor& x, const std::string& name, int64_t stride) const;
  std::pair<torch::Tensor, torch::Tensor> Predict(const torch::Tensor& x, int index) const;
};
TORCH_MODULE(SsdMobilenetNet);

}  // namespace veil::engine::nets
