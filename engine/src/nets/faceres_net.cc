#include "nets/faceres_net.h"

namespace veil::engine::nets {
namespace {

// Output channels and stride of the 13 depthwise-separable blocks (MobileNet v1).
constexpr int64_t kOut[13] = {64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024};
constexpr int64_t kStride[13] = {1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1};

std::string Dw(int i) { return "conv_dw_" + std::to_string(i); }
std::string Pw(int i) { return "conv_pw_" + std::to_string(i); }

}  // namespace

Status FaceResNetImpl::LoadFrom(TfjsWeights& w) {
  auto relu = [&](const std::string& layer) -> Status {
    VEIL_RETURN_IF_ERROR(Take(w, layer + "_relu/Cast", {}));
    return Take(w, layer + "_relu/Const_1", {});
  };
  VEIL_RETURN_IF_ERROR(Take(w, "conv1/convolution/merged_input", {3, 3, 3, 32}, Layout::kConv));
  VEIL_RETURN_IF_ERROR(Take(w, "conv1_bn/batchnorm_1/sub", {32}));
  VEIL_RETURN_IF_ERROR(relu("conv1"));
  int64_t in = 32;
  for (int i = 1; i <= 13; ++i) {
    VEIL_RETURN_IF_ERROR(Take(w, Dw(i) + "/depthwise_kernel", {3, 3, in, 1}, Layout::kDepthwise));
    VEIL_RETURN_IF_ERROR(Take(w, Dw(i) + "_bn/batchnorm_1/mul", {in}));
    VEIL_RETURN_IF_ERROR(Take(w, Dw(i) + "_bn/batchnorm_1/sub", {in}));
    VEIL_RETURN_IF_ERROR(relu(Dw(i)));
    VEIL_RETURN_IF_ERROR(Take(w, Pw(i) + "/convolution/merged_input", {1, 1, in, kOut[i - 1]}, Layout::kConv));
    VEIL_RETURN_IF_ERROR(Take(w, Pw(i) + "_bn/batchnorm_1/sub", {kOut[i - 1]}));
    VEIL_RETURN_IF_ERROR(relu(Pw(i)));
    in = kOut[i - 1];
  }
  VEIL_RETURN_IF_ERROR(Take(w, "global_pooling/Mean/reduction_indices", {2}));
  // The heads on top of the descriptor (not used by Veil).
  VEIL_RETURN_IF_ERROR(Take(w, "feats/kernel", {1024, 256}));
  VEIL_RETURN_IF_ERROR(Take(w, "feats/bias", {256}));
  VEIL_RETURN_IF_ERROR(Take(w, "age_pred/kernel", {256, 100}));
  VEIL_RETURN_IF_ERROR(Take(w, "age_pred/bias", {100}));
  VEIL_RETURN_IF_ERROR(Take(w, "gender_pred/kernel", {256, 1}));
  VEIL_RETURN_IF_ERROR(Take(w, "gender_pred/bias", {1}));
  return w.CheckAllTaken();
}

torch::Tensor FaceResNetImpl::Relu6(const torch::Tensor& x, const std::string& layer) const {
  // Maximum(Minimum(Relu(x), Cast), Const_1): Cast is 6 and Const_1 is 0 in the shipped graph.
  return torch::maximum(torch::minimum(torch::relu(x), P(layer + "_relu/Cast")), P(layer + "_relu/Const_1"));
}

torch::Tensor FaceResNetImpl::forward(const torch::Tensor& x) const {
  auto bias = [&](const std::string& name) { return P(name).view({1, -1, 1, 1}); };
  torch::Tensor out = ConvSame(x, P("conv1/convolution/merged_input"), torch::Tensor(), 2) + bias("conv1_bn/batchnorm_1/sub");
  out = Relu6(out, "conv1");
  for (int i = 1; i <= 13; ++i) {
    out = DepthwiseConv(PadSame(out, 3, kStride[i - 1]), P(Dw(i) + "/depthwise_kernel"), kStride[i - 1]);
    out = Relu6(out * bias(Dw(i) + "_bn/batchnorm_1/mul") + bias(Dw(i) + "_bn/batchnorm_1/sub"), Dw(i));
    out = torch::conv2d(out, P(Pw(i) + "/convolution/merged_input")) + bias(Pw(i) + "_bn/batchnorm_1/sub");
    out = Relu6(out, Pw(i));
  }
  return out.mean({2, 3});
}

}  // namespace veil::engine::nets
