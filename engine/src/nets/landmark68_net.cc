#include "nets/landmark68_net.h"

namespace veil::engine::nets {
namespace {
constexpr int64_t kIn[] = {3, 32, 64, 128};
constexpr int64_t kOut[] = {32, 64, 128, 256};
std::string Name(int block, int conv, const char* what) {
  return "dense" + std::to_string(block) + "/conv" + std::to_string(conv) + "/" + what;
}
}  // namespace

Status Landmark68NetImpl::LoadFrom(TfjsWeights& w) {
  for (int b = 0; b < 4; ++b) {
    for (int c = 0; c < 4; ++c) {
      const int64_t in = c == 0 ? kIn[b] : kOut[b], out = kOut[b];
      if (b == 0 && c == 0) {
        VEIL_RETURN_IF_ERROR(Take(w, Name(b, c, "filters"), {3, 3, in, out}, Layout::kConv));
      } else {
        VEIL_RETURN_IF_ERROR(Take(w, Name(b, c, "depthwise_filter"), {3, 3, in, 1}, Layout::kDepthwise));
        VEIL_RETURN_IF_ERROR(Take(w, Name(b, c, "pointwise_filter"), {1, 1, in, out}, Layout::kConv));
      }
      VEIL_RETURN_IF_ERROR(Take(w, Name(b, c, "bias"), {out}));
    }
  }
  VEIL_RETURN_IF_ERROR(Take(w, "fc/weights", {256, 136}));
  VEIL_RETURN_IF_ERROR(Take(w, "fc/bias", {136}));
  return w.CheckAllTaken();
}

torch::Tensor Landmark68NetImpl::DenseBlock(const torch::Tensor& x, int b) const {
  auto sep = [&](const torch::Tensor& in, int c, int64_t stride) {
    return SeparableConvSame(in, P(Name(b, c, "depthwise_filter")), P(Name(b, c, "pointwise_filter")),
                             P(Name(b, c, "bias")), stride);
  };
  torch::Tensor out1 = b == 0 ? ConvSame(x, P(Name(b, 0, "filters")), P(Name(b, 0, "bias")), 2) : sep(x, 0, 2);
  out1 = torch::relu(out1);
  torch::Tensor out2 = sep(out1, 1, 1);
  torch::Tensor out3 = sep(torch::relu(out1 + out2), 2, 1);
  torch::Tensor out4 = sep(torch::relu(out1 + (out2 + out3)), 3, 1);
  return torch::relu(out1 + (out2 + (out3 + out4)));
}

torch::Tensor Landmark68NetImpl::forward(const torch::Tensor& x) const {
  torch::Tensor out = x;
  for (int b = 0; b < 4; ++b) out = DenseBlock(out, b);
  out = torch::avg_pool2d(out, 7, 2);  // 'valid': 7x7 -> 1x1
  return torch::addmm(P("fc/bias"), out.flatten(1), P("fc/weights"));
}

}  // namespace veil::engine::nets
