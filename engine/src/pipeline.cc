#include "veil/engine/pipeline.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>

#include <optional>

#include <opencv2/imgcodecs.hpp>

#include "face_replace.h"
#include "payloads.h"
#include "stopwatch.h"
#include "synthesize.h"
#include "veil/engine/image_io.h"
#include "veil/engine/tfjs_weights.h"
#include "veil/keys/aead.h"
#include "veil/keys/secret.h"

namespace veil::engine {
namespace {

using internal::Clock;
using internal::DeriveManifestId;
using internal::ManifestKey;
using internal::MsSince;

// libwebp's largest side (16383); ImageLimits lets 16384 in.
constexpr int kMaxWebpSide = 16383;

// The manifest's word for a synthesized face that the identity check sent to pixelation.
constexpr const char* kFailedCheckReason =
    "synthesized face still read back as the original at every identity gain: pixelate";

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

// The scope id of an image (or of a stream, from its first frame): keyed, because the manifest
// travels with the output and a plain digest of the input would let anyone who holds a candidate
// original confirm that it is the source.
// `manifest_key`: the key's manifest subkey (internal::ManifestKey).
std::string ImageScopeId(const keys::SecretBytes& manifest_key, const std::string& pixels_sha256) {
  return keys::ToHex(std::string(keys::ExpandSecret(manifest_key, "veil-image-scope-id-v1:" + keys::ToHex(pixels_sha256), 32)
                                     .view(keys::SecretAccess::Get())));
}

// An image manifest's id: from the input and the output pixels, keyed like the scope id above.
std::string ImageManifestId(const keys::SecretBytes& manifest_key, const std::string& input_digest,
                            const std::string& output_pixels_sha256) {
  return DeriveManifestId(manifest_key, "veil-manifest-id-v2", input_digest, output_pixels_sha256);
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
    if (ext == ".webp" && std::max(bgr.cols, bgr.rows) > kMaxWebpSide) {
      return UnsupportedError("WebP holds at most " + std::to_string(kMaxWebpSide) + " pixels a side, this image has " +
                              std::to_string(bgr.cols) + "x" + std::to_string(bgr.rows) + ": choose .png");
    }
    VEIL_ASSIGN_OR_RETURN(std::vector<Face> faces, PhotoFaces(bgr));

    Manifest m;
    const std::string input_digest = PixelsSha256(bgr);
    const keys::SecretBytes manifest_key = ManifestKey(key);
    const std::string image_scope = ImageScopeId(manifest_key, input_digest);
    m.models = models();
    m.keyring = key.keyring();
    m.key_version = key.version();
    m.scope = params_.scope;
    m.scope_id = params_.scope == keys::ScopeKind::kStream ? params_.scope_id
                 : params_.scope == keys::ScopeKind::kDeployment ? "" : image_scope;
    m.width = static_cast<uint32_t>(bgr.cols);
    m.height = static_cast<uint32_t>(bgr.rows);

    VEIL_ASSIGN_OR_RETURN(FrameOutput frame, Replace(bgr, faces, key, image_scope));
    m.faces = std::move(frame.faces);
    const cv::Mat& out = frame.image;

    std::vector<uchar> buf;
    cv::Mat decoded;
    try {  // OpenCV throws where an encoder refuses the image
      if (!cv::imencode(ext, out, buf, EncodeParams(ext))) return InternalError("encoding the output as " + ext + " failed");
      decoded = cv::imdecode(buf, cv::IMREAD_COLOR);
    } catch (const cv::Exception& e) {
      return InternalError("encoding the output as " + ext + " failed: " + e.err);
    }
    if (decoded.empty()) return InternalError("the encoded output does not decode");
    std::string encoded(buf.begin(), buf.end());
    m.output_pixels_sha256 = PixelsSha256(decoded);
    // From the input and the output: one photo anonymized twice with other options (format,
    // replacement) gets two ids, so neither run's payloads kept by the key store replace the other's.
    m.manifest_id = ImageManifestId(manifest_key, input_digest, m.output_pixels_sha256);

    std::vector<std::string> pngs(m.faces.size());
    if (params_.payloads != PayloadLocation::kNone) {
      for (size_t i = 0; i < m.faces.size(); ++i) {
        VEIL_ASSIGN_OR_RETURN(pngs[i], internal::RegionPng(bgr, m.faces[i].region));
      }
    }
    VEIL_RETURN_IF_ERROR(internal::SealImage(m, key, pngs, params_.payloads));
    AnonymizeOutput result;
    if (params_.payloads == PayloadLocation::kKeyStore) {
      result.store_manifest_bytes = SerializeManifest(m);
      Manifest shared = m;
      for (auto& f : shared.faces) f.sealed_payload.clear();
      result.manifest_bytes = SerializeManifest(shared);
    } else {
      result.manifest_bytes = SerializeManifest(m);
    }
    // Within what restore and resume read back (kMaxManifestBytes, the largest image file): sealed
    // originals of faces that fill most of a very large photo can exceed it, and Veil would then
    // have written an output it can never restore.
    const size_t manifest_size = std::max(result.manifest_bytes.size(), result.store_manifest_bytes.size());
    if (manifest_size > kMaxManifestBytes) {
      return ResourceExhaustedError("the manifest (" + std::to_string(manifest_size >> 20) +
                                    " MiB: the sealed originals of its faces) would exceed what restore reads (" +
                                    std::to_string(kMaxManifestBytes >> 20) + " MiB); scale the photo down, or keep no originals");
    }
    if (params_.placement == ManifestPlacement::kEmbedded) {
      VEIL_ASSIGN_OR_RETURN(result.image_bytes, EmbedManifest(encoded, result.manifest_bytes));
    } else {
      result.image_bytes = std::move(encoded);
    }
    if (result.image_bytes.size() > ImageLimits{}.max_file_bytes) {
      return ResourceExhaustedError("the output image (" + std::to_string(result.image_bytes.size() >> 20) +
                                    " MiB) would exceed what restore reads (" +
                                    std::to_string(ImageLimits{}.max_file_bytes >> 20) + " MiB)");
    }
    result.manifest = std::move(m);
    return result;
  }

