#include "veil/engine/pipeline.h"

#include <algorithm>
#include <cctype>

#include <opencv2/imgcodecs.hpp>

#include "face_replace.h"
#include "synthesize.h"
#include "veil/engine/tfjs_weights.h"
#include "veil/keys/aead.h"
#include "veil/keys/secret.h"

namespace veil::engine {
namespace {

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool SupportedExtension(const std::string& ext) {
  static const char* kExt[] = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"};
  return std::find_if(std::begin(kExt), std::end(kExt), [&](const char* e) { return ext == e; }) != std::end(kExt);
}

// Fixed encoder settings: the output bytes depend only on the pixels.
std::vector<int> EncodeParams(const std::string& ext) {
  if (ext == ".jpg" || ext == ".jpeg") return {cv::IMWRITE_JPEG_QUALITY, 95};
  if (ext == ".png") return {cv::IMWRITE_PNG_COMPRESSION, 6};
  if (ext == ".webp") return {cv::IMWRITE_WEBP_QUALITY, 101};  // lossless
  return {};
}

void PutU32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

class PipelineImpl final : public Pipeline {
 public:
  PipelineImpl(PipelineParams params, std::unique_ptr<FaceDetector> detector,
               std::unique_ptr<internal::FaceSynthesizer> synthesizer)
      : params_(std::move(params)), detector_(std::move(detector)), synth_(std::move(synthesizer)) {}

  const PipelineParams& params() const override { return params_; }

  std::vector<ModelRef> models() const override {
    const std::string net = params_.detector == DetectorKind::kSsd ? "ssd_mobilenetv1_model" : "tiny_face_detector_model";
    std::vector<ModelRef> refs = {
        {"face-api-1.7.15/" + net, "detector", PinnedSha256(net + ".bin")},
        {"face-api-1.7.15/face_landmark_68_model", "landmarks", PinnedSha256("face_landmark_68_model.bin")}};
    if (synth_) {
      for (const auto& r : synth_->models()) refs.push_back(r);
    }
    return refs;
  }

  StatusOr<AnonymizeOutput> AnonymizeImage(const cv::Mat& bgr, const keys::KeyHandle& key,
                                           const std::string& extension) override {
    if (bgr.empty() || bgr.type() != CV_8UC3) return InvalidArgumentError("the pipeline needs an 8-bit BGR image");
    const std::string ext = Lower(extension);
    if (!SupportedExtension(ext)) return UnsupportedError("cannot write '" + extension + "' images");
    if (params_.placement == ManifestPlacement::kEmbedded && ext != ".png" && ext != ".jpg" && ext != ".jpeg") {
      return UnsupportedError("manifests embed only in PNG and JPEG outputs; choose a sidecar manifest for " + ext);
    }
    VEIL_ASSIGN_OR_RETURN(std::vector<Face> faces, detector_->Detect(bgr));

    Manifest m;
    const std::string input_digest = PixelsSha256(bgr);
    keys::SecretBytes manifest_key = key.DeriveSubkey(keys::KeyPurpose::kManifest, keys::ScopeKind::kDeployment, "");
    m.manifest_id = std::string(
        keys::ExpandSecret(manifest_key, "veil-manifest-id-v1:" + keys::ToHex(input_digest), 16).view(keys::SecretAccess::Get()));
    m.models = models();
    m.keyring = key.keyring();
    m.key_version = key.version();
    m.scope = params_.scope;
    m.scope_id = params_.scope == keys::ScopeKind::kStream ? params_.scope_id
                 : params_.scope == keys::ScopeKind::kDeployment ? "" : keys::ToHex(input_digest);
    m.width = static_cast<uint32_t>(bgr.cols);
    m.height = static_cast<uint32_t>(bgr.rows);

    VEIL_ASSIGN_OR_RETURN(FrameOutput frame, Replace(bgr, faces, key, keys::ToHex(input_digest)));
    m.faces = std::move(frame.faces);
    const cv::Mat& out = frame.image;

    std::vector<uchar> buf;
    if (!cv::imencode(ext, out, buf, EncodeParams(ext))) return InternalError("encoding the output as " + ext + " failed");
    std::string encoded(buf.begin(), buf.end());
    cv::Mat decoded = cv::imdecode(buf, cv::IMREAD_COLOR);
    if (decoded.empty()) return InternalError("the encoded output does not decode");
    m.output_pixels_sha256 = PixelsSha256(decoded);

    if (params_.payloads != PayloadLocation::kNone) {
      for (size_t i = 0; i < m.faces.size(); ++i) {
        auto& rec = m.faces[i];
        if (rec.region.area() == 0) continue;
        std::vector<uchar> png;
        if (!cv::imencode(".png", bgr(rec.region), png)) return InternalError("encoding a face payload failed");
        VEIL_ASSIGN_OR_RETURN(rec.sealed_payload,
                              keys::SealPayload(key, keys::ScopeKind::kFace, keys::ToHex(m.manifest_id) + "#" + std::to_string(i),
                                                std::string(png.begin(), png.end()), PayloadAssociatedData(m, rec.index),
                                                /*synthetic_nonce=*/true));
        rec.payload_location = params_.payloads;
      }
    }
    AnonymizeOutput result;
    if (params_.payloads == PayloadLocation::kKeyStore) {
      result.store_manifest_bytes = SerializeManifest(m);
      Manifest shared = m;
      for (auto& f : shared.faces) f.sealed_payload.clear();
      result.manifest_bytes = SerializeManifest(shared);
    } else {
      result.manifest_bytes = SerializeManifest(m);
    }
    if (params_.placement == ManifestPlacement::kEmbedded) {
      VEIL_ASSIGN_OR_RETURN(result.image_bytes, EmbedManifest(encoded, result.manifest_bytes));
    } else {
      result.image_bytes = std::move(encoded);
    }
    result.manifest = std::move(m);
    return result;
  }

