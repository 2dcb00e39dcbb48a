// The keyed identity flow: the module (flow.h) and the public IdentityFlow (identity_flow.h).
#include "identity/flow.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "nets/module_io.h"
#include "veil/engine/face_renderer.h"
#include "veil/engine/identity_flow.h"
#include "veil/engine/runtime.h"

namespace veil::engine {
namespace identity {
namespace {

// splitmix64: a fixed, portable stream for the fixed (unkeyed) mixing matrices.
uint64_t SplitMix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A fixed orthogonal matrix: QR of a Gaussian matrix from splitmix64(seed), signs fixed.
torch::Tensor FixedOrthogonal(int64_t dim, uint64_t seed) {
  std::vector<double> g(static_cast<size_t>(dim * dim));
  for (size_t i = 0; i < g.size(); i += 2) {
    const double u1 = (static_cast<double>(SplitMix(seed) >> 11) + 0.5) / 9007199254740992.0;
    const double u2 = (static_cast<double>(SplitMix(seed) >> 11) + 0.5) / 9007199254740992.0;
    const double r = std::sqrt(-2.0 * std::log(u1));
    g[i] = r * std::cos(2 * M_PI * u2);
    if (i + 1 < g.size()) g[i + 1] = r * std::sin(2 * M_PI * u2);
  }
  torch::Tensor a = torch::from_blob(g.data(), {dim, dim}, torch::kFloat64).clone();
  auto [q, r] = torch::linalg_qr(a);
  q = q * torch::sign(torch::diagonal(r)).unsqueeze(0);
  return q.to(torch::kFloat32).contiguous();
}

std::string Fmt(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

size_t FlowOptions::conditioning_bytes() const {
  return static_cast<size_t>(cond_dim() + reflections() * work_dim());
}

std::map<std::string, std::string> FlowOptions::ToMap() const {
  std::map<std::string, std::string> m = {{"dim", std::to_string(dim())},
          {"cond_dim", std::to_string(cond_dim())},
          {"embed_dim", std::to_string(embed_dim())},
          {"hidden", std::to_string(hidden())},
          {"couplings", std::to_string(couplings())},
          {"reflections", std::to_string(reflections())},
          {"max_log_scale", Fmt(max_log_scale())},
          {"whiten", Fmt(whiten())},
          {"conditioning", kFlowConditioningContext},
          {"key_bytes", std::to_string(kFlowSubkeyBytes)}};
  if (work_dim() != dim()) m["signal_dims"] = std::to_string(work_dim());  // files before it: all dims
  return m;
}

StatusOr<FlowOptions> FlowOptions::FromMap(const std::map<std::string, std::string>& m) {
  FlowOptions o;
  const std::set<std::string> known = {"dim",          "cond_dim",      "embed_dim", "hidden",       "couplings",
                                       "reflections",  "max_log_scale", "whiten",    "conditioning", "key_bytes",
                                       "signal_dims"};
  for (const auto& [k, v] : m)
    if (!known.count(k)) return InvalidArgumentError("identity flow: unknown option " + k);
  auto get = [&](const std::string& k) -> StatusOr<std::string> {
    auto it = m.find(k);
    if (it == m.end()) return InvalidArgumentError("identity flow: model lacks option " + k);
    return it->second;
  };
  auto integer = [&](const std::string& k, int64_t lo, int64_t hi) -> StatusOr<int64_t> {
    VEIL_ASSIGN_OR_RETURN(std::string v, get(k));
    return ParseInteger(v, "identity flow: option " + k, lo, hi);
  };
  auto real = [&](const std::string& k, double lo, double hi) -> StatusOr<double> {
    VEIL_ASSIGN_OR_RETURN(std::string v, get(k));
    return ParseNumber(v, "identity flow: option " + k, [lo, hi](double x, const std::string& what) {
      return CheckInRange(x, lo, hi, what);
    });
  };
  VEIL_ASSIGN_OR_RETURN(int64_t dim, integer("dim", 2, 4096));
  if (dim % 2 != 0) return InvalidArgumentError("identity flow: dim must be even");
  o.dim(dim);
  if (m.count("signal_dims")) {
    VEIL_ASSIGN_OR_RETURN(int64_t sd, integer("signal_dims", 2, dim));
    if (sd % 2 != 0) return InvalidArgumentError("identity flow: signal_dims must be even");
    o.signal_dims(sd);
  }
  VEIL_ASSIGN_OR_RETURN(int64_t cond, integer("cond_dim", 1, 4096));
  o.cond_dim(cond);
  VEIL_ASSIGN_OR_RETURN(int64_t embed, integer("embed_dim", 1, 4096));
  o.embed_dim(embed);
  VEIL_ASSIGN_OR_RETURN(int64_t hidden, integer("hidden", 1, 8192));
  o.hidden(hidden);
  VEIL_ASSIGN_OR_RETURN(int64_t couplings, integer("couplings", 1, 64));
  o.couplings(couplings);
  VEIL_ASSIGN_OR_RETURN(int64_t reflections, integer("reflections", 0, 4096));
  o.reflections(reflections);
  VEIL_ASSIGN_OR_RETURN(double mls, real("max_log_scale", 1e-3, 10));
  o.max_log_scale(mls);
  VEIL_ASSIGN_OR_RETURN(double whiten, real("whiten", 0, 1));
  o.whiten(whiten);
  VEIL_ASSIGN_OR_RETURN(std::string ctx, get("conditioning"));
  if (ctx != kFlowConditioningContext)
    return InvalidArgumentError("identity flow: conditioning '" + ctx + "' does not match this build (" +
                                kFlowConditioningContext + ")");
  VEIL_ASSIGN_OR_RETURN(int64_t key_bytes, integer("key_bytes", 1, 1024));
  if (key_bytes != static_cast<int64_t>(kFlowSubkeyBytes))
    return InvalidArgumentError("identity flow: key_bytes does not match this build");
  return o;
}

void FlowKeys::Wipe() {
  torch::NoGradGuard g;
  if (cond.defined()) cond.zero_();
  if (q.defined()) q.zero_();
}

StatusOr<FlowKeys> MakeFlowKeys(const FlowOptions& options, const std::vector<const keys::SecretBytes*>& subkeys,
                                const std::vector<int64_t>& rows) {
  if (subkeys.empty()) return InvalidArgumentError("identity flow: no key");
  const int64_t k = static_cast<int64_t>(subkeys.size());
  const int64_t d = options.work_dim(), c = options.cond_dim(), r = options.reflections();
  torch::NoGradGuard no_grad;
  torch::Tensor cond = torch::zeros({k, c}, torch::kFloat32);
  torch::Tensor v = torch::zeros({k, std::max<int64_t>(r, 1), d}, torch::kFloat64);
  // Every key-derived tensor named here is zeroed on every way out, failures included.
  struct ZeroOnExit {
    std::vector<torch::Tensor*> tensors;
    ~ZeroOnExit() {
      for (torch::Tensor* t : tensors) {
        if (t->defined()) t->zero_();
      }
    }
  };
  torch::Tensor q, qv, delta, scale;
  ZeroOnExit wipe{{&v, &q, &qv, &delta, &scale}};
  ZeroOnExit wipe_cond_on_failure{{&cond}};
  for (int64_t i = 0; i < k; ++i) {
    VEIL_ASSIGN_OR_RETURN(keys::SecretBytes bytes,
                          IdentityFlow::ConditioningFrom(*subkeys[i], options.conditioning_bytes()));
    const uint8_t* b = bytes.data(keys::SecretAccess::Get());
    float* cp = cond[i].data_ptr<float>();
    for (int64_t j = 0; j < c; ++j) cp[j] = (static_cast<float>(b[j]) - 127.5f) / 127.5f;
    double* vp = v[i].data_ptr<double>();
    for (int64_t j = 0; j < r * d; ++j) vp[j] = (static_cast<double>(b[c + j]) - 127.5) / 127.5;
  }
  // Q = H_1 H_2 ... H_r, H_j = I - 2 v_j v_j^T / |v_j|^2, in float64.
  q = torch::eye(d, torch::kFloat64).unsqueeze(0).repeat({k, 1, 1});
  for (int64_t j = 0; j < r; ++j) {
    torch::Tensor vj = v.select(1, j);                           // [k, d]
    qv = torch::bmm(q, vj.unsqueeze(2));                         // [k, d, 1]
    scale = 2.0 / (vj * vj).sum(1).clamp_min(1e-12);             // [k]
    delta = torch::bmm(qv, vj.unsqueeze(1));
    delta.mul_(scale.view({k, 1, 1}));
    torch::Tensor next = q - delta;
    q.zero_();  // the partial product, before it is freed
    q = next;
  }
  FlowKeys out;
  out.q = q.to(torch::kFloat32);
  out.cond = cond;
  wipe_cond_on_failure.tensors.clear();  // from here `out` (or `sel`) owns it; its Wipe() zeroes it
  if (!rows.empty()) {
    torch::Tensor idx = torch::tensor(rows, torch::kInt64);
    if (idx.min().item<int64_t>() < 0 || idx.max().item<int64_t>() >= k) {
      out.Wipe();
      return InvalidArgumentError("identity flow: key row index out of range");
    }
    FlowKeys sel;
    sel.q = out.q.index_select(0, idx);
    sel.cond = out.cond.index_select(0, idx);
    out.Wipe();
    return sel;
  }
  return out;
}

CouplingImpl::CouplingImpl(const FlowOptions& options, bool transform_first_half)
    : options_(options), first_(transform_first_half) {
  const int64_t half = options.work_dim() / 2;
  fc1_ = register_module("fc1", torch::nn::Linear(half + options.embed_dim(), options.hidden()));
  fc2_ = register_module("fc2", torch::nn::Linear(options.hidden(), options.hidden()));
  fc3_ = register_module("fc3", torch::nn::Linear(options.hidden(), 2 * half));
  torch::NoGradGuard g;
  fc3_->weight.zero_();
  fc3_->bias.zero_();
}

std::pair<torch::Tensor, torch::Tensor> CouplingImpl::ScaleShift(const torch::Tensor& a, const torch::Tensor& e) {
  torch::Tensor h = torch::silu(fc1_->forward(torch::cat({a, e.expand({a.size(0), e.size(1)})}, 1)));
  h = torch::silu(fc2_->forward(h));
  torch::Tensor o = fc3_->forward(h);
  const int64_t half = options_.work_dim() / 2;
  const double m = options_.max_log_scale();
  torch::Tensor s = m * torch::tanh(o.narrow(1, 0, half) / m);
  return {s, o.narrow(1, half, half)};
}

torch::Tensor CouplingImpl::forward(const torch::Tensor& u, const torch::Tensor& e) {
  const int64_t half = options_.work_dim() / 2;
  torch::Tensor a = u.narrow(1, first_ ? half : 0, half);
  torch::Tensor b = u.narrow(1, first_ ? 0 : half, half);
  auto [s, t] = ScaleShift(a, e);
  torch::Tensor b2 = b * torch::exp(s) + t;
  return first_ ? torch::cat({b2, a}, 1) : torch::cat({a, b2}, 1);
}

torch::Tensor CouplingImpl::inverse(const torch::Tensor& u, const torch::Tensor& e) {
  const int64_t half = options_.work_dim() / 2;
  torch::Tensor a = u.narrow(1, first_ ? half : 0, half);
  torch::Tensor b2 = u.narrow(1, first_ ? 0 : half, half);
  auto [s, t] = ScaleShift(a, e);
  torch::Tensor b = (b2 - t) * torch::exp(-s);
  return first_ ? torch::cat({b, a}, 1) : torch::cat({a, b}, 1);
}

FlowImpl::FlowImpl(FlowOptions options) : options_(options) {
  const int64_t d = options_.dim(), w = options_.work_dim();
  TORCH_CHECK(w >= 2 && w <= d && w % 2 == 0, "flow signal_dims must be even and at most dim");
  embed_ = register_module("embed", torch::nn::Linear(options_.cond_dim(), options_.embed_dim()));
  for (int64_t i = 0; i < options_.couplings(); ++i)
    couplings_.push_back(register_module("coupling" + std::to_string(i), Coupling(options_, i % 2 == 1)));
  mean_ = register_buffer("mean", torch::zeros({d}));
  whiten_ = register_buffer("whiten", torch::eye(d));
  unwhiten_ = register_buffer("unwhiten", torch::eye(d));
  std::vector<torch::Tensor> mix;
  for (int64_t i = 0; i < options_.couplings(); ++i)
    mix.push_back(i == 0 ? torch::eye(w) : FixedOrthogonal(w, 0x7665696c666c6f77ull + static_cast<uint64_t>(i)));
  mix_ = register_buffer("mix", torch::stack(mix));
  if (w < d) {
    basis_ = register_buffer("basis", torch::eye(d).narrow(1, 0, w).contiguous());
    scale_ = register_buffer("scale", torch::ones({w}));
  }
}

void FlowImpl::SetStatistics(const torch::Tensor& mean, const torch::Tensor& cov) {
  torch::NoGradGuard g;
  auto [evals, evecs] = torch::linalg_eigh(cov.to(torch::kFloat64));
  torch::Tensor lam = evals.clamp_min(1e-12);
  lam = lam / lam.mean();
  const double a = options_.whiten();
  torch::Tensor w = torch::matmul(evecs * lam.pow(-a / 2).unsqueeze(0), evecs.t());
  torch::Tensor wi = torch::matmul(evecs * lam.pow(a / 2).unsqueeze(0), evecs.t());
  mean_.copy_(mean.to(torch::kFloat32));
  whiten_.copy_(w.to(torch::kFloat32));
  unwhiten_.copy_(wi.to(torch::kFloat32));
  const int64_t k = options_.work_dim();
  if (k < options_.dim()) {  // the top-k principal directions (eigh sorts ascending), largest first
    basis_.copy_(evecs.narrow(1, evecs.size(1) - k, k).flip({1}).to(torch::kFloat32));
    scale_.copy_(lam.narrow(0, lam.size(0) - k, k).flip({0}).pow(a / 2).to(torch::kFloat32));
  }
}

torch::Tensor FlowImpl::DenoiseSystem(double ratio) const {
  const torch::Tensor w = whiten_.to(torch::kFloat64);
  return torch::eye(w.size(0), torch::kFloat64) + ratio * torch::matmul(w, w);
}

std::pair<torch::Tensor, torch::Tensor> FlowImpl::ToWork(const torch::Tensor& x) const {
  const torch::Tensor c = x - mean_;
  if (!basis_.defined()) return {torch::matmul(c, whiten_.t()), torch::Tensor()};
  const torch::Tensor p = torch::matmul(c, basis_);  // [B, k]
  return {p / scale_, c - torch::matmul(p, basis_.t())};
}

torch::Tensor FlowImpl::FromWork(const torch::Tensor& u, const torch::Tensor& rest) const {
  if (!basis_.defined()) return torch::matmul(u, unwhiten_.t()) + mean_;
  return torch::matmul(u * scale_, basis_.t()) + rest + mean_;
}

torch::Tensor FlowImpl::Embed(const FlowKeys& keys) { return embed_->forward(keys.cond); }

torch::Tensor FlowImpl::forward(const torch::Tensor& x, const FlowKeys& keys) {
  TORCH_CHECK(x.dim() == 2 && x.size(1) == options_.dim(), "flow input must be [B, dim]");
  auto [u, rest] = ToWork(x);
  u = torch::matmul(keys.q, u.unsqueeze(2)).squeeze(2);
  torch::Tensor e = Embed(keys);
  for (size_t i = 0; i < couplings_.size(); ++i) {
    if (i > 0) u = torch::matmul(u, mix_[static_cast<int64_t>(i)].t());
    u = couplings_[i]->forward(u, e);
  }
  if (!torch::GradMode::is_enabled()) e.zero_();  // the key embedding (training keeps it for backward)
  return FromWork(u, rest);
}

torch::Tensor FlowImpl::inverse(const torch::Tensor& y, const FlowKeys& keys) {
  TORCH_CHECK(y.dim() == 2 && y.size(1) == options_.dim(), "flow input must be [B, dim]");
  auto [u, rest] = ToWork(y);
  torch::Tensor e = Embed(keys);
  for (size_t i = couplings_.size(); i-- > 0;) {
    u = couplings_[i]->inverse(u, e);
    if (i > 0) u = torch::matmul(u, mix_[static_cast<int64_t>(i)]);
  }
  if (!torch::GradMode::is_enabled()) e.zero_();
  u = torch::matmul(keys.q.transpose(1, 2), u.unsqueeze(2)).squeeze(2);
  return FromWork(u, rest);
}

}  // namespace identity

namespace {

class IdentityFlowImpl final : public IdentityFlow {
 public:
  IdentityFlowImpl(identity::FlowOptions options, const ModelFileContents& model)
      : flow_(options), model_id_(model.model_id), sha_(model.sha256_hex), options_(model.options) {}