  StatusOr<FrameOutput> AnonymizeFrame(const cv::Mat& bgr, const keys::KeyHandle& key) override {
    if (bgr.empty() || bgr.type() != CV_8UC3) return InvalidArgumentError("the pipeline needs an 8-bit BGR image");
    const auto t0 = Clock::now();
    StageTimes times;
    const bool detect = params_.detect_every <= 1 || frame_ % params_.detect_every == 0 || tracks_.empty();
    std::vector<std::string> reasons;
    if (detect) {
      VEIL_ASSIGN_OR_RETURN(std::vector<Face> found, detector_->Detect(bgr));
      MatchDetections(std::move(found), bgr.size());
      times.detect_ms = MsSince(t0);
    } else {
      VEIL_RETURN_IF_ERROR(TrackByLandmarks(bgr));
      times.track_ms = MsSince(t0);
    }
    // Scopes in a stream: kStream and kDeployment as for images; kImage means the whole stream (its
    // id: ImageScopeId of its first frame); kFace gives each tracked face its own pseudonym.
    if (stream_digest_.empty()) stream_digest_ = ImageScopeId(ManifestKey(key), PixelsSha256(bgr));
    // Pseudonyms drawn under another key are never reused: they are drawn again. (The key's
    // identity: its key check, as manifests carry; names and versions can repeat across stores.)
    const std::string key_id = key.KeyCheck("veil-stream-key-v1");
    if (key_id != stream_key_) {
      for (Track& t : tracks_) t.drawn = false;
      stream_key_ = key_id;
    }
    std::vector<Face> faces;
    std::vector<internal::KnownIdentity*> pseudonyms;
    std::vector<std::string> scope_ids;
    for (Track& t : tracks_) {
      faces.push_back(t.face);
      pseudonyms.push_back(t.codes > 0 && t.drawn ? &t.identity : nullptr);
      scope_ids.push_back(internal::FaceScopeId(params_.scope, params_.scope_id, stream_digest_, t.serial));
      reasons.push_back(t.last_detected == frame_ ? ""
                        : t.tracked             ? "tracked from an earlier detection (landmarks only)"
                                                : "held from an earlier frame (missed by the detector here)");
    }
    if (synth_) {
      // Each tracked face's identity code: the mean of its first kIdentityFrames detections; its
      // pseudonym is drawn again only when that mean (or the key) changes.
      const auto ti = Clock::now();
      if (detect) {
        std::vector<Face> fresh;
        std::vector<size_t> which;
        for (size_t i = 0; i < tracks_.size(); ++i) {
          const Track& t = tracks_[i];
          if (t.last_detected == frame_ && t.codes < kIdentityFrames && t.face.has_landmarks && !TurnedTooFar(t.face)) {
            fresh.push_back(t.face);
            which.push_back(i);
          }
        }
        VEIL_ASSIGN_OR_RETURN(std::vector<Descriptor> read, synth_->Describe(bgr, fresh));
        for (size_t j = 0; j < which.size(); ++j) {
          Track& t = tracks_[which[j]];
          if (t.sum.empty()) t.sum.assign(128, 0.0);
          for (int k = 0; k < 128; ++k) t.sum[k] += read[j][k];
          ++t.codes;
          t.drawn = false;
        }
      }
      for (size_t i = 0; i < tracks_.size(); ++i) {
        Track& t = tracks_[i];
        if (t.codes == 0 || t.drawn) continue;
        Descriptor code;
        for (int k = 0; k < 128; ++k) code[k] = static_cast<float>(t.sum[k] / t.codes);
        VEIL_ASSIGN_OR_RETURN(t.identity.pseudonym, synth_->Pseudonym(code, scope_ids[i], params_.scope, key));
        t.identity.code = code;
        t.identity.gain = 0;  // a new pseudonym is verified again
        t.identity.failed = false;
        t.drawn = true;
        pseudonyms[i] = &t.identity;
      }
      times.identity_ms += MsSince(ti);
    }
    VEIL_ASSIGN_OR_RETURN(FrameOutput frame, Replace(bgr, faces, key, stream_digest_, &pseudonyms, &times, &scope_ids));
    frame.scope_id = params_.scope == keys::ScopeKind::kStream       ? params_.scope_id
                     : params_.scope == keys::ScopeKind::kDeployment ? ""
                                                                     : stream_digest_;
    for (size_t i = 0; i < frame.faces.size(); ++i) {
      if (!reasons[i].empty() && frame.faces[i].method_reason.empty()) frame.faces[i].method_reason = reasons[i];
    }
    ++frame_;
    times.total_ms = MsSince(t0);
    frame.times = times;
    return frame;
  }

