// The attribute encoder E: a 128x128 aligned BGR crop in [-1, 1] -> a 32x32 attribute map
// (pose, expression, lighting, skin tone, hair line, background): everything but identity.
//
// A narrow bottleneck (attr_channels at 32x32, linear output) plus identity swaps, the identity
// loss and attribute consistency during training keep the identity out of it; G takes the
// identity from the 128-D code. Register names are checkpoint and model-file keys.
#pragma once

#include <map>
#include <string>

#include "identity/generator_layers.h"
#include "veil/status.h"

namespace veil::engine::identity {

struct AttributeEncoderOptions {
  TORCH_ARG(int64_t, ch64a) = 32;           // 3x3 stride 2: 128 -> 64
  TORCH_ARG(int64_t, ch64b) = 48;           // 3x3 at 64
  TORCH_ARG(int64_t, ch32) = 96;            // 3x3 stride 2: 64 -> 32
  TORCH_ARG(int64_t, attr_channels) = 32;   // 1x1 at 32, linear
  // Bottleneck: the map is averaged over pool x pool cells and spread back to 32x32 (bilinear),
  // so that only coarse layout (pose, lighting, hair mass) reaches G; 1 keeps the full map.
  // Parameter-free: weights trained with one pool value load with another.
  TORCH_ARG(int64_t, pool) = 1;

 public:
  // Architecture keys of the model file; `pool` only when it is not 1 (files written before it
  // existed have pool 1).
  std::map<std::string, std::string> ToMap() const;
  // Defaults overridden by the keys of `m` that set a parameter-free option (pool).
  static StatusOr<AttributeEncoderOptions> FromMap(const std::map<std::string, std::string>& m);
};

class AttributeEncoderImpl : public torch::nn::Module {
 public:
  explicit AttributeEncoderImpl(const AttributeEncoderOptions& options = {});
  // x: N x 3 x 128 x 128 (BGR, [-1, 1]) -> N x attr_channels x 32 x 32.
  torch::Tensor forward(const torch::Tensor& x);
  AttributeEncoderOptions options;

 private:
  EqualConv2d c64a_{nullptr}, c64b_{nullptr}, c32_{nullptr}, out_{nullptr};
};
TORCH_MODULE(AttributeEncoder);

}  // namespace veil::engine::identity