  StatusOr<FrameOutput> AnonymizeFrame(const cv::Mat& bgr, const keys::KeyHandle& key) override {
    if (bgr.empty() || bgr.type() != CV_8UC3) return InvalidArgumentError("the pipeline needs an 8-bit BGR image");
    VEIL_ASSIGN_OR_RETURN(std::vector<Face> faces, detector_->Detect(bgr));
    // Faces seen recently but missed now are held where they were last seen.
    std::vector<std::pair<Face, int>> next;
    for (const auto& f : faces) next.emplace_back(f, 0);
    std::vector<bool> held(faces.size(), false);
    for (const auto& [face, age] : recent_) {
      if (age >= params_.hold_frames || face.box.x >= bgr.cols || face.box.y >= bgr.rows) continue;
      bool matched = false;
      for (const auto& f : faces) matched |= BoxIou(f.box, face.box) > 0.3f;
      if (matched) continue;
      faces.push_back(face);
      held.push_back(true);
      next.emplace_back(face, age + 1);
    }
    recent_ = std::move(next);
    VEIL_ASSIGN_OR_RETURN(FrameOutput frame, Replace(bgr, faces, key, keys::ToHex(PixelsSha256(bgr))));
    for (size_t i = 0; i < frame.faces.size(); ++i) {
      if (held[i]) frame.faces[i].method_reason = "held from an earlier frame (missed by the detector here)";
    }
    return frame;
  }

  void ResetStream() override { recent_.clear(); }