  void ResetStream() override {
    tracks_.clear();
    frame_ = 0;
    next_serial_ = 0;
    stream_digest_.clear();
    stream_key_.clear();
  }

 private:
  // A face followed through a stream.
  struct Track {
    Face face;                  // where it is now (box + landmarks)
    cv::Rect2f box_from_marks;  // the detector box relative to the landmarks' bounding rect
    int64_t last_detected = 0;  // frame of the last detection that matched it
    uint32_t serial = 0;        // order of appearance in the stream (the face scope's index)
    bool tracked = false;       // this frame's position comes from the landmark net alone
    int codes = 0;              // recognizer codes averaged (their sum in `sum`)
    std::vector<double> sum;
    internal::KnownIdentity identity{};  // the mean code and its keyed flow
    bool drawn = false;                  // `identity` is that of the current mean code and key
  };
  static constexpr int kIdentityFrames = 5;

  // The landmarks' bounding rect.
  static cv::Rect2f MarksRect(const Face& f) {
    float x0 = f.landmarks[0].x, y0 = f.landmarks[0].y, x1 = x0, y1 = y0;
    for (const auto& p : f.landmarks) {
      x0 = std::min(x0, p.x), y0 = std::min(y0, p.y), x1 = std::max(x1, p.x), y1 = std::max(y1, p.y);
    }
    return {x0, y0, std::max(1.0f, x1 - x0), std::max(1.0f, y1 - y0)};
  }

