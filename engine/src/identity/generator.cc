#include "identity/generator.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "veil/engine/renderer_calibration.h"

namespace veil::engine::identity {
namespace {
thread_local MacCounter* g_counter = nullptr;
}  // namespace

MacCounter::MacCounter() : previous_(g_counter) { g_counter = this; }
MacCounter::~MacCounter() {
  if (previous_ != nullptr) previous_->macs_ += macs_;
  g_counter = previous_;
}
void MacCounter::Add(int64_t macs) {
  if (g_counter != nullptr) g_counter->macs_ += macs;
}

torch::Tensor PixelsToUnit(const torch::Tensor& nhwc_u8, at::MemoryFormat format) {
  return nhwc_u8.permute({0, 3, 1, 2}).to(torch::kFloat32).div(127.5).sub(1.0).contiguous(format);
}

torch::Tensor OnCpuChannelsLast(const torch::Tensor& x) {
  return x.is_cpu() ? x.contiguous(at::MemoryFormat::ChannelsLast) : x.contiguous();
}

torch::Tensor UnitToPixels(const torch::Tensor& nchw) {
  return nchw.clamp(-1.0, 1.0).add(1.0).mul(127.5).round().to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
}

torch::Tensor ScaledLeakyRelu(const torch::Tensor& x) {
  return torch::leaky_relu(x, 0.2) * std::sqrt(2.0);
}

torch::Tensor Upsample2x(const torch::Tensor& x) {
  namespace F = torch::nn::functional;
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{x.size(2) * 2, x.size(3) * 2})
                               .mode(torch::kBilinear)
                               .align_corners(false));
}

// ---------------------------------------------------------------------------------------------

EqualLinearImpl::EqualLinearImpl(const EqualLinearOptions& o) : options(o) {
  weight_ = register_parameter("weight", torch::randn({o.out(), o.in()}));
  bias_ = register_parameter("bias", torch::full({o.out()}, o.bias_init()));
}

torch::Tensor EqualLinearImpl::forward(const torch::Tensor& x) {
  MacCounter::Add(x.size(0) * options.in() * options.out());
  torch::Tensor y = torch::addmm(bias_, x, (weight_ * (1.0 / std::sqrt(double(options.in())))).t());
  return options.activate() ? ScaledLeakyRelu(y) : y;
}

EqualConv2dImpl::EqualConv2dImpl(const EqualConv2dOptions& o) : options(o) {
  weight_ = register_parameter("weight", torch::randn({o.out(), o.in(), o.kernel(), o.kernel()}));
  bias_ = register_parameter("bias", torch::zeros({o.out()}));
}

torch::Tensor EqualConv2dImpl::forward(const torch::Tensor& x) {
  const int64_t k = options.kernel();
  const double scale = 1.0 / std::sqrt(double(options.in() * k * k));
  torch::Tensor y = torch::conv2d(x, weight_ * scale, bias_, options.stride(), (k - 1) / 2);
  MacCounter::Add(y.size(0) * y.size(2) * y.size(3) * options.out() * options.in() * k * k);
  return options.activate() ? ScaledLeakyRelu(y) : y;
}

ModulatedConv2dImpl::ModulatedConv2dImpl(const ModulatedConv2dOptions& o) : options(o) {
  affine_ = register_module("affine", EqualLinear(EqualLinearOptions(o.style_dim(), o.in()).bias_init(1.0)));
  weight_ = register_parameter("weight", torch::randn({o.out(), o.in(), o.kernel(), o.kernel()}));
  bias_ = register_parameter("bias", torch::zeros({o.out()}));
}

