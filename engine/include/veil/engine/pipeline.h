// The anonymization pipeline: detect -> replace every face -> encode -> seal the originals ->
// manifest; and its inverse for authorized restores.
//
//   veil::PipelineParams params;                            // defaults documented below (also
//                                                           // veil::engine::PipelineParams)
//   params.method = veil::ReplaceMethod::kPixelate;
//   auto pipeline = veil::Pipeline::Create(params);
//   auto key = store->KeyForNewWork("default", "anonymize");  // keys::KeyHandle, logged
//   auto out = (*pipeline)->AnonymizeImage(bgr, *key, ".png");  // bytes with the manifest embedded
//
// Same input, key, parameters and models give the same output bytes (payload nonces are synthetic).
// Restore with the sealed payload gives back the original pixels exactly, for lossless formats.
// The library never prints; `progress` (if set) is called once per face. Not thread safe: one
// Pipeline per thread.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <iterator>
#include <memory>
#include <string>

#include <opencv2/core.hpp>

#include "veil/engine/face_detector.h"
#include "veil/engine/manifest.h"
#include "veil/keys/key_store.h"
#include "veil/status.h"

namespace veil::engine {

enum class ManifestPlacement { kEmbedded, kSidecar };

// The identity check's gains (PipelineParams::verify_distance), as multiples of the generator's own
// identity gain, tried in turn until a rendered face reads back beyond the verify distance.
inline constexpr float kIdentityCheckGainSteps[] = {1.0f, 1.5f, 2.5f};
static_assert(kIdentityCheckGainSteps[0] == 1.0f, "the check's first try is the generator's own gain");

// The gain of the check's step `step` for a generator gain `base`: base x kIdentityCheckGainSteps[step],
// at most 8 (the largest gain a generator file may carry).
inline float IdentityCheckGain(float base, size_t step) {
  return std::min(8.0f, base * kIdentityCheckGainSteps[step]);
}

// The check's step after `step` whose gain rises above that of `step` (the cap can flatten steps);
// std::size(kIdentityCheckGainSteps) when there is none: the face has had every push.
inline size_t NextIdentityCheckStep(float base, size_t step) {
  size_t next = step + 1;
  while (next < std::size(kIdentityCheckGainSteps) && IdentityCheckGain(base, next) <= IdentityCheckGain(base, step)) {
    ++next;
  }
  return next;
}

struct PipelineParams {
  std::string models_dir;                               // face-api models; empty: the default
  // Veil's identity models, for kSynthesized (empty: the defaults in <Veil models dir>, see
  // face_renderer.h): the keyed flow, the attribute encoder and the generator.
  std::string flow_model;
  std::string encoder_model;
  std::string generator_model;
  // The pseudonym reader for approximate restore (pseudonym_reader.h); empty: veil-reader-v1.veilmodel
  // next to the encoder, used when it exists and was trained for the generator. A reader named here
  // must exist and match the generator, else approximate restore fails (NotFound, InvalidArgument).
  std::string reader_model;
  DetectorKind detector = DetectorKind::kSsd;           // SSD for photos, tiny for the camera
  int tiny_input_size = 416;                            // tiny detector's input side (multiple of 32)
  float score_threshold = 0.5f;
  ReplaceMethod method = ReplaceMethod::kPixelate;      // kSynthesized needs the identity models
  // Faces whose box is smaller than this (pixels) on its shorter side get `small_face_method`
  // instead, and the manifest says so.
  int min_face_size = 24;
  ReplaceMethod small_face_method = ReplaceMethod::kPixelate;
  // Synthesized faces turned further from the camera than this get `small_face_method` instead
  // (pixelate when that is kSynthesized too), and the manifest says so: the generator draws faces
  // seen from the front, and a profile comes out with a second eye on the cheek. The turn is
  // FaceTurn (face.h: 0.5 frontal, about 0.1 or 0.9 in full profile); a face beyond 0.5 +/- max_turn
  // is too far turned (0.3: 0.5 % of the training faces are). Streams also leave such frames out of
  // a tracked face's identity code. 0.5 turns this off.
  float max_turn = 0.3f;
  float region_margin = 0.2f;                           // the replaced region: the box grown by this
  // Streams: a face found in one of the last `hold_frames` frames but missed by the detector now is
  // still replaced where it was last seen (a missed detection must not show a face for a frame).
  int hold_frames = 5;
  // Streams: the detector runs on every `detect_every`-th frame; in between each face is tracked by
  // re-running the 68-point net on the box its last landmarks predict. 1: detect on every frame.
  int detect_every = 1;
  // Photos (AnonymizeImage, RestoreApproximate): faces lying on their side or upside down are looked for
  // too, in the image turned by 90, 180 and 270 degrees (DetectAtQuarterTurns, face_detector.h):
  // a photo whose pixels lie sideways with no orientation tag otherwise loses most of its faces.
  // Four detector passes. Streams look at frames as they are.
  bool quarter_turns = true;
  // Synthesized faces are checked before they are released: the recognizer reads each rendered
  // face back where it was aligned, and one still within this distance of the original's code
  // (face-api descriptor distance; 0.6 = "same person", plus a margin for the few hundredths a
  // re-detection's landmarks move the reading) is rendered again with a stronger identity push
  // (kIdentityCheckGainSteps); one that stays within is pixelated, and the manifest says why.
  // Streams check a tracked face's pseudonym once each time it is drawn (its first detections, a
  // key change), not every frame. 0 turns the check off.
  float verify_distance = 0.65f;
  keys::ScopeKind scope = keys::ScopeKind::kImage;      // for pseudonyms (synthesized faces)
  std::string scope_id;                                 // stream id for kStream; unused otherwise
  // Where the sealed originals go: in the manifest (kInline), only to the key store's side
  // (kKeyStore: the output's manifest names them but does not hold them), or nowhere (kNone: no
  // exact restore possible).
  PayloadLocation payloads = PayloadLocation::kInline;
  ManifestPlacement placement = ManifestPlacement::kEmbedded;
  std::function<void(int face_index, int faces)> progress;
};

struct AnonymizeOutput {
  std::string image_bytes;    // the encoded output (manifest embedded when placement is kEmbedded)
  std::string manifest_bytes; // the serialized manifest (also what a sidecar holds)
  // With payloads kept by the key store: the manifest with the sealed payloads, for the store's side.
  std::string store_manifest_bytes;
  Manifest manifest;          // with the sealed payloads
};

// Wall-clock milliseconds per stage of one call (for HUDs and `veil bench`; never asserted).
struct StageTimes {
  double detect_ms = 0;     // detector + landmarks (detection frames)
  double track_ms = 0;      // landmarks on predicted boxes (tracking frames)
  double identity_ms = 0;   // recognizer + keyed flow
  double render_ms = 0;     // alignment + E + G (synthesized) or the plain replacement
  double blend_ms = 0;      // colour match + soft-mask paste back
  double total_ms = 0;
};

// One anonymized frame: the pixels and what was done to each face (no encoding, no payloads).
struct FrameOutput {
  cv::Mat image;
  std::vector<FaceRecord> faces;
  StageTimes times;
  std::string scope_id;  // the pseudonyms' scope id in this stream (see AnonymizeFrame)
};

struct RestoreOutput {
  cv::Mat image;
  int faces_restored = 0;
  int faces_without_payload = 0;
  // Models an approximate restore used beyond the manifest's: the pseudonym reader when one read
  // the pseudonyms back (role "reader").
  std::vector<ModelRef> models;
};

class Pipeline {
 public:
  static StatusOr<std::unique_ptr<Pipeline>> Create(const PipelineParams& params);
  virtual ~Pipeline() = default;