  // The detector box as offsets and scale of the landmarks' rect, to predict boxes from landmarks.
  static cv::Rect2f Relative(const cv::Rect2f& box, const cv::Rect2f& marks) {
    return {(box.x - marks.x) / marks.width, (box.y - marks.y) / marks.height, box.width / marks.width,
            box.height / marks.height};
  }
  static cv::Rect2f Absolute(const cv::Rect2f& rel, const cv::Rect2f& marks) {
    return {marks.x + rel.x * marks.width, marks.y + rel.y * marks.height, rel.width * marks.width,
            rel.height * marks.height};
  }

  // Detection frame: each detection continues the track it overlaps most (IoU > 0.3) or starts one;
  // tracks missed for more than hold_frames frames end, the others stay where they were last seen.
  void MatchDetections(std::vector<Face> found, const cv::Size& size) {
    std::vector<Track> next;
    std::vector<bool> used(tracks_.size(), false);
    for (Face& f : found) {
      int best = -1;
      float best_iou = 0.3f;
      for (size_t i = 0; i < tracks_.size(); ++i) {
        const float iou = BoxIou(f.box, tracks_[i].face.box);
        if (!used[i] && iou > best_iou) best = static_cast<int>(i), best_iou = iou;
      }
      Track t;
      if (best >= 0) {
        used[best] = true;
        t = std::move(tracks_[best]);
      } else {
        t.serial = next_serial_++;
      }
      t.face = std::move(f);
      t.last_detected = frame_;
      t.tracked = false;
      if (t.face.has_landmarks) t.box_from_marks = Relative(t.face.box, MarksRect(t.face));
      next.push_back(std::move(t));
    }
    for (size_t i = 0; i < tracks_.size(); ++i) {
      Track& t = tracks_[i];
      if (used[i] || frame_ - t.last_detected > params_.hold_frames) continue;
      if (t.face.box.x >= size.width || t.face.box.y >= size.height) continue;
      t.tracked = false;
      next.push_back(std::move(t));
    }
    tracks_ = std::move(next);
  }

  // Tracking frame: the 68-point net on the box each track's last landmarks predict. A result that
  // jumps (scale off by more than 35 %, or the centre by more than half the box) keeps the last
  // position instead: the region is still replaced there, and the next detection re-anchors it.
  Status TrackByLandmarks(const cv::Mat& bgr) {
    std::vector<cv::Rect> crops;
    std::vector<size_t> which;
    const cv::Rect frame(0, 0, bgr.cols, bgr.rows);
    for (size_t i = 0; i < tracks_.size(); ++i) {
      Track& t = tracks_[i];
      t.tracked = false;
      if (!t.face.has_landmarks) continue;
      const cv::Rect2f box = Absolute(t.box_from_marks, MarksRect(t.face));
      const cv::Rect crop = cv::Rect(cv::Point(static_cast<int>(std::floor(box.x)), static_cast<int>(std::floor(box.y))),
                                     cv::Size(static_cast<int>(std::round(box.width)), static_cast<int>(std::round(box.height)))) &
                            frame;
      if (crop.width < 8 || crop.height < 8) continue;
      crops.push_back(crop);
      which.push_back(i);
    }
    if (crops.empty()) return Status::Ok();
    VEIL_ASSIGN_OR_RETURN(auto marks, detector_->LandmarksForCrops(bgr, crops));
    for (size_t j = 0; j < which.size(); ++j) {
      Track& t = tracks_[which[j]];
      Face moved = t.face;
      moved.landmarks = marks[j];
      moved.landmarks5 = FivePointsFrom68(moved.landmarks);
      const cv::Rect2f before = MarksRect(t.face), after = MarksRect(moved);
      const float scale = std::sqrt(after.area() / before.area());
      const cv::Point2f shift = (after.tl() + after.br()) * 0.5f - (before.tl() + before.br()) * 0.5f;
      if (scale < 0.65f || scale > 1.35f || std::hypot(shift.x, shift.y) > 0.5f * std::max(before.width, before.height)) {
        continue;
      }
      moved.box = Absolute(t.box_from_marks, after);
      t.face = std::move(moved);
      t.tracked = true;
    }
    return Status::Ok();
  }

