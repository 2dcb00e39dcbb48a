// face-api's FaceRecognitionNet: the dlib ResNet-34 face descriptor (128-D, not normalized).
// Input: N x 3 x 150 x 150, RGB minus (122.782, 117.001, 104.298), / 255.
#pragma once

#include "nets/tensor_util.h"

namespace veil::engine::nets {

class FaceRecognitionNetImpl : public TfjsNetBase {
 public:
  static constexpr int kInputSize = 150;
  static constexpr float kMeanRgb[3] = {122.782f, 117.001f, 104.298f};

  Status LoadFrom(TfjsWeights& weights);
  torch::Tensor forward(const torch::Tensor& x) const;
  // The activations after the first convolution and then after each residual stage, the first
  // `count` of them (at most 6): 32 x 72^2, 32 x 35^2, 64 x 17^2, 128 x 8^2, 256 x 4^2, 256 x 2^2
  // for a 150 input. Stops after the last one asked for (the GAN trainer's perceptual distance).
  std::vector<torch::Tensor> Features(const torch::Tensor& x, int count) const;

 private:
  Status TakeConvLayer(TfjsWeights& w, const std::string& name, int64_t k, int64_t in, int64_t out);
  torch::Tensor ConvLayer(const torch::Tensor& x, const std::string& name, int64_t stride, bool relu, bool same) const;
  torch::Tensor Residual(const torch::Tensor& x, const std::string& name) const;
  torch::Tensor ResidualDown(const torch::Tensor& x, const std::string& name) const;
};
TORCH_MODULE(FaceRecognitionNet);

// A batch of BGR images in [-1, 1] (N x 3 x H x W, the generator's convention) -> the network's
// input: bilinear to 150 x 150 (no resampling when already that size), RGB in [0, 255] minus
// kMeanRgb, / 255. Differentiable: the GAN trainer's identity losses, the pseudonym reader and its
// trainer all read faces through it.
torch::Tensor RecognizerInputFromBgr(const torch::Tensor& bgr);

}  // namespace veil::engine::nets
