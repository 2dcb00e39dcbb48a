// Renders a face with a given identity into an aligned crop: G(E(crop), identity).
//
//   auto r = veil::engine::FaceRenderer::Create({});           // models/veil-{encoder,generator}-v1
//   auto out = (*r)->Render(crops, identities);                  // 128x128 BGR in, 128x128 BGR out
//   aligner.PasteBack(out->at(0), aligned, image);               // blend into the photo
//
// Crops are 128x128 8-bit BGR, aligned with Aligner{.output_size = 128} (dlib template, padding
// 0.25); identities are 128-D codes in the recognizer's space (a descriptor, or the keyed flow's
// image of one). The attribute encoder E keeps pose, expression, lighting, skin tone, hair and
// background of the crop; the generator G draws the face of the given identity. No noise inputs:
// the same crop and identity give the same bits (for the same batch size and thread count).
// G runs one face at a time with its weights folded for that identity (style, demodulation),
// kept for the last few identities: a stream's pseudonym costs the fold once, not every frame.
// Render is not thread safe. The networks: engine/src/identity/; training: engine/train/gan/.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "veil/engine/manifest.h"  // ModelRef
#include "veil/engine/recognizer.h"
#include "veil/engine/renderer_calibration.h"  // CheckIdentityGain, CheckReadBackNoiseRatio
#include "veil/status.h"

namespace veil::engine {

struct FaceRendererParams {
  // Empty: $VEIL_MODELS_DIR/<file>, else <repo>/models/<file> (set at build time).
  std::string encoder_path;    // default file: veil-encoder-v1.veilmodel
  std::string generator_path;  // default file: veil-generator-v1.veilmodel
  int max_batch = 8;           // crops per forward pass of E
};

struct FaceRendererSaveInfo {
  std::string encoder_id = "veil-encoder-v1";
  std::string generator_id = "veil-generator-v1";
  std::map<std::string, std::string> info;  // provenance: data, steps, metrics (free text)
  bool fp16 = true;
  bool overwrite = false;
};

class FaceRenderer {
 public:
  static constexpr int kCropSize = 128;

  // Loads both model files (checked: magic, hash, kind, architecture options, tensor shapes).
  static StatusOr<std::unique_ptr<FaceRenderer>> Create(const FaceRendererParams& params);
  // Randomly initialized networks of the current architecture (seeded): for tests and tools.
  static StatusOr<std::unique_ptr<FaceRenderer>> CreateUntrained(uint64_t seed);

  virtual ~FaceRenderer() = default;

  // One output per input: crops[i] rendered with identities[i]. InvalidArgument when the counts
  // differ or a crop is not 128x128 8-bit BGR.
  virtual StatusOr<std::vector<cv::Mat>> Render(const std::vector<cv::Mat>& crops,
                                                const std::vector<Descriptor>& identities) = 0;

  // Writes E and G as Veil model files.
  virtual Status Save(const std::string& encoder_path, const std::string& generator_path,
                      const FaceRendererSaveInfo& save_info) const = 0;

  // Floating-point operations of E + G for one face (2 x multiply-accumulates, measured by running
  // the networks once at batch 1).
  virtual int64_t FlopsPerFace() const = 0;

  // The gain to steer identities with (SteerIdentity below): a property of the generator file
  // (option identity_gain, 1 when absent).
  virtual float IdentityGain() const = 0;
  // How noisily the rendered identity reads back (option readback_noise_ratio, 0 when absent): the
  // ratio keyed restore denoises the read-back pseudonym with (IdentityFlow::Denoise) before
  // running the flow backwards.
  virtual float ReadBackNoiseRatio() const = 0;
  // The two files as loaded, for manifests and reports: {model id, "encoder" | "generator", SHA-256
  // of the file}, from the very bytes that were verified and parsed (empty for CreateUntrained).
  virtual std::vector<ModelRef> models() const = 0;
};

// Identity steering. E's attribute map is not identity-free: the face read back from
// G(E(x), t) lands between the crop's own code `source` and t. Rendering
//   t = source + gain * (target - source)        (gain >= 1; the generator RMS-normalizes t)
// moves the read-back identity onto `target` where gain 1 leaves it part-way. The same rule serves
// anonymization (source: the original's code, target: its pseudonym) and keyed restore (source:
// the pseudonym read back, target: the flow's inverse of it).
Descriptor SteerIdentity(const Descriptor& source, const Descriptor& target, float gain);

// Default model paths (see FaceRendererParams).
std::string DefaultEncoderModelPath();
std::string DefaultGeneratorModelPath();

}  // namespace veil::engine
