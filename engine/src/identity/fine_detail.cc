#include "identity/fine_detail.h"

namespace veil::engine::identity {

torch::Tensor FineDetailEnergy(const torch::Tensor& nhwc_u8) {
  TORCH_CHECK(nhwc_u8.dim() == 4 && nhwc_u8.size(3) == 3 && nhwc_u8.scalar_type() == torch::kUInt8,
              "FineDetailEnergy: N x H x W x 3 uint8 expected");
  const int64_t h = nhwc_u8.size(1), w = nhwc_u8.size(2), m = w * 3 / 16;
  const torch::Tensor px = nhwc_u8.slice(1, m, h - m).slice(2, m, w - m).to(torch::kInt32);
  // OpenCV's COLOR_BGR2GRAY on 8 bits: 15-bit fixed-point coefficients of 0.114, 0.587, 0.299, rounded.
  const torch::Tensor grey = (px.select(3, 0) * 3735 + px.select(3, 1) * 19235 + px.select(3, 2) * 9798 + (1 << 14))
                                 .bitwise_right_shift(15)
                                 .to(torch::kFloat64);
  namespace F = torch::nn::functional;
  const torch::Tensor p = F::pad(grey.unsqueeze(1), F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReflect)).squeeze(1);
  const int64_t gh = grey.size(1), gw = grey.size(2);
  const torch::Tensor lap = p.slice(1, 0, gh).slice(2, 1, gw + 1) + p.slice(1, 2, gh + 2).slice(2, 1, gw + 1) +
                            p.slice(1, 1, gh + 1).slice(2, 0, gw) + p.slice(1, 1, gh + 1).slice(2, 2, gw + 2) - 4.0 * grey;
  return lap.pow(2).mean({1, 2});
}

}  // namespace veil::engine::identity
