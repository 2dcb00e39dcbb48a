#include "nets/face_recognition_net.h"

#include <iterator>

namespace veil::engine::nets {
namespace {
struct Block {
  const char* name;
  int64_t in, out;
  bool down;
};
constexpr Block kBlocks[] = {
    {"conv32_1", 32, 32, false},      {"conv32_2", 32, 32, false},      {"conv32_3", 32, 32, false},
    {"conv64_down", 32, 64, true},    {"conv64_1", 64, 64, false},      {"conv64_2", 64, 64, false},
    {"conv64_3", 64, 64, false},      {"conv128_down", 64, 128, true},  {"conv128_1", 128, 128, false},
    {"conv128_2", 128, 128, false},   {"conv256_down", 128, 256, true}, {"conv256_1", 256, 256, false},
    {"conv256_2", 256, 256, false},   {"conv256_down_out", 256, 256, true},
};
}  // namespace

torch::Tensor RecognizerInputFromBgr(const torch::Tensor& bgr) {
  namespace F = torch::nn::functional;
  constexpr int64_t kSide = FaceRecognitionNetImpl::kInputSize;
  const torch::Tensor x = (bgr.size(2) == kSide && bgr.size(3) == kSide)
                              ? bgr
                              : F::interpolate(bgr, F::InterpolateFuncOptions()
                                                        .size(std::vector<int64_t>{kSide, kSide})
                                                        .mode(torch::kBilinear)
                                                        .align_corners(false));
  const auto& m = FaceRecognitionNetImpl::kMeanRgb;
  const torch::Tensor mean = torch::tensor({m[0], m[1], m[2]}, x.options()).view({1, 3, 1, 1});
  return (x.flip({1}).add(1.0).mul(127.5) - mean) / 255.0;
}

Status FaceRecognitionNetImpl::TakeConvLayer(TfjsWeights& w, const std::string& n, int64_t k, int64_t in,
                                             int64_t out) {
  VEIL_RETURN_IF_ERROR(Take(w, n + "/conv/filters", {k, k, in, out}, Layout::kConv));
  VEIL_RETURN_IF_ERROR(Take(w, n + "/conv/bias", {out}));
  VEIL_RETURN_IF_ERROR(Take(w, n + "/scale/weights", {out}));
  return Take(w, n + "/scale/biases", {out});
}

Status FaceRecognitionNetImpl::LoadFrom(TfjsWeights& w) {
  VEIL_RETURN_IF_ERROR(TakeConvLayer(w, "conv32_down", 7, 3, 32));
  for (const Block& b : kBlocks) {
    VEIL_RETURN_IF_ERROR(TakeConvLayer(w, std::string(b.name) + "/conv1", 3, b.in, b.out));
    VEIL_RETURN_IF_ERROR(TakeConvLayer(w, std::string(b.name) + "/conv2", 3, b.out, b.out));
  }
  VEIL_RETURN_IF_ERROR(Take(w, "fc", {256, 128}));
  return w.CheckAllTaken();
}

torch::Tensor FaceRecognitionNetImpl::ConvLayer(const torch::Tensor& x, const std::string& n, int64_t stride,
                                                bool relu, bool same) const {
  const torch::Tensor& f = P(n + "/conv/filters");
  torch::Tensor out = same ? ConvSame(x, f, P(n + "/conv/bias"), stride) : torch::conv2d(x, f, P(n + "/conv/bias"), stride);
  out = out * P(n + "/scale/weights").view({1, -1, 1, 1}) + P(n + "/scale/biases").view({1, -1, 1, 1});
  return relu ? torch::relu(out) : out;
}

torch::Tensor FaceRecognitionNetImpl::Residual(const torch::Tensor& x, const std::string& n) const {
  torch::Tensor out = ConvLayer(x, n + "/conv1", 1, true, true);
  out = ConvLayer(out, n + "/conv2", 1, false, true);
  return torch::relu(out + x);
}

torch::Tensor FaceRecognitionNetImpl::ResidualDown(const torch::Tensor& x, const std::string& n) const {
  torch::Tensor out = ConvLayer(x, n + "/conv1", 2, true, false);
  out = ConvLayer(out, n + "/conv2", 1, false, true);
  torch::Tensor pooled = torch::avg_pool2d(x, 2, 2);
  if (pooled.size(2) != out.size(2) || pooled.size(3) != out.size(3)) {
    out = torch::constant_pad_nd(out, {0, 1, 0, 1}, 0.0);  // zeros at the bottom and right
  }
  if (pooled.size(1) != out.size(1)) pooled = torch::cat({pooled, torch::zeros_like(pooled)}, 1);
  return torch::relu(pooled + out);
}

torch::Tensor FaceRecognitionNetImpl::forward(const torch::Tensor& x) const {
  torch::Tensor out = ConvLayer(x, "conv32_down", 2, true, false);
  out = MaxPool(out, 3, 2);
  for (const Block& b : kBlocks) out = b.down ? ResidualDown(out, b.name) : Residual(out, b.name);
  return torch::mm(out.mean({2, 3}), P("fc"));
}

std::vector<torch::Tensor> FaceRecognitionNetImpl::Features(const torch::Tensor& x, int count) const {
  std::vector<torch::Tensor> features;
  if (count <= 0) return features;
  torch::Tensor out = ConvLayer(x, "conv32_down", 2, true, false);
  features.push_back(out);
  out = MaxPool(out, 3, 2);
  const size_t n = std::size(kBlocks);
  for (size_t i = 0; i < n && static_cast<int>(features.size()) < count; ++i) {
    out = kBlocks[i].down ? ResidualDown(out, kBlocks[i].name) : Residual(out, kBlocks[i].name);
    if (i + 1 == n || kBlocks[i + 1].down) features.push_back(out);  // the end of a stage
  }
  return features;
}

}  // namespace veil::engine::nets