  Status Init(const ModelFileContents& model) {
    VEIL_RETURN_IF_ERROR(CheckFiniteTensors(model, "identity flow"));
    VEIL_RETURN_IF_ERROR(LoadModuleTensors(*flow_, model));
    flow_->eval();
    // A flow over principal directions inverts only with an orthonormal basis and positive scales.
    auto buffers = flow_->named_buffers();
    if (const torch::Tensor* b = buffers.find("basis")) {
      torch::NoGradGuard g;
      const torch::Tensor& scale = buffers["scale"];
      const torch::Tensor gram = torch::matmul(b->t(), *b) - torch::eye(b->size(1));
      if (gram.abs().max().item<float>() > 1e-4f || scale.min().item<float>() <= 0.0f)
        return InvalidArgumentError("identity flow: the principal basis is not orthonormal or a scale is not positive");
    }
    return Status::Ok();
  }

  StatusOr<Descriptor> Forward(const Descriptor& code, const keys::SecretBytes& key) override {
    VEIL_ASSIGN_OR_RETURN(auto out, Run({code}, key, false));
    return out.at(0);
  }
  StatusOr<Descriptor> Inverse(const Descriptor& code, const keys::SecretBytes& key) override {
    VEIL_ASSIGN_OR_RETURN(auto out, Run({code}, key, true));
    return out.at(0);
  }
  StatusOr<std::vector<Descriptor>> ForwardBatch(const std::vector<Descriptor>& codes,
                                                 const keys::SecretBytes& key) override {
    return Run(codes, key, false);
  }
  StatusOr<std::vector<Descriptor>> InverseBatch(const std::vector<Descriptor>& codes,
                                                 const keys::SecretBytes& key) override {
    return Run(codes, key, true);
  }
  StatusOr<std::vector<Descriptor>> Denoise(const std::vector<Descriptor>& codes, float noise_ratio) override {
    if (!(noise_ratio >= 0.0f) || !std::isfinite(noise_ratio)) return InvalidArgumentError("identity flow: bad noise ratio");
    VEIL_RETURN_IF_ERROR(CheckCodes(codes));
    if (codes.empty() || noise_ratio == 0.0f) return codes;
    try {
      c10::InferenceMode guard;
      const torch::Tensor mean = flow_->Whitening().first;
      const torch::Tensor c = (ToTensor(codes) - mean).to(torch::kFloat64).t();
      return FromTensor(torch::linalg_solve(flow_->DenoiseSystem(noise_ratio), c).t().to(torch::kFloat32) + mean);
    } catch (const std::exception& e) {
      return InternalError(std::string("identity flow failed: ") + e.what());
    }
  }
  const std::string& model_id() const override { return model_id_; }
  const std::string& model_sha256() const override { return sha_; }
  const std::map<std::string, std::string>& options() const override { return options_; }