  StatusOr<RestoreOutput> RestoreApproximate(const cv::Mat& decoded, const Manifest& manifest,
                                             const keys::RestoreGrant& grant) override {
    if (!synth_) return FailedPreconditionError("approximate restore needs a pipeline with the identity models");
    VEIL_ASSIGN_OR_RETURN(keys::KeyHandle key, internal::KeyForManifest(manifest, grant));
    // The scope, its id and the face records steer the keyed inverse: the manifest is checked whole
    // first (a sidecar or an embedded manifest alike), before anything it says is relied on. Every
    // manifest of a synthesized face is sealed, so one without a seal had it taken away.
    VEIL_RETURN_IF_ERROR(internal::VerifyManifestSeal(manifest, key));
    // A face whose sealed original the manifest lost is refused, as the exact restore refuses it:
    // never a silent step down from the original pixels to a re-rendering.
    VEIL_RETURN_IF_ERROR(internal::RequireKeptPayloads(manifest));
    if (!PixelsMatchManifest(decoded, manifest)) {
      return EditedError("the image was edited after anonymization (its pixels do not match its manifest)");
    }
    // The inverse is only the inverse of the models that drew the pseudonyms.
    for (const ModelRef& have : synth_->models()) {
      for (const ModelRef& used : manifest.models) {
        if (used.role == have.role && used.sha256_hex != have.sha256_hex) {
          return FailedPreconditionError("the image was anonymized with another " + used.role + " model (" + used.id +
                                         ", SHA-256 " + used.sha256_hex.substr(0, 16) + "...); approximate restore " +
                                         "needs the models that drew its pseudonyms");
        }
      }
    }
    VEIL_ASSIGN_OR_RETURN(std::vector<Face> found, PhotoFaces(decoded));
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
    VEIL_RETURN_IF_ERROR(synth_->Restore(out.image, faces, scope_ids, manifest.scope, key, &out.models));
    out.faces_restored = static_cast<int>(faces.size());
    return out;
  }

 private:
  // Replaces every face; the records say how and where. Originals stay in `bgr`. Synthesized
  // pseudonyms are drawn first, on the untouched picture (their identity codes are read from it).
  StatusOr<FrameOutput> Replace(const cv::Mat& bgr, const std::vector<Face>& faces, const keys::KeyHandle& key,
                                const std::string& input_digest_hex,
                                const std::vector<internal::KnownIdentity*>* codes = nullptr,
                                StageTimes* times = nullptr,
                                const std::vector<std::string>* scope_ids = nullptr) {
    FrameOutput frame;
    std::vector<internal::KnownIdentity*> synth_codes;
    frame.image = bgr.clone();
    std::vector<Face> synth_faces;
    std::vector<std::string> synth_scopes;
    std::vector<size_t> synth_index;
    for (size_t i = 0; i < faces.size(); ++i) {
      const Face& face = faces[i];
      FaceRecord rec;
      rec.index = static_cast<uint32_t>(i);
      rec.box = face.box;  // no landmarks or detector score: the original face's geometry is not shared
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
      if (rec.method == ReplaceMethod::kSynthesized && TurnedTooFar(face)) {
        rec.method = PlainFallback();
        char turn[96];
        std::snprintf(turn, sizeof(turn), "face turned too far for the generator (turn %.2f, beyond 0.5 +/- %.2f): ",
                      FaceTurn(face), params_.max_turn);
        rec.method_reason = std::string(turn) + ReplaceMethodName(rec.method);
      }
      if (rec.method == ReplaceMethod::kSynthesized && codes && (*codes)[i] != nullptr && (*codes)[i]->failed) {
        rec.method = ReplaceMethod::kPixelate;
        rec.method_reason = kFailedCheckReason;
      }
      // A stream's face takes its identity code from detections that face the camera; one turned too
      // far in every detection so far has none, and a single tracked frame must not draw one.
      if (rec.method == ReplaceMethod::kSynthesized && codes && (*codes)[i] == nullptr) {
        rec.method = PlainFallback();
        rec.method_reason = std::string("no identity code yet (turned too far in every detection so far): ") +
                            ReplaceMethodName(rec.method);
      }
      if (rec.method == ReplaceMethod::kSynthesized) {
        synth_faces.push_back(face);
        synth_scopes.push_back(scope_ids ? (*scope_ids)[i]
                                         : internal::FaceScopeId(params_.scope, params_.scope_id, input_digest_hex, rec.index));
        synth_index.push_back(i);
        synth_codes.push_back(codes ? (*codes)[i] : nullptr);
      }
      frame.faces.push_back(std::move(rec));
    }
    if (!synth_faces.empty()) {
      VEIL_ASSIGN_OR_RETURN(std::vector<internal::ReplacedFace> replaced,
                            synth_->Replace(frame.image, synth_faces, synth_scopes, params_.scope, key,
                                            params_.verify_distance, codes ? &synth_codes : nullptr, times));
      for (size_t j = 0; j < synth_index.size(); ++j) {
        FaceRecord& rec = frame.faces[synth_index[j]];
        rec.region = replaced[j].region;  // every pixel the blend touched: what a payload restores
        if (replaced[j].failed) {
          rec.method = ReplaceMethod::kPixelate;
          rec.method_reason = kFailedCheckReason;
        }
      }
    }
    const auto t0 = Clock::now();
    for (size_t i = 0; i < faces.size(); ++i) {
      const auto& rec = frame.faces[i];
      if (rec.method != ReplaceMethod::kSynthesized) internal::ReplacePlain(frame.image, rec.region, rec.method);
      if (params_.progress) params_.progress(static_cast<int>(i), static_cast<int>(faces.size()));
    }
    if (times) times->render_ms += MsSince(t0);
    return frame;
  }