 private:
  StatusOr<RestoreOutput> RestoreApproximate(const cv::Mat& decoded, const Manifest& manifest,
                                             const keys::RestoreGrant& grant) override {
    if (!synth_) return FailedPreconditionError("approximate restore needs a pipeline with the identity models");
    if (decoded.cols != static_cast<int>(manifest.width) || decoded.rows != static_cast<int>(manifest.height) ||
        PixelsSha256(decoded) != manifest.output_pixels_sha256) {
      return DataLossError("the image was edited after anonymization (its pixels do not match its manifest)");
    }
    VEIL_ASSIGN_OR_RETURN(keys::KeyHandle key, grant.Key(manifest.key_version));
    VEIL_ASSIGN_OR_RETURN(std::vector<Face> found, detector_->Detect(decoded));
    std::vector<Face> faces;
    std::vector<std::string> scope_ids;
    RestoreOutput out;
    out.image = decoded.clone();
    for (const auto& rec : manifest.faces) {
      if (rec.method != ReplaceMethod::kSynthesized) {
        ++out.faces_without_payload;
        continue;
      }
      const Face* best = nullptr;
      float best_iou = 0.3f;
      for (const auto& f : found) {
        float iou = BoxIou(f.box, rec.box);
        if (iou > best_iou && f.has_landmarks) best = &f, best_iou = iou;
      }
      if (!best) {
        ++out.faces_without_payload;
        continue;
      }
      faces.push_back(*best);
      scope_ids.push_back(internal::FaceScopeId(manifest.scope, manifest.scope_id, manifest.scope_id, rec.index));
    }
    VEIL_RETURN_IF_ERROR(synth_->Restore(out.image, faces, scope_ids, manifest.scope, key));
    out.faces_restored = static_cast<int>(faces.size());
    return out;
  }

 private:
  // Replaces every face; the records say how and where. Originals stay in `bgr`. Synthesized
  // pseudonyms are drawn first, on the untouched picture (their identity codes are read from it).
  StatusOr<FrameOutput> Replace(const cv::Mat& bgr, const std::vector<Face>& faces, const keys::KeyHandle& key,
                                const std::string& input_digest_hex) {
    FrameOutput frame;
    frame.image = bgr.clone();
    std::vector<Face> synth_faces;
    std::vector<std::string> synth_scopes;
    std::vector<size_t> synth_index;
    for (size_t i = 0; i < faces.size(); ++i) {
      const Face& face = faces[i];
      FaceRecord rec;
      rec.index = static_cast<uint32_t>(i);
      rec.box = face.box;
      if (face.has_landmarks) rec.landmarks.assign(face.landmarks5.begin(), face.landmarks5.end());
      rec.detector_score = face.score;
      rec.region = internal::ReplacementRegion(face.box, params_.region_margin, bgr.size());
      rec.method = params_.method;
      if (std::min(face.box.width, face.box.height) < static_cast<float>(params_.min_face_size)) {
        rec.method = params_.small_face_method;
        rec.method_reason = "face smaller than " + std::to_string(params_.min_face_size) + " px: " +
                            ReplaceMethodName(rec.method);
      }
      if (rec.method == ReplaceMethod::kSynthesized && !face.has_landmarks) {
        rec.method = ReplaceMethod::kPixelate;
        rec.method_reason = "no landmarks to align the face: pixelate";
      }
      if (rec.method == ReplaceMethod::kSynthesized) {
        synth_faces.push_back(face);
        synth_scopes.push_back(internal::FaceScopeId(params_.scope, params_.scope_id, input_digest_hex, rec.index));
        synth_index.push_back(i);
      }
      frame.faces.push_back(std::move(rec));
    }
    if (!synth_faces.empty()) {
      VEIL_ASSIGN_OR_RETURN(std::vector<cv::Rect> regions,
                            synth_->Replace(frame.image, synth_faces, synth_scopes, params_.scope, key));
      for (size_t j = 0; j < synth_index.size(); ++j) frame.faces[synth_index[j]].region = regions[j];
    }
    for (size_t i = 0; i < faces.size(); ++i) {
      const auto& rec = frame.faces[i];
      if (rec.method != ReplaceMethod::kSynthesized) internal::ReplacePlain(frame.image, rec.region, rec.method);
      if (params_.progress) params_.progress(static_cast<int>(i), static_cast<int>(faces.size()));
    }
    return frame;
  }

