#include "nets/ssd_mobilenet_net.h"

namespace veil::engine::nets {
namespace {
constexpr double kBatchNormEpsilon = 0.0010000000474974513;
// MobileNet v1 pairs 1..13: output channels of the pointwise conv; the depthwise stride.
constexpr int64_t kPairOut[] = {0, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024};
bool IsStride2(int layer) { return layer == 2 || layer == 4 || layer == 6 || layer == 12; }
// Prediction layers 0..7: (kernel, in, out); odd ones have stride 2.
constexpr int64_t kPred[8][3] = {{1, 1024, 256}, {3, 256, 512}, {1, 512, 128}, {3, 128, 256},
                                 {1, 256, 128},  {3, 128, 256}, {1, 256, 64},  {3, 64, 128}};
// Box predictors 0..5: input channels and anchors per cell.
constexpr int64_t kBoxIn[6] = {512, 1024, 512, 256, 256, 128};
constexpr int64_t kBoxAnchors[6] = {3, 6, 6, 6, 6, 6};

std::string Mb(int i, const char* kind) { return "MobilenetV1/Conv2d_" + std::to_string(i) + "_" + kind; }
std::string Box(int i) { return "Prediction/BoxPredictor_" + std::to_string(i); }
}  // namespace

Status SsdMobilenetNetImpl::LoadFrom(TfjsWeights& w) {
  VEIL_RETURN_IF_ERROR(Take(w, Mb(0, "pointwise") + "/weights", {3, 3, 3, 32}, Layout::kConv));
  VEIL_RETURN_IF_ERROR(Take(w, Mb(0, "pointwise") + "/convolution_bn_offset", {32}));
  int64_t in = 32;
  for (int i = 1; i <= 13; ++i) {
    const std::string d = Mb(i, "depthwise");
    VEIL_RETURN_IF_ERROR(Take(w, d + "/depthwise_weights", {3, 3, in, 1}, Layout::kDepthwise));
    for (const char* bn : {"gamma", "beta", "moving_mean", "moving_variance"}) {
      VEIL_RETURN_IF_ERROR(Take(w, d + "/BatchNorm/" + bn, {in}));
    }
    VEIL_RETURN_IF_ERROR(Take(w, Mb(i, "pointwise") + "/weights", {1, 1, in, kPairOut[i]}, Layout::kConv));
    VEIL_RETURN_IF_ERROR(Take(w, Mb(i, "pointwise") + "/convolution_bn_offset", {kPairOut[i]}));
    in = kPairOut[i];
  }
  for (int i = 0; i < 8; ++i) {
    const std::string p = "Prediction/Conv2d_" + std::to_string(i) + "_pointwise";
    VEIL_RETURN_IF_ERROR(Take(w, p + "/weights", {kPred[i][0], kPred[i][0], kPred[i][1], kPred[i][2]}, Layout::kConv));
    VEIL_RETURN_IF_ERROR(Take(w, p + "/convolution_bn_offset", {kPred[i][2]}));
  }
  for (int i = 0; i < 6; ++i) {
    VEIL_RETURN_IF_ERROR(Take(w, Box(i) + "/BoxEncodingPredictor/weights", {1, 1, kBoxIn[i], 4 * kBoxAnchors[i]}, Layout::kConv));
    VEIL_RETURN_IF_ERROR(Take(w, Box(i) + "/BoxEncodingPredictor/biases", {4 * kBoxAnchors[i]}));
    VEIL_RETURN_IF_ERROR(Take(w, Box(i) + "/ClassPredictor/weights", {1, 1, kBoxIn[i], 3 * kBoxAnchors[i]}, Layout::kConv));
    VEIL_RETURN_IF_ERROR(Take(w, Box(i) + "/ClassPredictor/biases", {3 * kBoxAnchors[i]}));
  }
  VEIL_RETURN_IF_ERROR(Take(w, "Output/extra_dim", {1, kAnchors, 4}));
  // Constants of the exported TF graph (reshape sizes, axes) that the port does not need.
  const std::pair<const char*, std::vector<int64_t>> kGraphConstants[] = {
      {"Prediction/BoxPredictor_0/stack_1/2", {}}, {"Postprocessor/Slice/begin", {3}},
      {"Postprocessor/Slice/size", {3}}, {"Prediction/BoxPredictor_0/stack_1/1", {}},
      {"Prediction/BoxPredictor_1/stack_1/1", {}}, {"Prediction/BoxPredictor_2/stack_1/1", {}},
      {"Prediction/BoxPredictor_3/stack_1/1", {}}, {"Prediction/BoxPredictor_4/stack_1/1", {}},
      {"Prediction/BoxPredictor_5/stack_1/1", {}}, {"Preprocessor/mul/x", {}},
      {"Preprocessor/ResizeImage/size", {2}}, {"Preprocessor/sub/y", {}}, {"concat_1/axis", {}},
      {"Prediction/BoxPredictor_0/strided_slice/stack", {1}}, {"Prediction/BoxPredictor_0/strided_slice/stack_1", {1}},
      {"Postprocessor/stack/1", {}}, {"Prediction/BoxPredictor_0/stack/3", {}},
  };
  for (const auto& [name, shape] : kGraphConstants) VEIL_RETURN_IF_ERROR(w.Take(name, shape).status());
  return w.CheckAllTaken();
}

torch::Tensor SsdMobilenetNetImpl::Pointwise(const torch::Tensor& x, const std::string& n, int64_t stride) const {
  return torch::clamp(ConvSame(x, P(n + "/weights"), P(n + "/convolution_bn_offset"), stride), 0, 6);
}

torch::Tensor SsdMobilenetNetImpl::Depthwise(const torch::Tensor& x, const std::string& n, int64_t stride) const {
  const torch::Tensor& f = P(n + "/depthwise_weights");
  torch::Tensor out = DepthwiseConv(PadSame(x, 3, stride), f, stride);
  auto v = [&](const char* bn) { return P(n + "/BatchNorm/" + bn).view({1, -1, 1, 1}); };
  out = (out - v("moving_mean")) * (v("gamma") * torch::rsqrt(v("moving_variance") + kBatchNormEpsilon)) + v("beta");
  return torch::clamp(out, 0, 6);
}

std::pair<torch::Tensor, torch::Tensor> SsdMobilenetNetImpl::Predict(const torch::Tensor& x, int i) const {
  const int64_t n = x.size(0);
  torch::Tensor box = torch::conv2d(x, P(Box(i) + "/BoxEncodingPredictor/weights"), P(Box(i) + "/BoxEncodingPredictor/biases"));
  torch::Tensor cls = torch::conv2d(x, P(Box(i) + "/ClassPredictor/weights"), P(Box(i) + "/ClassPredictor/biases"));
  // TF reshapes NHWC: (row, col, anchor, value).
  return {box.permute({0, 2, 3, 1}).reshape({n, -1, 4}), cls.permute({0, 2, 3, 1}).reshape({n, -1, 3})};
}

std::pair<torch::Tensor, torch::Tensor> SsdMobilenetNetImpl::forward(const torch::Tensor& x) const {
  torch::Tensor out = Pointwise(x, Mb(0, "pointwise"), 2);
  torch::Tensor conv11;
  for (int i = 1; i <= 13; ++i) {
    out = Depthwise(out, Mb(i, "depthwise"), IsStride2(i) ? 2 : 1);
    out = Pointwise(out, Mb(i, "pointwise"), 1);
    if (i == 11) conv11 = out;
  }
  std::vector<torch::Tensor> maps = {conv11, out};
  torch::Tensor p = out;
  for (int i = 0; i < 8; ++i) {
    p = Pointwise(p, "Prediction/Conv2d_" + std::to_string(i) + "_pointwise", i % 2 == 1 ? 2 : 1);
    if (i % 2 == 1) maps.push_back(p);
  }
  std::vector<torch::Tensor> boxes, classes;
  for (int i = 0; i < 6; ++i) {
    auto [b, c] = Predict(maps[i], i);
    boxes.push_back(b);
    classes.push_back(c);
  }
  torch::Tensor t = torch::cat(boxes, 1);                 // N x 5118 x 4 encodings
  torch::Tensor a = P("Output/extra_dim")[0];            // 5118 x 4 anchors
  torch::Tensor size0 = a.select(1, 2) - a.select(1, 0), size1 = a.select(1, 3) - a.select(1, 1);
  torch::Tensor center0 = a.select(1, 0) + size0 / 2, center1 = a.select(1, 1) + size1 / 2;
  torch::Tensor half0 = torch::exp(t.select(2, 2) / 5) * size0 / 2;
  torch::Tensor c0 = t.select(2, 0) / 10 * size0 + center0;
  torch::Tensor half1 = torch::exp(t.select(2, 3) / 5) * size1 / 2;
  torch::Tensor c1 = t.select(2, 1) / 10 * size1 + center1;
  torch::Tensor decoded = torch::stack({c0 - half0, c1 - half1, c0 + half0, c1 + half1}, 2);
  torch::Tensor scores = torch::sigmoid(torch::cat(classes, 1).select(2, 1));
  return {decoded, scores};
}

}  // namespace veil::engine::nets
