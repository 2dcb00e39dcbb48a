// Shared pieces of the face-api network ports: a module base that takes its parameters from TF.js
// weights under their TF.js names, and TensorFlow's "same" padding, which is asymmetric (for stride
// 2 on an even size TF pads 0 before and 1 after), so it is done explicitly.
#pragma once

#include <torch/torch.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "veil/engine/tfjs_weights.h"
#include "veil/status.h"

namespace veil::engine::nets {

enum class Layout {
  kAsIs,       // bias, scale, fc weights: kept in TF.js shape
  kConv,       // HWIO [kh, kw, in, out] -> OIHW
  kDepthwise,  // [kh, kw, C, 1] -> [C, 1, kh, kw]
};

// Base of every ported network: parameters are registered as buffers whose names are the TF.js
// tensor names with '/' replaced by '_' (stable checkpoint keys), and looked up by TF.js name.
class TfjsNetBase : public torch::nn::Module {
 protected:
  // Takes `name` with `shape` from the weights and registers it; DataLoss when absent or misshapen.
  Status Take(TfjsWeights& weights, const std::string& name, const std::vector<int64_t>& shape,
              Layout layout = Layout::kAsIs);
  const torch::Tensor& P(const std::string& name) const;

 private:
  std::unordered_map<std::string, torch::Tensor> params_;
};

// Pads NCHW `x` as TensorFlow's "same" padding does for a window `k` and `stride`.
torch::Tensor PadSame(const torch::Tensor& x, int64_t k, int64_t stride, double value = 0.0);
// Depthwise conv2d with `pad` zeros on every side (one group per channel; weights [C, 1, kh, kw]).
torch::Tensor DepthwiseConv(const torch::Tensor& x, const torch::Tensor& w, int64_t stride, int64_t pad = 0);
// conv2d with TF "same" padding (+ bias when defined).
torch::Tensor ConvSame(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t stride);
// TF separableConv2d(x, depthwise, pointwise, stride, 'same') + bias.
torch::Tensor SeparableConvSame(const torch::Tensor& x, const torch::Tensor& depthwise, const torch::Tensor& pointwise,
                                const torch::Tensor& bias, int64_t stride);
// torch::max_pool2d(x, k, stride) (no padding, floor) as a running maximum of the window's k x k
// strided views: the same values (max is exact; only the sign of a zero that ties with another
// zero, or which NaN, may differ). LibTorch 1.13's max_pool2d on NCHW took 10 ms for the tiny
// detector's first 2x2 pool at 416 (2 cores), this 1.4 ms; on the channels-last input ToNchw now
// gives, 0.84 ms against 0.68 (2026-12-06, another machine).
torch::Tensor MaxPool(const torch::Tensor& x, int64_t k, int64_t stride);
// TF maxPool(x, k, stride, 'same'): pads with -inf.
torch::Tensor MaxPoolSame(const torch::Tensor& x, int64_t k, int64_t stride);

// NHWC float image data (0..255, RGB) -> N x 3 x H x W (channels-last in memory), minus a
// per-channel mean, divided by `divisor`.
torch::Tensor ToNchw(const std::vector<const float*>& images, int64_t size, const float mean[3], float divisor);

}  // namespace veil::engine::nets