 private:
  static Status CheckCodes(const std::vector<Descriptor>& codes) {
    for (const auto& c : codes)
      for (float v : c)
        if (!std::isfinite(v)) return InvalidArgumentError("identity flow: the identity code has a non-finite value");
    return Status::Ok();
  }
  static torch::Tensor ToTensor(const std::vector<Descriptor>& codes) {
    const int64_t n = static_cast<int64_t>(codes.size());
    torch::Tensor x = torch::empty({n, 128}, torch::kFloat32);
    for (int64_t i = 0; i < n; ++i) std::memcpy(x[i].data_ptr<float>(), codes[i].data(), sizeof(float) * 128);
    return x;
  }
  static std::vector<Descriptor> FromTensor(const torch::Tensor& t) {
    const torch::Tensor y = t.contiguous();
    std::vector<Descriptor> out(static_cast<size_t>(y.size(0)));
    for (int64_t i = 0; i < y.size(0); ++i) std::memcpy(out[i].data(), y[i].data_ptr<float>(), sizeof(float) * 128);
    return out;
  }

  StatusOr<std::vector<Descriptor>> Run(const std::vector<Descriptor>& codes, const keys::SecretBytes& key,
                                        bool inverse) {
    if (key.size() != kFlowSubkeyBytes) return InvalidArgumentError("identity flow: the subkey must have 32 bytes");
    VEIL_RETURN_IF_ERROR(CheckCodes(codes));
    if (codes.empty()) return std::vector<Descriptor>{};
    try {
      c10::InferenceMode guard;
      VEIL_ASSIGN_OR_RETURN(identity::FlowKeys keys, identity::MakeFlowKeys(flow_->options(), {&key}));
      identity::WipeOnExit wipe(keys);  // also when the flow throws
      const torch::Tensor x = ToTensor(codes);
      torch::Tensor y = inverse ? flow_->inverse(x, keys) : flow_->forward(x, keys);
      return FromTensor(y);
    } catch (const std::exception& e) {
      return InternalError(std::string("identity flow failed: ") + e.what());
    }
  }