  // Anonymizes an 8-bit BGR image and encodes it for `extension` (".png", ".jpg", ".webp", ".bmp",
  // ".tif"). The output pixel hash in the manifest is of the decoded output, so it holds for lossy
  // formats too. Embedding needs PNG or JPEG (Unsupported otherwise: use a sidecar).
  virtual StatusOr<AnonymizeOutput> AnonymizeImage(const cv::Mat& bgr, const keys::KeyHandle& key,
                                                   const std::string& extension) = 0;

  // Anonymizes one frame of a stream (video, camera): detect (or track) and replace, nothing else.
  // Faces are replaced as in AnonymizeImage; pseudonyms use the stream scope when params().scope is
  // kStream. Consecutive calls form one stream (see hold_frames, detect_every); ResetStream() starts
  // a new one. Scopes in a stream: kStream and kDeployment as for images; kImage means the whole
  // stream (scope id: keyed from its first frame's pixels, as an image's is from its pixels: the
  // manifest names no digest of the input); kFace gives each tracked face its own. Each
  // tracked face keeps one pseudonym: its identity code is the mean of the recognizer's codes over
  // its first detections, so the pseudonym does not flicker with the recognizer's frame-to-frame
  // noise.
  virtual StatusOr<FrameOutput> AnonymizeFrame(const cv::Mat& bgr, const keys::KeyHandle& key) = 0;
  virtual void ResetStream() = 0;

  // Restore without payloads, for synthesized faces: each pseudonym's identity code is read back
  // (by the pseudonym reader trained for the generator, veil-reader-v1.veilmodel next to the
  // encoder, when there is one; else by the recognizer), the keyed flow runs backwards and the original identity is re-rendered into the same pose. The
  // result looks like the person but is NOT the original pixels (no evidence); the caller must say
  // so. Needs a pipeline created with kSynthesized. Faces replaced otherwise stay as they are.
  // FailedPrecondition when the manifest names other identity models (flow, encoder, generator,
  // recognizer) than this pipeline's: the inverse only undoes the models that drew the pseudonyms.
  virtual StatusOr<RestoreOutput> RestoreApproximate(const cv::Mat& decoded, const Manifest& manifest,
                                                     const keys::RestoreGrant& grant) = 0;

  virtual const PipelineParams& params() const = 0;
  virtual std::vector<ModelRef> models() const = 0;
};

// Puts the original pixels back from the sealed payloads: takes the key the manifest names from the
// grant (PermissionDenied for another keyring or an uncovered version), verifies the manifest seal
// (Unauthenticated "wrong key" when the manifest's key check names other key material, DataLoss when
// the manifest was altered), checks that `decoded` is exactly the output the manifest describes
// (Edited "edited after anonymization"), then opens each payload (DataLoss when one was altered).
// Manifests without a key check (before 2026-12-02) get Unauthenticated for wrong key and alteration.
// A manifest with no seal, no sealed original and no face proves nothing: DataLoss.
StatusOr<RestoreOutput> RestoreFromPayloads(const cv::Mat& decoded, const Manifest& manifest,
                                            const keys::RestoreGrant& grant);

// True when `manifest` is the one AnonymizeImage wrote for the decoded input `input_bgr` with `key`
// (its id names both and the output pixels it describes): how a resumed batch tells its own
// finished output from one made of an older version of the input, or with another key.
bool ImageManifestIsFor(const Manifest& manifest, const cv::Mat& input_bgr, const keys::KeyHandle& key);

// The associated data that binds a face's payload to its manifest and output.
std::string PayloadAssociatedData(const Manifest& manifest, uint32_t face_index);

}  // namespace veil::engine

// The pipeline's names at the top level, as applications spell them: veil::Pipeline.
namespace veil {
using engine::Pipeline;
using engine::PipelineParams;
using engine::ReplaceMethod;
}  // namespace veil