  // The faces of a photo: at every quarter turn unless the params say upright only.
  StatusOr<std::vector<Face>> PhotoFaces(const cv::Mat& bgr) {
    return params_.quarter_turns ? DetectAtQuarterTurns(*detector_, bgr) : detector_->Detect(bgr);
  }
  // A face the generator cannot draw (PipelineParams::max_turn): replaced plainly, and in streams
  // not read for its identity code.
  bool TurnedTooFar(const Face& face) const { return std::abs(FaceTurn(face) - 0.5f) > params_.max_turn; }
  // What a face the generator cannot draw gets: the small-face method, or pixelate when that is
  // synthesized too.
  ReplaceMethod PlainFallback() const {
    return params_.small_face_method == ReplaceMethod::kSynthesized ? ReplaceMethod::kPixelate : params_.small_face_method;
  }

  PipelineParams params_;
  std::unique_ptr<FaceDetector> detector_;
  std::unique_ptr<internal::FaceSynthesizer> synth_;  // set when faces are synthesized
  std::vector<Track> tracks_;  // the stream's faces
  int64_t frame_ = 0;          // frames since the stream started
  uint32_t next_serial_ = 0;   // serial of the next new track
  std::string stream_digest_;  // ImageScopeId of the stream's first frame
  std::string stream_key_;     // KeyCheck of the key the pseudonyms were drawn under
};

}  // namespace