torch::Tensor ModulatedConv2dImpl::forward(const torch::Tensor& x, const torch::Tensor& w) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == options.in(), "ModulatedConv2d: expected N x ", options.in(),
              " x H x W, got ", x.sizes());
  const int64_t n = x.size(0), k = options.kernel(), in = options.in(), out = options.out();
  const torch::Tensor style = affine_->forward(w);  // N x in
  if (!options.fused()) {
    // Scale the input channels, convolve with the shared weight, rescale the output channels by
    // the demodulation coefficients: the same function as the fused form, as one batched conv.
    const torch::Tensor wt = weight_ * (1.0 / std::sqrt(double(in * k * k)));
    torch::Tensor y = torch::conv2d(x * style.view({n, in, 1, 1}), wt, {}, options.stride(), (k - 1) / 2);
    if (options.demodulate()) {
      torch::Tensor d = torch::rsqrt(torch::mm(style.pow(2), wt.pow(2).sum({2, 3}).t()) + 1e-8);  // N x out
      y = y * d.view({n, out, 1, 1});
      MacCounter::Add(n * in * out);
    }
    y = y + bias_.view({1, out, 1, 1});
    MacCounter::Add(n * y.size(2) * y.size(3) * out * in * k * k);
    return options.activate() ? ScaledLeakyRelu(y) : y;
  }
  // Fused: one grouped convolution (groups = N) with per-sample modulated weights.
  torch::Tensor weight = weight_.unsqueeze(0) * (1.0 / std::sqrt(double(in * k * k))) *
                         style.view({n, 1, in, 1, 1});  // N x out x in x k x k
  if (options.demodulate()) {
    weight = weight * torch::rsqrt(weight.pow(2).sum({2, 3, 4}, /*keepdim=*/true) + 1e-8);
    MacCounter::Add(n * out * in * k * k * 2);
  } else {
    MacCounter::Add(n * out * in * k * k);
  }
  torch::Tensor y = torch::conv2d(x.reshape({1, n * in, x.size(2), x.size(3)}), weight.reshape({n * out, in, k, k}),
                                  {}, options.stride(), (k - 1) / 2, /*dilation=*/1, /*groups=*/n);
  y = y.view({n, out, y.size(2), y.size(3)}) + bias_.view({1, out, 1, 1});
  MacCounter::Add(n * y.size(2) * y.size(3) * out * in * k * k);
  return options.activate() ? ScaledLeakyRelu(y) : y;
}

ModulatedConv2dImpl::Folded ModulatedConv2dImpl::Fold(const torch::Tensor& w) {
  TORCH_CHECK(w.dim() == 2 && w.size(0) == 1 && w.size(1) == options.style_dim(), "ModulatedConv2d::Fold: expected 1 x ",
              options.style_dim(), ", got ", w.sizes());
  const int64_t k = options.kernel(), in = options.in(), out = options.out();
  const torch::Tensor style = affine_->forward(w).view({1, in});
  // leaky_relu(a y) = a leaky_relu(y) for a > 0: the activation's gain moves into the conv.
  const double gain = options.activate() ? std::sqrt(2.0) : 1.0;
  // One out x in factor (scale, style, demodulation, gain), then one pass over the weight.
  torch::Tensor factor = style * (gain / std::sqrt(double(in * k * k)));  // 1 x in
  if (options.demodulate()) {
    const torch::Tensor energy = torch::mm(style.pow(2), weight_.pow(2).sum({2, 3}).t()) * (1.0 / double(in * k * k));
    factor = factor * torch::rsqrt(energy + 1e-8).view({out, 1});  // out x in
  } else {
    factor = factor.expand({out, in});
  }
  torch::Tensor weight = torch::empty_like(weight_, at::MemoryFormat::ChannelsLast);
  torch::mul_out(weight, weight_, factor.reshape({out, in, 1, 1}));
  return {weight, options.activate() ? bias_ * gain : bias_.clone(), options.stride(), (k - 1) / 2, options.activate()};
}

torch::Tensor ModulatedConv2dImpl::Apply(const torch::Tensor& x, const Folded& f) {
  torch::Tensor y = torch::conv2d(x, f.weight, f.bias, f.stride, f.padding);
  if (f.activate) torch::leaky_relu_(y, 0.2);
  return y;
}

// ---------------------------------------------------------------------------------------------

std::map<std::string, std::string> GeneratorOptions::ToMap() const {
  std::map<std::string, std::string> m = {{"arch", "veil-g1"},
          {"attr_channels", std::to_string(attr_channels())},
          {"id_dim", std::to_string(id_dim())},
          {"w_dim", std::to_string(w_dim())},
          {"mapping_layers", std::to_string(mapping_layers())},
          {"ch16", std::to_string(ch16())},
          {"ch32", std::to_string(ch32())},
          {"ch64", std::to_string(ch64())},
          {"ch128", std::to_string(ch128())},
          {"resolution", "128"},
          {"color", "bgr"},
          {"range", "-1..1"}};
  if (identity_gain() != 1.0) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.4g", identity_gain());
    m["identity_gain"] = buf;
  }
  if (readback_noise_ratio() != 0.0) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.4g", readback_noise_ratio());
    m["readback_noise_ratio"] = buf;
  }
  return m;
}