  identity::Flow flow_;
  std::string model_id_, sha_;
  std::map<std::string, std::string> options_;
};

}  // namespace

StatusOr<keys::SecretBytes> IdentityFlow::ConditioningFrom(const keys::SecretBytes& flow_subkey, size_t bytes) {
  if (flow_subkey.size() != kFlowSubkeyBytes) return InvalidArgumentError("identity flow: the subkey must have 32 bytes");
  if (bytes == 0 || bytes > (1u << 24)) return InvalidArgumentError("identity flow: bad conditioning size");
  return keys::ExpandSecret(flow_subkey, kFlowConditioningContext, bytes);
}

StatusOr<std::unique_ptr<IdentityFlow>> IdentityFlow::FromContents(const ModelFileContents& model) {
  if (model.kind != kIdentityFlowKind)
    return InvalidArgumentError("model is a '" + model.kind + "', expected a '" + kIdentityFlowKind + "'");
  VEIL_ASSIGN_OR_RETURN(identity::FlowOptions options, identity::FlowOptions::FromMap(model.options));
  if (options.dim() != 128) return InvalidArgumentError("identity flow: dim must be 128 (the identity code)");
  InitRuntimeOnce();
  try {
    auto flow = std::make_unique<IdentityFlowImpl>(options, model);
    VEIL_RETURN_IF_ERROR(flow->Init(model));
    return std::unique_ptr<IdentityFlow>(std::move(flow));
  } catch (const std::exception& e) {
    return InternalError(std::string("identity flow: cannot build the model: ") + e.what());
  }
}

StatusOr<std::unique_ptr<IdentityFlow>> IdentityFlow::Load(const std::string& path) {
  VEIL_ASSIGN_OR_RETURN(ModelFileContents model, LoadModelFile(path));
  return FromContents(model);
}

std::string DefaultIdentityFlowPath(const std::string& encoder_path) {
  const std::string enc = encoder_path.empty() ? DefaultEncoderModelPath() : encoder_path;
  return (std::filesystem::path(enc).parent_path() / kIdentityFlowFile).string();
}

}  // namespace veil::engine
