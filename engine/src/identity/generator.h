// The generator G: (attribute map from E, 128-D identity code) -> 128x128 BGR face crop in [-1, 1].
//
// StyleGAN2-style decoder: a mapping MLP turns the identity code (RMS-normalized) into w; every
// modulated convolution has its own affine style from w (per-layer styles); skip architecture with
// toRGB at 32, 64 and 128 summed after bilinear upsampling. No noise inputs: fully deterministic.
// The attribute map enters at 32x32; a 16x16 branch gives the identity styles a wide receptive
// field (face shape), then 64 and 128 refine.
//
// Register names are checkpoint and model-file keys: do not rename.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "identity/attribute_encoder.h"
#include "identity/generator_layers.h"
#include "veil/status.h"

namespace veil::engine::identity {

// E's and G's pixel convention: N x H x W x 3 uint8 BGR <-> N x 3 x H x W float BGR in [-1, 1].
// `format`: the memory layout of the result (channels-last keeps the pixels' own order: no copy).
torch::Tensor PixelsToUnit(const torch::Tensor& nhwc_u8, at::MemoryFormat format = at::MemoryFormat::Contiguous);
// On the CPU channels-last (oneDNN runs the convolutions and their gradients faster so: a GAN
// training step on 2 cores 0.76 -> 0.60 s, 2026-12-06); elsewhere contiguous NCHW.
torch::Tensor OnCpuChannelsLast(const torch::Tensor& x);
// Clamps to [-1, 1] and rounds to the nearest 8-bit value (on the tensor's device).
torch::Tensor UnitToPixels(const torch::Tensor& nchw);

struct GeneratorOptions {
  TORCH_ARG(int64_t, attr_channels) = 32;  // channels of E's 32x32 map
  TORCH_ARG(int64_t, id_dim) = 128;
  TORCH_ARG(int64_t, w_dim) = 256;
  TORCH_ARG(int64_t, mapping_layers) = 4;
  TORCH_ARG(int64_t, ch16) = 192;
  TORCH_ARG(int64_t, ch32) = 128;
  TORCH_ARG(int64_t, ch64) = 48;
  TORCH_ARG(int64_t, ch128) = 24;
  // Not part of the network: the gain with which FaceRenderer steers identities for this
  // generator (SteerIdentity in face_renderer.h), calibrated on held-out faces at export.
  TORCH_ARG(double, identity_gain) = 1.0;
  // Not part of the network either: how noisy this generator's rendered identity reads back, as
  // the read-back error's variance over the codes' mean variance (IdentityFlow::Denoise), for
  // keyed restore without a payload; calibrated with veil eval at export. 0: no denoising.
  TORCH_ARG(double, readback_noise_ratio) = 0.0;

 public:
  // Model-file keys; identity_gain only when it is not 1 and readback_noise_ratio only when it is
  // not 0 (files written before they existed).
  std::map<std::string, std::string> ToMap() const;
  // Defaults overridden by the keys of `m` that are not architecture (identity_gain,
  // readback_noise_ratio) and by the widths ch64 (8..64) and ch128 (8..32), which a file may raise
  // up to the FLOP budget; InvalidArgument for a value out of range.
  static StatusOr<GeneratorOptions> FromMap(const std::map<std::string, std::string>& m);
};

class MappingNetworkImpl : public torch::nn::Module {
 public:
  MappingNetworkImpl(int64_t id_dim, int64_t w_dim, int64_t layers);
  torch::Tensor forward(const torch::Tensor& z);

 private:
  torch::nn::Sequential net_{nullptr};
};
TORCH_MODULE(MappingNetwork);

class GeneratorImpl : public torch::nn::Module {
 public:
  explicit GeneratorImpl(const GeneratorOptions& options = {});
  // attr: N x attr_channels x 32 x 32; id: N x id_dim (any scale). Returns N x 3 x 128 x 128
  // (BGR, about [-1, 1], not clamped).
  torch::Tensor forward(const torch::Tensor& attr, const torch::Tensor& id);
  // The same function for inference (no autograd), one face at a time, in two steps: Fold turns an
  // identity (1 x id_dim) into every conv's weights with its style, demodulation and activation
  // gain folded in (ModulatedConv2d::Fold); Infer renders an attribute map (1 x attr_channels x
  // 32 x 32) with them. A stream renders one identity frame after frame: its Folded is reused.
  // Inference only: call under torch::NoGradGuard or c10::InferenceMode.
  struct Folded {
    std::vector<ModulatedConv2dImpl::Folded> convs;
  };
  Folded Fold(const torch::Tensor& id);
  torch::Tensor Infer(const torch::Tensor& attr, const Folded& folded);
  GeneratorOptions options;

 private:
  // The decoder's modulated convs, in the order Convs() lists them and Folded holds them.
  enum Conv { kB32a, kDown16, kB16, kUp16, kB32b, kRgb32, kReduce64, kB64, kRgb64, kReduce128, kB128, kRgb128, kConvs };
  std::array<ModulatedConv2d*, kConvs> Convs();
  // The decoder's graph from the 32x32 map, once for both forms: `conv(i, x)` applies conv i.
  using ConvFn = std::function<torch::Tensor(int, const torch::Tensor&)>;
  static torch::Tensor Decode(torch::Tensor h32, const ConvFn& conv);
  void CheckAttr(const torch::Tensor& attr) const;

  MappingNetwork mapping_{nullptr};
  EqualConv2d in32_{nullptr};
  ModulatedConv2d b32a_{nullptr}, down16_{nullptr}, b16_{nullptr}, up16_{nullptr}, b32b_{nullptr};
  ModulatedConv2d reduce64_{nullptr}, b64_{nullptr}, reduce128_{nullptr}, b128_{nullptr};
  ModulatedConv2d rgb32_{nullptr}, rgb64_{nullptr}, rgb128_{nullptr};
};
TORCH_MODULE(Generator);

}  // namespace veil::engine::identity

namespace veil::engine::identity {

// E + G multiply-accumulates for one face, measured by one forward pass at batch 1 on E's and G's
// device.
int64_t MeasureMacsPerFace(AttributeEncoderImpl& encoder, GeneratorImpl& generator);

}  // namespace veil::engine::identity