StatusOr<std::unique_ptr<Pipeline>> Pipeline::Create(const PipelineParams& params) {
  if (params.payloads == PayloadLocation::kSidecar) {
    return InvalidArgumentError("payloads go inline (in the manifest, embedded or sidecar), to the key store, or nowhere");
  }
  if (params.min_face_size < 0 || params.region_margin < 0 || params.region_margin > 2 || params.hold_frames < 0 ||
      params.detect_every < 1 || params.detect_every > 30 || !(params.verify_distance >= 0 && params.verify_distance <= 2) ||
      !(params.max_turn >= 0 && params.max_turn <= 0.5f)) {
    return InvalidArgumentError(
        "min face size and hold frames must be >= 0, region margin from 0 to 2, detect_every from 1 to 30, "
        "verify distance from 0 to 2, max turn from 0 to 0.5");
  }
  FaceDetectorParams dp;
  dp.models_dir = params.models_dir;
  dp.kind = params.detector;
  dp.score_threshold = params.score_threshold;
  dp.tiny_input_size = params.tiny_input_size;
  VEIL_ASSIGN_OR_RETURN(std::unique_ptr<FaceDetector> detector, FaceDetector::Create(dp));
  std::unique_ptr<internal::FaceSynthesizer> synth;
  if (params.method == ReplaceMethod::kSynthesized || params.small_face_method == ReplaceMethod::kSynthesized) {
    auto s = internal::FaceSynthesizer::Create(
        {params.models_dir, params.flow_model, params.encoder_model, params.generator_model, params.reader_model});
    if (!s.ok()) return s.status().WithContext("synthesized faces need Veil's identity models");
    synth = std::move(s.value());
  }
  return std::unique_ptr<Pipeline>(new PipelineImpl(params, std::move(detector), std::move(synth)));
}

bool ImageManifestIsFor(const Manifest& manifest, const cv::Mat& input_bgr, const keys::KeyHandle& key) {
  if (manifest.frames != 0 || input_bgr.empty()) return false;
  return manifest.manifest_id ==
         ImageManifestId(ManifestKey(key), PixelsSha256(input_bgr), manifest.output_pixels_sha256);
}

StatusOr<RestoreOutput> RestoreFromPayloads(const cv::Mat& decoded, const Manifest& manifest,
                                            const keys::RestoreGrant& grant) {
  const bool sealed = !manifest.manifest_seal.empty();
  // Every image manifest with a key check (2026-12-02 on) was sealed (2026-12-01 on): one without
  // its seal had it taken away.
  if (!sealed && !manifest.key_check.empty()) {
    return DataLossError("the manifest has a key check but no seal: its seal was taken away");
  }
  bool any_payload = false;
  for (const auto& f : manifest.faces) any_payload |= !f.sealed_payload.empty();
  // A sealed manifest is checked whole first, before what it says of the pixels is relied on (an
  // edited manifest is reported as such, not as an edited image) and before any payload is opened:
  // a dropped or edited face record, or a payload removed from a face that had one, is refused.
  std::optional<keys::KeyHandle> key;
  if (sealed || any_payload) {
    VEIL_ASSIGN_OR_RETURN(keys::KeyHandle k, internal::KeyForManifest(manifest, grant));
    key.emplace(std::move(k));
  }
  if (sealed) {
    VEIL_RETURN_IF_ERROR(internal::VerifyManifestSeal(manifest, *key));
    VEIL_RETURN_IF_ERROR(internal::RequireKeptPayloads(manifest));
  } else if (!any_payload && manifest.faces.empty()) {
    // No seal and no face: nothing proves the manifest, and an "exact restore" by it would be the
    // anonymized image relabelled. (Veil has sealed every manifest since 2026-12-01; an older image
    // without faces is its own original and needs no restore.)
    return DataLossError("the manifest has no seal and lists no face: nothing in it can be checked (its seal "
                         "taken away, or an image from before 2026-12-01 without faces, which needs no restore)");
  }
  if (!PixelsMatchManifest(decoded, manifest)) {
    return EditedError("the image was edited after anonymization (its pixels do not match its manifest)");
  }
  RestoreOutput out;
  out.image = decoded.clone();
  if (!key) {  // an older manifest whose faces have no payloads: nothing to open (the caller refuses)
    out.faces_without_payload = static_cast<int>(manifest.faces.size());
    return out;
  }
  // The seal verified, or the key check matched: a payload that does not open was altered.
  const bool key_proven = sealed || internal::KeyConfirmed(manifest, *key);
  for (const auto& f : manifest.faces) {
    if (f.sealed_payload.empty()) {
      ++out.faces_without_payload;
      continue;
    }
    VEIL_ASSIGN_OR_RETURN(cv::Mat region, internal::OpenPayload(manifest, f, *key, key_proven));
    region.copyTo(out.image(f.region));
    ++out.faces_restored;
  }
  return out;
}

}  // namespace veil::engine