StatusOr<GeneratorOptions> GeneratorOptions::FromMap(const std::map<std::string, std::string>& m) {
  GeneratorOptions o;
  // The widths of the 64x64 and 128x128 stages: a file may be wider than the defaults (a G widened
  // in training), up to 64 and 32, the widest pair within the 2 GFLOP budget of E + F + G.
  auto width = [&m](const char* key, int64_t fallback, int64_t most) -> StatusOr<int64_t> {
    const auto it = m.find(key);
    if (it == m.end()) return fallback;
    return ParseInteger(it->second, "generator option " + it->first, 8, most);
  };
  VEIL_ASSIGN_OR_RETURN(const int64_t ch64, width("ch64", o.ch64(), 64));
  VEIL_ASSIGN_OR_RETURN(const int64_t ch128, width("ch128", o.ch128(), 32));
  o.ch64(ch64).ch128(ch128);
  if (auto it = m.find("identity_gain"); it != m.end()) {
    VEIL_ASSIGN_OR_RETURN(double g, ParseNumber(it->second, "generator option " + it->first, CheckIdentityGain));
    o.identity_gain(g);
  }
  if (auto it = m.find("readback_noise_ratio"); it != m.end()) {
    VEIL_ASSIGN_OR_RETURN(double r, ParseNumber(it->second, "generator option " + it->first, CheckReadBackNoiseRatio));
    o.readback_noise_ratio(r);
  }
  return o;
}

MappingNetworkImpl::MappingNetworkImpl(int64_t id_dim, int64_t w_dim, int64_t layers) {
  net_ = torch::nn::Sequential();
  for (int64_t i = 0; i < layers; ++i) net_->push_back(EqualLinear(EqualLinearOptions(i == 0 ? id_dim : w_dim, w_dim).activate(true)));
  register_module("net", net_);
}

torch::Tensor MappingNetworkImpl::forward(const torch::Tensor& z) {
  // RMS normalization: the descriptor's direction is the identity; its norm (about 1.4) is not.
  return net_->forward(z * torch::rsqrt(z.pow(2).mean(1, /*keepdim=*/true) + 1e-8));
}

GeneratorImpl::GeneratorImpl(const GeneratorOptions& o) : options(o) {
  const int64_t w = o.w_dim();
  auto mod = [w](int64_t in, int64_t out, int64_t k) { return ModulatedConv2dOptions(in, out, k, w); };
  mapping_ = register_module("mapping", MappingNetwork(o.id_dim(), w, o.mapping_layers()));
  in32_ = register_module("in32", EqualConv2d(EqualConv2dOptions(o.attr_channels(), o.ch32(), 1)));
  b32a_ = register_module("b32a", ModulatedConv2d(mod(o.ch32(), o.ch32(), 3)));
  down16_ = register_module("down16", ModulatedConv2d(mod(o.ch32(), o.ch16(), 3).stride(2)));
  b16_ = register_module("b16", ModulatedConv2d(mod(o.ch16(), o.ch16(), 3)));
  up16_ = register_module("up16", ModulatedConv2d(mod(o.ch16(), o.ch32(), 1)));
  b32b_ = register_module("b32b", ModulatedConv2d(mod(o.ch32(), o.ch32(), 3)));
  reduce64_ = register_module("reduce64", ModulatedConv2d(mod(o.ch32(), o.ch64(), 1)));
  b64_ = register_module("b64", ModulatedConv2d(mod(o.ch64(), o.ch64(), 3)));
  reduce128_ = register_module("reduce128", ModulatedConv2d(mod(o.ch64(), o.ch128(), 1)));
  b128_ = register_module("b128", ModulatedConv2d(mod(o.ch128(), o.ch128(), 3)));
  rgb32_ = register_module("rgb32", ModulatedConv2d(mod(o.ch32(), 3, 1).demodulate(false).activate(false)));
  rgb64_ = register_module("rgb64", ModulatedConv2d(mod(o.ch64(), 3, 1).demodulate(false).activate(false)));
  rgb128_ = register_module("rgb128", ModulatedConv2d(mod(o.ch128(), 3, 1).demodulate(false).activate(false)));
}

