// The keyed identity flow as a LibTorch module (inference: identity_flow.h; training:
// engine/train/flow/). Layout, with x a batch of 128-D codes and one key per row:
//
//   u = W (x - mean)                       fixed partial whitening (ZCA, exponent `whiten`), buffers
//                                          (signal_dims < dim: the top signal_dims principal
//                                          coordinates of x - mean, scaled; the rest of x - mean
//                                          passes through unchanged and every step below works on
//                                          signal_dims values)
//   u = Q_k u                              keyed orthogonal mixing: `reflections` Householder
//                                          reflections whose vectors come from the key's keystream
//   e = embed(c_k)                         learned linear key embedding of `cond_dim` keystream values
//   for i in couplings:                    affine couplings on alternating halves, each preceded by
//     u = P_i u                            a fixed orthogonal mixing P_i (buffer; P_0 = I)
//     u_b = u_b * exp(s) + t,  (s, t) = net_i([u_a, e]),  s = m * tanh(raw / m)
//   y = W^-1 u + mean
//
// Every step is exactly invertible; inverse() runs them backwards. Q_k is built in float64 and
// rounded once, so Q_k^T inverts it to float precision. The last layer of each coupling net starts at
// zero: an untrained flow is the keyed rotation alone.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "veil/keys/secret.h"
#include "veil/status.h"

namespace veil::engine::identity {

struct FlowOptions {
  // Bytes of keystream a key is expanded into: cond_dim + reflections * work_dim().
  size_t conditioning_bytes() const;
  // The options as the model file's key=value map (includes the conditioning context).
  std::map<std::string, std::string> ToMap() const;
  // InvalidArgument when an option is missing, malformed, out of range or unknown.
  static StatusOr<FlowOptions> FromMap(const std::map<std::string, std::string>& m);

  TORCH_ARG(int64_t, dim) = 128;
  TORCH_ARG(int64_t, cond_dim) = 64;      // keystream values feeding the key embedding
  TORCH_ARG(int64_t, embed_dim) = 64;
  TORCH_ARG(int64_t, hidden) = 256;
  TORCH_ARG(int64_t, couplings) = 8;
  TORCH_ARG(int64_t, reflections) = 128;  // Householder reflections of the keyed mixing
  TORCH_ARG(double, max_log_scale) = 1.0;
  TORCH_ARG(double, whiten) = 1.0;        // 0: none, 1: full ZCA whitening (set by the trainer)
  // The principal directions of the codes the flow moves (even, at most dim). The recognizer's codes
  // fill only 77 of their 128 dimensions (eigenvalues of the train codes' covariance: the 77th
  // 2.0e-4, the 78th 5.8e-6, the rest ~1e-8); a flow that whitens all 128 puts 40 % of a pseudonym
  // into directions no rendered face carries, which keyed restore can never read back.
  // 0: all (dim). With K = 76 the 77th direction (eigenvalue 2.0e-4) passes through unchanged too.
  TORCH_ARG(int64_t, signal_dims) = 0;

 public:
  // The width the keyed steps work on: signal_dims, or dim when it is 0.
  int64_t work_dim() const { return signal_dims() > 0 ? signal_dims() : dim(); }

};

// Key-derived inputs of the flow for a batch: one row per code.
struct FlowKeys {
  torch::Tensor cond;  // [B, cond_dim] float32 in [-1, 1]
  torch::Tensor q;     // [B, work_dim, work_dim] float32, orthogonal
  void Wipe();         // zeroes both
};

// Zeroes key material when it goes out of scope, on every path out (a throw included).
struct WipeOnExit {
  explicit WipeOnExit(FlowKeys& k) : keys(k) {}
  ~WipeOnExit() { keys.Wipe(); }
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;
  FlowKeys& keys;
};

// Expands each 32-byte subkey (ExpandSecret, kFlowConditioningContext) into its conditioning.
// `rows[i]` selects the key of batch row i (empty: one key per row, in order).
StatusOr<FlowKeys> MakeFlowKeys(const FlowOptions& options, const std::vector<const keys::SecretBytes*>& subkeys,
                                const std::vector<int64_t>& rows = {});

class CouplingImpl : public torch::nn::Module {
 public:
  CouplingImpl(const FlowOptions& options, bool transform_first_half);
  // Returns (s, t) for the conditioning half `a`.
  std::pair<torch::Tensor, torch::Tensor> ScaleShift(const torch::Tensor& a, const torch::Tensor& e);
  torch::Tensor forward(const torch::Tensor& u, const torch::Tensor& e);
  torch::Tensor inverse(const torch::Tensor& u, const torch::Tensor& e);

 private:
  FlowOptions options_;
  bool first_;
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr}, fc3_{nullptr};
};
TORCH_MODULE(Coupling);

class FlowImpl : public torch::nn::Module {
 public:
  explicit FlowImpl(FlowOptions options = {});
  const FlowOptions& options() const { return options_; }

  torch::Tensor forward(const torch::Tensor& x, const FlowKeys& keys);
  torch::Tensor inverse(const torch::Tensor& y, const FlowKeys& keys);

  // Sets the whitening buffers from the training codes' mean [dim] and covariance [dim, dim].
  void SetStatistics(const torch::Tensor& mean, const torch::Tensor& cov);
  // The whitening buffers: mean [dim] and W [dim, dim] (symmetric ZCA of all dims, also when
  // signal_dims < dim: IdentityFlow::Denoise uses it).
  std::pair<torch::Tensor, torch::Tensor> Whitening() const { return {mean_, whiten_}; }
  // Denoise's system matrix, float64 [dim, dim]: I + ratio W^2. A read code r denoises to
  // mean + A^-1 (r - mean): directions with little spread among real codes move to the mean.
  torch::Tensor DenoiseSystem(double ratio) const;

 private:
  torch::Tensor Embed(const FlowKeys& keys);
  // x - mean -> (the working coordinates u [B, work_dim], the untouched rest [B, dim] or undefined).
  std::pair<torch::Tensor, torch::Tensor> ToWork(const torch::Tensor& x) const;
  torch::Tensor FromWork(const torch::Tensor& u, const torch::Tensor& rest) const;

  FlowOptions options_;
  torch::nn::Linear embed_{nullptr};
  std::vector<Coupling> couplings_;
  torch::Tensor mean_, whiten_, unwhiten_, mix_;  // mix_: [couplings, work_dim, work_dim]
  torch::Tensor basis_, scale_;  // signal_dims < dim only: [dim, signal_dims] orthonormal, [signal_dims]
};
TORCH_MODULE(Flow);

}  // namespace veil::engine::identity
