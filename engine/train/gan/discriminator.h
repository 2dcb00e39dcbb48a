// The discriminator D (training only): a 128x128 BGR crop in [-1, 1] -> a realism logit.
// Plain strided convolutions with equalized learning rate, no normalization (R1 penalty in the
// trainer), a minibatch-standard-deviation channel at 4x4 against mode collapse. About 0.3 GFLOP.
#pragma once

#include "identity/generator_layers.h"

namespace veil::train::gan {

struct DiscriminatorOptions {
  TORCH_ARG(int64_t, ch64) = 32;
  TORCH_ARG(int64_t, ch32) = 64;
  TORCH_ARG(int64_t, ch16) = 128;
  TORCH_ARG(int64_t, ch8) = 256;
  TORCH_ARG(int64_t, ch4) = 256;
};

class DiscriminatorImpl : public torch::nn::Module {
 public:
  explicit DiscriminatorImpl(const DiscriminatorOptions& options = {});
  torch::Tensor forward(const torch::Tensor& x);  // N x 1
  DiscriminatorOptions options;

 private:
  using Conv = veil::engine::identity::EqualConv2d;
  Conv c64_{nullptr}, c32a_{nullptr}, c32b_{nullptr}, c16a_{nullptr}, c16b_{nullptr}, c8_{nullptr}, c4_{nullptr};
  veil::engine::identity::EqualLinear fc_{nullptr}, out_{nullptr};
};
TORCH_MODULE(Discriminator);

}  // namespace veil::train::gan