void GeneratorImpl::CheckAttr(const torch::Tensor& attr) const {
  TORCH_CHECK(attr.dim() == 4 && attr.size(1) == options.attr_channels() && attr.size(2) == 32 && attr.size(3) == 32,
              "Generator: attribute map must be N x ", options.attr_channels(), " x 32 x 32, got ", attr.sizes());
}

std::array<ModulatedConv2d*, GeneratorImpl::kConvs> GeneratorImpl::Convs() {
  return {&b32a_, &down16_, &b16_, &up16_, &b32b_, &rgb32_, &reduce64_, &b64_, &rgb64_, &reduce128_, &b128_, &rgb128_};
}

torch::Tensor GeneratorImpl::Decode(torch::Tensor h32, const ConvFn& conv) {
  h32 = conv(kB32a, h32);
  torch::Tensor h16 = conv(kB16, conv(kDown16, h32));
  h32 = conv(kB32b, (h32 + Upsample2x(conv(kUp16, h16))) * (1.0 / std::sqrt(2.0)));
  torch::Tensor rgb = conv(kRgb32, h32);
  torch::Tensor h64 = conv(kB64, Upsample2x(conv(kReduce64, h32)));
  rgb = Upsample2x(rgb) + conv(kRgb64, h64);
  torch::Tensor h128 = conv(kB128, Upsample2x(conv(kReduce128, h64)));
  return Upsample2x(rgb) + conv(kRgb128, h128);
}

torch::Tensor GeneratorImpl::forward(const torch::Tensor& attr, const torch::Tensor& id) {
  CheckAttr(attr);
  TORCH_CHECK(id.dim() == 2 && id.size(0) == attr.size(0) && id.size(1) == options.id_dim(),
              "Generator: identity must be N x ", options.id_dim(), ", got ", id.sizes());
  const torch::Tensor w = mapping_->forward(id);
  const auto convs = Convs();
  return Decode(OnCpuChannelsLast(in32_->forward(attr)), [&](int i, const torch::Tensor& x) { return (*convs[i])->forward(x, w); });
}

GeneratorImpl::Folded GeneratorImpl::Fold(const torch::Tensor& id) {
  TORCH_CHECK(id.dim() == 2 && id.size(0) == 1 && id.size(1) == options.id_dim(), "Generator::Fold: identity must be 1 x ",
              options.id_dim(), ", got ", id.sizes());
  const torch::Tensor w = mapping_->forward(id);
  Folded f;
  for (ModulatedConv2d* m : Convs()) f.convs.push_back((*m)->Fold(w));
  return f;
}

torch::Tensor GeneratorImpl::Infer(const torch::Tensor& attr, const Folded& f) {
  CheckAttr(attr);
  TORCH_CHECK(attr.size(0) == 1, "Generator::Infer: one face at a time, got ", attr.size(0));
  TORCH_CHECK(f.convs.size() == kConvs, "Generator::Infer: folded weights of another generator");
  // Channels-last: oneDNN's convolutions run the thin 64- and 128-pixel layers 2-3x faster so.
  return Decode(in32_->forward(attr).contiguous(at::MemoryFormat::ChannelsLast),
                [&](int i, const torch::Tensor& x) { return ModulatedConv2dImpl::Apply(x, f.convs[i]); })
      .contiguous();
}

int64_t MeasureMacsPerFace(AttributeEncoderImpl& encoder, GeneratorImpl& generator) {
  torch::NoGradGuard no_grad;
  const auto params = generator.parameters();
  const torch::Device device = params.empty() ? torch::Device(torch::kCPU) : params.front().device();
  MacCounter counter;
  torch::Tensor x = torch::zeros({1, 3, 128, 128}, torch::TensorOptions().device(device));
  torch::Tensor z = torch::ones({1, generator.options.id_dim()}, torch::TensorOptions().device(device));
  generator.forward(encoder.forward(x), z);
  return counter.macs();
}

}  // namespace veil::engine::identity

namespace veil::engine {

Status CheckIdentityGain(double gain, const std::string& what) { return CheckInRange(gain, 1.0, 8.0, what); }
Status CheckReadBackNoiseRatio(double ratio, const std::string& what) { return CheckInRange(ratio, 0.0, 10.0, what); }

}  // namespace veil::engine
