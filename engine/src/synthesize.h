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
#include "veil/engine/pipeline.h"
#include "veil/engine/pseudonym_reader.h"
#include "veil/engine/recognizer.h"
#include "veil/keys/key_store.h"

namespace veil::engine::internal {

struct SynthesizerPaths {
  std::string models_dir;      // face-api (recognizer)
  std::string flow_path;       // empty: <Veil models>/veil-flow-v1.veilmodel
  std::string encoder_path;    // empty: DefaultEncoderModelPath()
  std::string generator_path;  // empty: DefaultGeneratorModelPath()
  // The pseudonym reader for keyed restore; empty: kPseudonymReaderFile next to the encoder, used
  // when present and trained for the generator (else the recognizer reads the pseudonym back). A
  // path given here must exist and match the generator.
  std::string reader_path;
};

// The pseudonym scope id of face `index` for a scope kind (see PipelineParams::scope).
std::string FaceScopeId(keys::ScopeKind scope, const std::string& stream_id, const std::string& input_digest_hex,
                        uint32_t index);

// A face's identity code and its pseudonym under the current key (streams keep one per track).
struct KnownIdentity {
  Descriptor code;
  Descriptor pseudonym;
  // Set by Replace once it has checked the rendered face: the steering gain that took it beyond the
  // verify distance (0: not checked yet), or `failed` when no gain did (Replace then reports the
  // face failed again without a check).
  float gain = 0;
  bool failed = false;
};

// What Replace did to one face.
struct ReplacedFace {
  cv::Rect region;      // the pixels the blend touched
  float gain = 0;       // the steering gain the face was rendered with
  float distance = -1;  // verified: the rendered face's code from the original's (-1: not measured)
  bool failed = false;  // still within the verify distance at the largest gain: replace it otherwise
};


class FaceSynthesizer {
 public:
  static StatusOr<std::unique_ptr<FaceSynthesizer>> Create(const SynthesizerPaths& paths);

  // Replaces `faces` (with landmarks) in `image` by pseudonyms under `key`; `scope_ids[i]` selects
  // the flow subkey of face i. Face i gets `known[i]` when given (streams keep one per tracked
  // face), else the recognizer's code read from `image` and its flow. Each face is rendered with
  // SteerIdentity(code, pseudonym, gain).
  // Verification (verify_distance > 0; libsodium's rule: check before releasing): the recognizer
  // reads every rendered face back from the result, and a face still within verify_distance of its
  // original code is rendered again at the next gain of kIdentityCheckGainSteps (pipeline.h); one that stays within is
  // reported failed (the caller replaces it otherwise). A known identity already verified (gain
  // set) is rendered at its gain without another check; one verified now gets its gain (or failed)
  // recorded. Adds the stages' wall time to `times` when given.
  StatusOr<std::vector<ReplacedFace>> Replace(cv::Mat& image, const std::vector<Face>& faces,
                                              const std::vector<std::string>& scope_ids, keys::ScopeKind scope,
                                              const keys::KeyHandle& key, float verify_distance,
                                              const std::vector<KnownIdentity*>* known = nullptr,
                                              StageTimes* times = nullptr);

  // The recognizer's identity codes of `faces` in `image`.
  StatusOr<std::vector<Descriptor>> Describe(const cv::Mat& image, const std::vector<Face>& faces);
  // The keyed flow of `code` under the subkey of `scope_id`: the pseudonym Replace would render.
  StatusOr<Descriptor> Pseudonym(const Descriptor& code, const std::string& scope_id, keys::ScopeKind scope,
                                 const keys::KeyHandle& key);

  // The approximate inverse: the pseudonyms' codes read back (by the pseudonym reader trained for
  // this generator when there is one, else by the recognizer), the flow run backwards, the
  // originals' identities re-rendered into the same pose (steered from the recognizer's codes).
  // Appends the reader's ModelRef to `used` when it read.
  Status Restore(cv::Mat& image, const std::vector<Face>& faces, const std::vector<std::string>& scope_ids,
                 keys::ScopeKind scope, const keys::KeyHandle& key, std::vector<ModelRef>* used = nullptr);

  std::vector<ModelRef> models() const;

 private:
  FaceSynthesizer() = default;
  // The keyed flow (or its inverse) of each code under the subkey of its scope id.
  StatusOr<std::vector<Descriptor>> Flow(const std::vector<Descriptor>& codes, const std::vector<std::string>& scope_ids,
                                         keys::ScopeKind scope, const keys::KeyHandle& key, bool inverse);
  // The reader for this generator, loaded on first use; nullptr when there is none. A reader file
  // that exists but does not load is an error; at the default path one trained for another
  // generator is not used, a reader named in SynthesizerPaths must exist and match (else an error).
  StatusOr<PseudonymReader*> Reader();
  Status Render(cv::Mat& image, const std::vector<Face>& faces, const std::vector<Descriptor>& identities,
                std::vector<cv::Rect>* regions, StageTimes* times = nullptr);

  Aligner aligner_{AlignerParams{FaceRenderer::kCropSize, 0.25f, 0.1f}};
  std::unique_ptr<Recognizer> recognizer_;
  std::unique_ptr<IdentityFlow> flow_;
  std::unique_ptr<FaceRenderer> renderer_;
  std::vector<ModelRef> models_;
  std::string reader_path_, generator_sha256_, face_api_dir_;
  bool reader_checked_ = false, reader_named_ = false;
  std::unique_ptr<PseudonymReader> reader_;
};

}  // namespace veil::engine::internal