  PipelineParams params_;
  std::unique_ptr<FaceDetector> detector_;
  std::unique_ptr<internal::FaceSynthesizer> synth_;  // set when faces are synthesized
  std::vector<std::pair<Face, int>> recent_;  // the stream's faces and frames since last detected
};

}  // namespace

std::string PayloadAssociatedData(const Manifest& manifest, uint32_t face_index) {
  std::string ad = "veil-payload-v1";
  ad += manifest.manifest_id;
  PutU32(&ad, face_index);
  ad += manifest.output_pixels_sha256;
  for (const auto& f : manifest.faces) {
    if (f.index != face_index) continue;
    PutU32(&ad, static_cast<uint32_t>(f.region.x));
    PutU32(&ad, static_cast<uint32_t>(f.region.y));
    PutU32(&ad, static_cast<uint32_t>(f.region.width));
    PutU32(&ad, static_cast<uint32_t>(f.region.height));
  }
  return ad;
}

StatusOr<std::unique_ptr<Pipeline>> Pipeline::Create(const PipelineParams& params) {
  if (params.payloads == PayloadLocation::kSidecar) {
    return InvalidArgumentError("payloads go inline (in the manifest, embedded or sidecar), to the key store, or nowhere");
  }
  if (params.min_face_size < 0 || params.region_margin < 0 || params.region_margin > 2 || params.hold_frames < 0) {
    return InvalidArgumentError("min face size and hold frames must be >= 0, region margin from 0 to 2");
  }
  FaceDetectorParams dp;
  dp.models_dir = params.models_dir;
  dp.kind = params.detector;
  dp.score_threshold = params.score_threshold;
  VEIL_ASSIGN_OR_RETURN(std::unique_ptr<FaceDetector> detector, FaceDetector::Create(dp));
  std::unique_ptr<internal::FaceSynthesizer> synth;
  if (params.method == ReplaceMethod::kSynthesized || params.small_face_method == ReplaceMethod::kSynthesized) {
    auto s = internal::FaceSynthesizer::Create(
        {params.models_dir, params.flow_model, params.encoder_model, params.generator_model});
    if (!s.ok()) return s.status().WithContext("synthesized faces need Veil's identity models");
    synth = std::move(s.value());
  }
  return std::unique_ptr<Pipeline>(new PipelineImpl(params, std::move(detector), std::move(synth)));
}

StatusOr<RestoreOutput> RestoreFromPayloads(const cv::Mat& decoded, const Manifest& manifest,
                                            const keys::RestoreGrant& grant) {
  if (decoded.cols != static_cast<int>(manifest.width) || decoded.rows != static_cast<int>(manifest.height) ||
      decoded.type() != CV_8UC3 || PixelsSha256(decoded) != manifest.output_pixels_sha256) {
    return DataLossError("the image was edited after anonymization (its pixels do not match its manifest)");
  }
  RestoreOutput out;
  out.image = decoded.clone();
  bool any_payload = false;
  for (const auto& f : manifest.faces) any_payload |= !f.sealed_payload.empty();
  if (!any_payload) {
    out.faces_without_payload = static_cast<int>(manifest.faces.size());
    return out;
  }
  VEIL_ASSIGN_OR_RETURN(keys::KeyHandle key, grant.Key(manifest.key_version));
  for (const auto& f : manifest.faces) {
    if (f.sealed_payload.empty()) {
      ++out.faces_without_payload;
      continue;
    }
    auto plain = keys::OpenPayload(key, f.sealed_payload, PayloadAssociatedData(manifest, f.index));
    if (!plain.ok()) {
      return UnauthenticatedError("the payload of face " + std::to_string(f.index) +
                                  " does not open: wrong key, or the manifest or payload was altered");
    }
    std::vector<uchar> png(plain->begin(), plain->end());
    cv::Mat region = cv::imdecode(png, cv::IMREAD_COLOR);
    if (region.empty() || region.size() != f.region.size()) return DataLossError("a face payload holds a malformed region");
    region.copyTo(out.image(f.region));
    ++out.faces_restored;
  }
  return out;
}

}  // namespace veil::engine
