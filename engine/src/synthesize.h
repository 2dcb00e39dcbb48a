// Keyed pseudonym faces (internal to the pipeline): align -> identity code -> keyed flow ->
// render G(E(crop), flow(code)) -> colour-match -> blend back through the soft mask. The inverse
// (approximate restore without a payload) reads the pseudonym's code back and runs the flow
// backwards.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "veil/engine/aligner.h"
#include "veil/engine/face.h"
#include "veil/engine/face_renderer.h"
#include "veil/engine/identity_flow.h"
#include "veil/engine/manifest.h"
#include "veil/engine/recognizer.h"
#include "veil/keys/key_store.h"

namespace veil::engine::internal {

struct SynthesizerPaths {
  std::string models_dir;      // face-api (recognizer)
  std::string flow_path;       // empty: <Veil models>/veil-flow-v1.veilmodel
  std::string encoder_path;    // empty: DefaultEncoderModelPath()
  std::string generator_path;  // empty: DefaultGeneratorModelPath()
};

// The pseudonym scope id of face `index` for a scope kind (see PipelineParams::scope).
std::string FaceScopeId(keys::ScopeKind scope, const std::string& stream_id, const std::string& input_digest_hex,
                        uint32_t index);

class FaceSynthesizer {
 public:
  static StatusOr<std::unique_ptr<FaceSynthesizer>> Create(const SynthesizerPaths& paths);

  // Replaces `faces` (with landmarks) in `image` by pseudonyms under `key`; `scope_ids[i]` selects
  // the flow subkey of face i. Returns the pixel rectangle each face's blend touched.
  StatusOr<std::vector<cv::Rect>> Replace(cv::Mat& image, const std::vector<Face>& faces,
                                          const std::vector<std::string>& scope_ids, keys::ScopeKind scope,
                                          const keys::KeyHandle& key);

  // The approximate inverse: the pseudonyms' codes read back, the flow run backwards, the originals'
  // identities re-rendered into the same pose.
  Status Restore(cv::Mat& image, const std::vector<Face>& faces, const std::vector<std::string>& scope_ids,
                 keys::ScopeKind scope, const keys::KeyHandle& key);

  std::vector<ModelRef> models() const;

 private:
  FaceSynthesizer() = default;
  // The keyed flow (or its inverse) of each code under the subkey of its scope id.
  StatusOr<std::vector<Descriptor>> Flow(const std::vector<Descriptor>& codes, const std::vector<std::string>& scope_ids,
                                         keys::ScopeKind scope, const keys::KeyHandle& key, bool inverse);
  Status Render(cv::Mat& image, const std::vector<Face>& faces, const std::vector<Descriptor>& identities,
                std::vector<cv::Rect>* regions);

  Aligner aligner_{AlignerParams{FaceRenderer::kCropSize, 0.25f, 0.1f}};
  std::unique_ptr<Recognizer> recognizer_;
  std::unique_ptr<IdentityFlow> flow_;
  std::unique_ptr<FaceRenderer> renderer_;
  std::vector<ModelRef> models_;
};

}  // namespace veil::engine::internal
