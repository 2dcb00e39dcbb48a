// HSE FaceRes as shipped by @vladmandic/human 3.3.6 (models/faceres.json, a TF.js graph model):
// MobileNet v1 (width 1, 224x224) with batch norm folded into Mul/Add, ReLU6, global mean pooling to
// a 1024-D descriptor (the age and gender heads are loaded and checked but not run).
// Input: N x 3 x 224 x 224, RGB in [0, 255]. Output: N x 1024.
#pragma once

#include "nets/tensor_util.h"

namespace veil::engine::nets {

class FaceResNetImpl : public TfjsNetBase {
 public:
  static constexpr int kInputSize = 224;
  static constexpr int kDescriptorSize = 1024;

  Status LoadFrom(TfjsWeights& weights);
  torch::Tensor forward(const torch::Tensor& x) const;

 private:
  torch::Tensor Relu6(const torch::Tensor& x, const std::string& layer) const;
};
TORCH_MODULE(FaceResNet);

}  // namespace veil::engine::nets
