#include "identity/attribute_encoder.h"

namespace veil::engine::identity {

std::map<std::string, std::string> AttributeEncoderOptions::ToMap() const {
  std::map<std::string, std::string> m = {{"arch", "veil-e1"},
                                          {"ch64a", std::to_string(ch64a())},
                                          {"ch64b", std::to_string(ch64b())},
                                          {"ch32", std::to_string(ch32())},
                                          {"attr_channels", std::to_string(attr_channels())},
                                          {"resolution", "128"},
                                          {"color", "bgr"},
                                          {"range", "-1..1"}};
  if (pool() != 1) m["pool"] = std::to_string(pool());
  return m;
}

StatusOr<AttributeEncoderOptions> AttributeEncoderOptions::FromMap(const std::map<std::string, std::string>& m) {
  AttributeEncoderOptions o;
  if (auto it = m.find("pool"); it != m.end()) {
    if (it->second != "1" && it->second != "2" && it->second != "4") {
      return InvalidArgumentError("attribute encoder option pool=" + it->second + " is not 1, 2 or 4");
    }
    o.pool(std::stoll(it->second));
  }
  return o;
}

AttributeEncoderImpl::AttributeEncoderImpl(const AttributeEncoderOptions& o) : options(o) {
  c64a_ = register_module("c64a", EqualConv2d(EqualConv2dOptions(3, o.ch64a(), 3).stride(2)));
  c64b_ = register_module("c64b", EqualConv2d(EqualConv2dOptions(o.ch64a(), o.ch64b(), 3)));
  c32_ = register_module("c32", EqualConv2d(EqualConv2dOptions(o.ch64b(), o.ch32(), 3).stride(2)));
  out_ = register_module("out", EqualConv2d(EqualConv2dOptions(o.ch32(), o.attr_channels(), 1).activate(false)));
}

torch::Tensor AttributeEncoderImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == 3 && x.size(2) == 128 && x.size(3) == 128,
              "AttributeEncoder: expected N x 3 x 128 x 128, got ", x.sizes());
  torch::Tensor a = out_->forward(c32_->forward(c64b_->forward(c64a_->forward(x))));
  if (options.pool() <= 1) return a;
  namespace F = torch::nn::functional;
  return F::interpolate(F::avg_pool2d(a, F::AvgPool2dFuncOptions(options.pool())),
                        F::InterpolateFuncOptions()
                            .size(std::vector<int64_t>{a.size(2), a.size(3)})
                            .mode(torch::kBilinear)
                            .align_corners(false));
}

}  // namespace veil::engine::identity
