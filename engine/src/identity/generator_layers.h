// Building blocks of the attribute encoder, the generator and the (training-only) discriminator:
// StyleGAN2-style layers with equalized learning rate (weights stored N(0,1), scaled by
// 1/sqrt(fan_in) at run time), modulated + demodulated convolutions done as one grouped
// convolution with per-sample weights, and a multiply-accumulate counter for the FLOP budget.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace veil::engine::identity {

// Counts multiply-accumulates of the layers below while alive (this thread only). Used to measure
// FLOPs per face (FLOPs = 2 x MACs) by running one real forward pass at batch 1.
class MacCounter {
 public:
  MacCounter();
  ~MacCounter();
  MacCounter(const MacCounter&) = delete;
  MacCounter& operator=(const MacCounter&) = delete;
  int64_t macs() const { return macs_; }
  static void Add(int64_t macs);  // no-op when no counter is alive

 private:
  int64_t macs_ = 0;
  MacCounter* previous_ = nullptr;
};

// Leaky ReLU 0.2 with StyleGAN's gain sqrt(2), which keeps activations at unit variance.
torch::Tensor ScaledLeakyRelu(const torch::Tensor& x);

struct EqualLinearOptions {
  EqualLinearOptions(int64_t in, int64_t out) : in_(in), out_(out) {}
  TORCH_ARG(int64_t, in);
  TORCH_ARG(int64_t, out);
  TORCH_ARG(double, bias_init) = 0.0;
  TORCH_ARG(bool, activate) = false;
};

class EqualLinearImpl : public torch::nn::Module {
 public:
  explicit EqualLinearImpl(const EqualLinearOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  EqualLinearOptions options;

 private:
  torch::Tensor weight_, bias_;
};
TORCH_MODULE(EqualLinear);

struct EqualConv2dOptions {
  EqualConv2dOptions(int64_t in, int64_t out, int64_t kernel) : in_(in), out_(out), kernel_(kernel) {}
  TORCH_ARG(int64_t, in);
  TORCH_ARG(int64_t, out);
  TORCH_ARG(int64_t, kernel);
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(bool, activate) = true;
};

// Plain (non-modulated) convolution with "same" padding for stride 1, (k-1)/2 for stride 2.
class EqualConv2dImpl : public torch::nn::Module {
 public:
  explicit EqualConv2dImpl(const EqualConv2dOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  EqualConv2dOptions options;

 private:
  torch::Tensor weight_, bias_;
};
TORCH_MODULE(EqualConv2d);

struct ModulatedConv2dOptions {
  ModulatedConv2dOptions(int64_t in, int64_t out, int64_t kernel, int64_t style_dim)
      : in_(in), out_(out), kernel_(kernel), style_dim_(style_dim) {}
  TORCH_ARG(int64_t, in);
  TORCH_ARG(int64_t, out);
  TORCH_ARG(int64_t, kernel);
  TORCH_ARG(int64_t, style_dim);
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(bool, demodulate) = true;
  TORCH_ARG(bool, activate) = true;
  // true: per-sample weights in one grouped conv; false (default, measured faster for fwd + bwd on
  // the 2-core CPU): scale the input by s, shared-weight conv, scale the output by the
  // demodulation coefficients. Same function either way.
  TORCH_ARG(bool, fused) = false;
};

// StyleGAN2 modulated convolution: style s = affine(w) (bias 1), weight'[n] = weight * s[n] per
// input channel, demodulated to unit output norm. No noise inputs.
class ModulatedConv2dImpl : public torch::nn::Module {
 public:
  explicit ModulatedConv2dImpl(const ModulatedConv2dOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& w);
  // Inference form for one sample: the style of `w` (1 x style_dim), the demodulation and the
  // activation's gain folded into one conv weight and bias, then Apply. The same function as
  // forward to float rounding; not differentiable: call both under torch::NoGradGuard or
  // c10::InferenceMode (Fold throws on weights that require grad otherwise).
  struct Folded {
    torch::Tensor weight, bias;
    int64_t stride = 1, padding = 0;
    bool activate = true;
  };
  Folded Fold(const torch::Tensor& w);
  static torch::Tensor Apply(const torch::Tensor& x, const Folded& f);
  ModulatedConv2dOptions options;

 private:
  EqualLinear affine_{nullptr};
  torch::Tensor weight_, bias_;
};
TORCH_MODULE(ModulatedConv2d);

// Bilinear x2 upsampling (half-pixel centres).
torch::Tensor Upsample2x(const torch::Tensor& x);

}  // namespace veil::engine::identity
