// The keyed identity flow: an exactly invertible map of the 128-D identity code, keyed by the
// identity-flow subkey from keys/ (KeyHandle::DeriveSubkey(KeyPurpose::kIdentityFlow, ...)).
//
//   auto flow = veil::engine::IdentityFlow::Load("models/veil-flow-v1.veilmodel");
//   if (!flow.ok()) return Fail(flow.status());
//   auto pseudonym = (*flow)->Forward(code, subkey);          // a different, plausible identity
//   auto original  = (*flow)->Inverse(*pseudonym, subkey);    // the code back, to float precision
//
// Invariant: Inverse(Forward(z, k), k) == z up to float rounding (max abs error < 1e-4 on real
// descriptors), for every key. Forward and Inverse are deterministic: the same code, key and batch
// give bit-identical results on the same machine and build (a batch of a different size may differ
// in the last bits, because matrix products are blocked by size).
//
// The 32-byte subkey is expanded with keys::ExpandSecret under the context kFlowConditioningContext
// into the flow's conditioning: a keyed orthogonal mixing (128 Householder reflections) and the
// input of a learned key embedding that conditions every affine coupling layer. The mixing, the
// conditioning, the key embedding and the partial products of the mixing are zeroed after each call,
// on failure too; the short-lived temporaries inside LibTorch's operators are not.
// Not thread safe: one IdentityFlow per thread (loading is cheap: a few MB).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "veil/engine/model_file.h"
#include "veil/engine/recognizer.h"
#include "veil/keys/secret.h"
#include "veil/status.h"

namespace veil::engine {

inline constexpr const char* kIdentityFlowKind = "identity-flow";
inline constexpr const char* kFlowConditioningContext = "veil-flow-cond-v1";
inline constexpr size_t kFlowSubkeyBytes = 32;
inline constexpr const char* kIdentityFlowFile = "veil-flow-v1.veilmodel";

class IdentityFlow {
 public:
  // Reads, verifies (magic, version, SHA-256) and builds the flow. DataLoss for a corrupt file,
  // InvalidArgument for a model of another kind or with options or tensors this build does not
  // match, NotFound / IoError for the file.
  static StatusOr<std::unique_ptr<IdentityFlow>> Load(const std::string& path);
  static StatusOr<std::unique_ptr<IdentityFlow>> FromContents(const ModelFileContents& model);

  // The conditioning bytes of a flow subkey (ExpandSecret under kFlowConditioningContext), as many
  // as a flow with `reflections` reflections and `cond_dim` embedding inputs needs.
  // InvalidArgument unless the subkey has 32 bytes.
  static StatusOr<keys::SecretBytes> ConditioningFrom(const keys::SecretBytes& flow_subkey, size_t bytes);

  virtual ~IdentityFlow() = default;

  // InvalidArgument for a subkey that is not 32 bytes or a code with a non-finite value.
  virtual StatusOr<Descriptor> Forward(const Descriptor& code, const keys::SecretBytes& flow_subkey) = 0;
  virtual StatusOr<Descriptor> Inverse(const Descriptor& code, const keys::SecretBytes& flow_subkey) = 0;
  // Many codes under one key, as one batch.
  virtual StatusOr<std::vector<Descriptor>> ForwardBatch(const std::vector<Descriptor>& codes,
                                                         const keys::SecretBytes& flow_subkey) = 0;
  virtual StatusOr<std::vector<Descriptor>> InverseBatch(const std::vector<Descriptor>& codes,
                                                         const keys::SecretBytes& flow_subkey) = 0;

  // The likeliest pseudonym given codes read back with an error: a Wiener filter in the flow's
  // whitening basis, mean + (I + noise_ratio * W^2)^-1 (code - mean), where W is the whitening
  // (mean variance 1) and noise_ratio the read-back error's variance per dimension over the codes'
  // mean variance per dimension. The recognizer's codes fill a few directions strongly and the rest
  // weakly; an error in a weak direction means little in descriptor space but, whitened, would
  // dominate what Inverse returns. 0 returns the codes unchanged. InvalidArgument for a negative
  // ratio or a non-finite code.
  virtual StatusOr<std::vector<Descriptor>> Denoise(const std::vector<Descriptor>& codes, float noise_ratio) = 0;

  virtual const std::string& model_id() const = 0;
  // SHA-256 of the model file (hex), for manifests.
  virtual const std::string& model_sha256() const = 0;
  virtual const std::map<std::string, std::string>& options() const = 0;
};

// kIdentityFlowFile in the folder of `encoder_path` (empty: DefaultEncoderModelPath()): the flow
// the pipeline pairs with that encoder.
std::string DefaultIdentityFlowPath(const std::string& encoder_path);

}  // namespace veil::engine
