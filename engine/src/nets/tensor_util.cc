#include "nets/tensor_util.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace veil::engine::nets {

Status TfjsNetBase::Take(TfjsWeights& weights, const std::string& name, const std::vector<int64_t>& shape,
                         Layout layout) {
  VEIL_ASSIGN_OR_RETURN(const TfjsTensor* t, weights.Take(name, shape));
  torch::Tensor v = torch::from_blob(const_cast<float*>(t->values.data()), shape, torch::kFloat32).clone();
  if (layout == Layout::kConv) v = v.permute({3, 2, 0, 1}).contiguous();
  if (layout == Layout::kDepthwise) v = v.permute({2, 3, 0, 1}).contiguous();
  std::string key = name;
  std::replace(key.begin(), key.end(), '/', '_');
  params_[name] = register_buffer(key, v);
  return Status::Ok();
}

const torch::Tensor& TfjsNetBase::P(const std::string& name) const {
  auto it = params_.find(name);
  TORCH_CHECK(it != params_.end(), "parameter ", name, " was never loaded");
  return it->second;
}

torch::Tensor PadSame(const torch::Tensor& x, int64_t k, int64_t stride, double value) {
  auto pads = [&](int64_t in) {
    const int64_t out = (in + stride - 1) / stride;
    const int64_t total = std::max<int64_t>((out - 1) * stride + k - in, 0);
    return std::pair<int64_t, int64_t>(total / 2, total - total / 2);
  };
  const auto [top, bottom] = pads(x.size(2));
  const auto [left, right] = pads(x.size(3));
  if (top == 0 && bottom == 0 && left == 0 && right == 0) return x;
  return torch::constant_pad_nd(x, {left, right, top, bottom}, value);
}

torch::Tensor DepthwiseConv(const torch::Tensor& x, const torch::Tensor& w, int64_t stride, int64_t pad) {
  const std::vector<int64_t> strides = {stride, stride}, pads = {pad, pad}, one = {1, 1};
  return torch::conv2d(x, w, torch::Tensor(), strides, pads, one, x.size(1));
}

torch::Tensor ConvSame(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t stride) {
  return torch::conv2d(PadSame(x, w.size(2), stride), w, b, stride);
}

torch::Tensor SeparableConvSame(const torch::Tensor& x, const torch::Tensor& depthwise, const torch::Tensor& pointwise,
                                const torch::Tensor& bias, int64_t stride) {
  torch::Tensor out = DepthwiseConv(PadSame(x, depthwise.size(2), stride), depthwise, stride);
  return torch::conv2d(out, pointwise, bias);
}

torch::Tensor MaxPool(const torch::Tensor& x, int64_t k, int64_t stride) {
  // torch's own op for its checks and errors, and when training differentiates through a network
  // (the identity loss runs through the recognizer): it keeps max_pool2d's gradient.
  if (k < 2 || stride < 1 || x.dim() != 4 || x.size(2) < k || x.size(3) < k ||
      (x.requires_grad() && torch::GradMode::is_enabled())) {
    return torch::max_pool2d(x, k, stride);
  }
  const int64_t oh = (x.size(2) - k) / stride + 1, ow = (x.size(3) - k) / stride + 1;
  auto view = [&](int64_t i, int64_t j) {
    return x.slice(2, i, i + (oh - 1) * stride + 1, stride).slice(3, j, j + (ow - 1) * stride + 1, stride);
  };
  torch::Tensor out = torch::maximum(view(0, 0), view(0, 1));
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = i == 0 ? 2 : 0; j < k; ++j) at::maximum_out(out, out, view(i, j));
  }
  return out;
}

torch::Tensor MaxPoolSame(const torch::Tensor& x, int64_t k, int64_t stride) {
  return MaxPool(PadSame(x, k, stride, -std::numeric_limits<double>::infinity()), k, stride);
}

torch::Tensor ToNchw(const std::vector<const float*>& images, int64_t size, const float mean[3], float divisor) {
  const int64_t n = static_cast<int64_t>(images.size());
  torch::Tensor batch = torch::empty({n, size, size, 3}, torch::kFloat32);
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(batch[i].data_ptr<float>(), images[i], sizeof(float) * size * size * 3);
  }
  torch::Tensor m = torch::tensor({mean[0], mean[1], mean[2]}, torch::kFloat32);
  // Channels-last memory (the NHWC data as it is): oneDNN runs these networks about 1.5-2x faster so.
  return ((batch - m) / divisor).permute({0, 3, 1, 2}).contiguous(at::MemoryFormat::ChannelsLast);
}

}  // namespace veil::engine::nets
