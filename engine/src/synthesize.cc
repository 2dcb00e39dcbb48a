#include "synthesize.h"

#include <algorithm>
#include <iterator>

#include <opencv2/imgproc.hpp>

#include "veil/engine/tfjs_weights.h"
#include "veil/keys/fs.h"
#include "veil/keys/secret.h"
#include "stopwatch.h"

namespace veil::engine::internal {
namespace {

// Per-channel mean and deviation of `src` moved to those of `ref`, inside the mask: the rendered
// face takes the photo's lighting and white balance, so the blend shows no seam.
cv::Mat MatchColours(const cv::Mat& src, const cv::Mat& ref, const cv::Mat& mask) {
  cv::Mat m8;
  mask.convertTo(m8, CV_8U, 255.0);
  cv::threshold(m8, m8, 128, 255, cv::THRESH_BINARY);
  cv::Scalar ms, ss, mr, sr;
  cv::meanStdDev(src, ms, ss, m8);
  cv::meanStdDev(ref, mr, sr, m8);
  cv::Mat f;
  src.convertTo(f, CV_32F);
  std::vector<cv::Mat> ch;
  cv::split(f, ch);
  for (int c = 0; c < static_cast<int>(ch.size()); ++c) {
    double gain = ss[c] > 1e-3 ? sr[c] / ss[c] : 1.0;
    gain = std::clamp(gain, 0.5, 2.0);
    ch[c] = (ch[c] - ms[c]) * gain + mr[c];
  }
  cv::merge(ch, f);
  cv::Mat out;
  f.convertTo(out, CV_8U);
  return out;
}

cv::Rect Footprint(const AlignedFace& a, int size, const cv::Size& image) {
  std::vector<cv::Point2f> corners;
  const float s = static_cast<float>(size);
  for (const cv::Point2f c : {cv::Point2f(0, 0), cv::Point2f(s, 0), cv::Point2f(0, s), cv::Point2f(s, s)}) {
    const auto& m = a.image_from_crop;
    corners.emplace_back(static_cast<float>(m(0, 0) * c.x + m(0, 1) * c.y + m(0, 2)),
                         static_cast<float>(m(1, 0) * c.x + m(1, 1) * c.y + m(1, 2)));
  }
  return cv::boundingRect(corners) & cv::Rect(0, 0, image.width, image.height);
}

}  // namespace

std::string FaceScopeId(keys::ScopeKind scope, const std::string& stream_id, const std::string& input_digest_hex,
                        uint32_t index) {
  switch (scope) {
    case keys::ScopeKind::kDeployment: return "";
    case keys::ScopeKind::kStream: return stream_id;
    case keys::ScopeKind::kImage: return input_digest_hex;
    case keys::ScopeKind::kFace: return input_digest_hex + "#" + std::to_string(index);
  }
  return input_digest_hex;
}

StatusOr<std::unique_ptr<FaceSynthesizer>> FaceSynthesizer::Create(const SynthesizerPaths& paths) {
  std::unique_ptr<FaceSynthesizer> s(new FaceSynthesizer());
  RecognizerParams rp;
  rp.models_dir = paths.models_dir;
  VEIL_ASSIGN_OR_RETURN(s->recognizer_, Recognizer::Create(rp));
  const std::string enc = paths.encoder_path.empty() ? DefaultEncoderModelPath() : paths.encoder_path;
  const std::string gen = paths.generator_path.empty() ? DefaultGeneratorModelPath() : paths.generator_path;
  const std::string flow = paths.flow_path.empty() ? DefaultIdentityFlowPath(enc) : paths.flow_path;
  VEIL_ASSIGN_OR_RETURN(s->flow_, IdentityFlow::Load(flow));
  FaceRendererParams fp;
  fp.encoder_path = enc;
  fp.generator_path = gen;
  VEIL_ASSIGN_OR_RETURN(s->renderer_, FaceRenderer::Create(fp));
  s->models_.push_back({s->flow_->model_id(), "flow", s->flow_->model_sha256()});
  for (const ModelRef& m : s->renderer_->models()) {
    s->models_.push_back(m);
    if (m.role == "generator") s->generator_sha256_ = m.sha256_hex;
  }
  s->face_api_dir_ = paths.models_dir;
  s->reader_path_ = paths.reader_path.empty() ? DefaultPseudonymReaderPath(enc) : paths.reader_path;
  s->reader_named_ = !paths.reader_path.empty();
  s->models_.push_back({"face-api-1.7.15/face_recognition_model", "recognizer", PinnedSha256("face_recognition_model.bin")});
  return s;
}

std::vector<ModelRef> FaceSynthesizer::models() const { return models_; }

StatusOr<std::vector<Descriptor>> FaceSynthesizer::Flow(const std::vector<Descriptor>& codes,
                                                        const std::vector<std::string>& scope_ids,
                                                        keys::ScopeKind scope, const keys::KeyHandle& key, bool inverse) {
  std::vector<Descriptor> out;
  for (size_t i = 0; i < codes.size(); ++i) {
    keys::SecretBytes subkey = key.DeriveSubkey(keys::KeyPurpose::kIdentityFlow, scope, scope_ids[i]);
    VEIL_ASSIGN_OR_RETURN(Descriptor z, inverse ? flow_->Inverse(codes[i], subkey) : flow_->Forward(codes[i], subkey));
    out.push_back(z);
  }
  return out;
}

Status FaceSynthesizer::Render(cv::Mat& image, const std::vector<Face>& faces, const std::vector<Descriptor>& identities,
                               std::vector<cv::Rect>* regions, StageTimes* times) {
  auto t0 = Clock::now();
  std::vector<AlignedFace> aligned;
  std::vector<cv::Mat> crops;
  for (const auto& f : faces) {
    VEIL_ASSIGN_OR_RETURN(AlignedFace a, aligner_.Align(image, f));
    crops.push_back(a.image);
    aligned.push_back(std::move(a));
  }
  VEIL_ASSIGN_OR_RETURN(std::vector<cv::Mat> rendered, renderer_->Render(crops, identities));
  if (times) times->render_ms += MsSince(t0);
  t0 = Clock::now();
  for (size_t i = 0; i < faces.size(); ++i) {
    cv::Mat matched = MatchColours(rendered[i], aligned[i].image, aligned[i].mask);
    VEIL_RETURN_IF_ERROR(aligner_.PasteBack(matched, aligned[i], image));
    if (regions) regions->push_back(Footprint(aligned[i], FaceRenderer::kCropSize, image.size()));
  }
  if (times) times->blend_ms += MsSince(t0);
  return Status::Ok();
}

StatusOr<std::vector<Descriptor>> FaceSynthesizer::Describe(const cv::Mat& image, const std::vector<Face>& faces) {
  if (faces.empty()) return std::vector<Descriptor>();
  return recognizer_->DescribeFaces(image, faces);
}

StatusOr<std::vector<ReplacedFace>> FaceSynthesizer::Replace(cv::Mat& image, const std::vector<Face>& faces,
                                                             const std::vector<std::string>& scope_ids,
                                                             keys::ScopeKind scope, const keys::KeyHandle& key,
                                                             float verify_distance,
                                                             const std::vector<KnownIdentity*>* known,
                                                             StageTimes* times) {
  std::vector<ReplacedFace> out(faces.size());
  if (faces.empty()) return out;
  if (known && known->size() != faces.size()) return InternalError("one pseudonym (or none) per face expected");
  auto t0 = Clock::now();
  // Codes are read from the untouched picture: faces drawn first must not leak into later ones.
  std::vector<Face> unknown;
  std::vector<std::string> unknown_scopes;
  for (size_t i = 0; i < faces.size(); ++i) {
    if (!known || (*known)[i] == nullptr) {
      unknown.push_back(faces[i]);
      unknown_scopes.push_back(scope_ids[i]);
    }
  }
  VEIL_ASSIGN_OR_RETURN(std::vector<Descriptor> read, Describe(image, unknown));
  VEIL_ASSIGN_OR_RETURN(std::vector<Descriptor> drawn, Flow(read, unknown_scopes, scope, key, /*inverse=*/false));
  const float base_gain = renderer_->IdentityGain();
  const bool verify = verify_distance > 0.0f;
  std::vector<Descriptor> codes, pseudonyms;
  std::vector<size_t> gain_step(faces.size(), 0);  // index into kIdentityCheckGainSteps
  std::vector<bool> checked(faces.size(), verify);  // read back after every rendering pass
  for (size_t i = 0, next = 0; i < faces.size(); ++i) {
    out[i].gain = base_gain;
    if (known && (*known)[i] != nullptr) {
      codes.push_back((*known)[i]->code);
      pseudonyms.push_back((*known)[i]->pseudonym);
      if ((*known)[i]->gain > 0 || (*known)[i]->failed) {  // checked when its pseudonym was drawn
        out[i].gain = (*known)[i]->gain > 0 ? (*known)[i]->gain : base_gain;
        out[i].failed = (*known)[i]->failed;
        checked[i] = false;
      }
    } else {
      codes.push_back(read[next]);
      pseudonyms.push_back(drawn[next]);
      ++next;
    }
  }
  if (times) times->identity_ms += MsSince(t0);
  const cv::Mat original = verify ? image.clone() : cv::Mat();
  std::vector<cv::Rect> regions;
  // Every pass renders every face from the original and reads back every checked face, so what is
  // released is what passed (a neighbour pushed harder can paste over part of a face). Each pass
  // but the last raises some face's gain step, so there are at most 1 + 2 x faces passes.
  for (;;) {
    std::vector<Descriptor> targets;
    for (size_t i = 0; i < faces.size(); ++i) targets.push_back(SteerIdentity(codes[i], pseudonyms[i], out[i].gain));
    if (!regions.empty()) original.copyTo(image);
    regions.clear();
    VEIL_RETURN_IF_ERROR(Render(image, faces, targets, &regions, times));
    std::vector<Face> rendered;
    std::vector<size_t> which;
    for (size_t i = 0; i < faces.size(); ++i) {
      if (checked[i] && !out[i].failed) {
        rendered.push_back(faces[i]);
        which.push_back(i);
      }
    }
    if (rendered.empty()) break;
    t0 = Clock::now();
    VEIL_ASSIGN_OR_RETURN(std::vector<Descriptor> back, Describe(image, rendered));
    if (times) times->identity_ms += MsSince(t0);
    bool again = false;
    for (size_t j = 0; j < which.size(); ++j) {
      const size_t i = which[j];
      out[i].distance = DescriptorDistance(back[j], codes[i]);
      if (out[i].distance > verify_distance) continue;
      const size_t next = NextIdentityCheckStep(base_gain, gain_step[i]);
      if (next < std::size(kIdentityCheckGainSteps)) {
        gain_step[i] = next;
        out[i].gain = IdentityCheckGain(base_gain, next);
        again = true;
      } else {
        out[i].failed = true;
      }
    }
    if (!again) break;
  }
  for (size_t i = 0; i < faces.size(); ++i) {
    out[i].region = regions[i];
    if (verify && known && (*known)[i] != nullptr && (*known)[i]->gain == 0 && !(*known)[i]->failed) {
      (*known)[i]->gain = out[i].gain;
      (*known)[i]->failed = out[i].failed;
    }
  }
  return out;
}

StatusOr<Descriptor> FaceSynthesizer::Pseudonym(const Descriptor& code, const std::string& scope_id,
                                                keys::ScopeKind scope, const keys::KeyHandle& key) {
  VEIL_ASSIGN_OR_RETURN(std::vector<Descriptor> out, Flow({code}, {scope_id}, scope, key, /*inverse=*/false));
  return out[0];
}

StatusOr<PseudonymReader*> FaceSynthesizer::Reader() {
  if (!reader_checked_) {
    if (reader_named_) {  // named by the caller: it must be there and serve this generator
      VEIL_ASSIGN_OR_RETURN(reader_, PseudonymReader::Load(reader_path_, face_api_dir_));
      if (reader_->generator_sha256() != generator_sha256_) {
        reader_.reset();
        return InvalidArgumentError("the pseudonym reader " + reader_path_ + " was trained for another generator");
      }
    } else {
      VEIL_ASSIGN_OR_RETURN(reader_, PseudonymReader::LoadIfFor(reader_path_, generator_sha256_, face_api_dir_));
    }
    reader_checked_ = true;
  }
  return reader_.get();
}

Status FaceSynthesizer::Restore(cv::Mat& image, const std::vector<Face>& faces, const std::vector<std::string>& scope_ids,
                                keys::ScopeKind scope, const keys::KeyHandle& key, std::vector<ModelRef>* used) {
  if (faces.empty()) return Status::Ok();
  VEIL_ASSIGN_OR_RETURN(std::vector<Descriptor> codes, recognizer_->DescribeFaces(image, faces));
  std::vector<Descriptor> read = codes;
  float ratio = renderer_->ReadBackNoiseRatio();
  VEIL_ASSIGN_OR_RETURN(PseudonymReader * reader, Reader());
  if (reader != nullptr) {
    std::vector<cv::Mat> crops;
    for (const auto& f : faces) {
      VEIL_ASSIGN_OR_RETURN(AlignedFace a, aligner_.Align(image, f));
      crops.push_back(a.image);
    }
    VEIL_ASSIGN_OR_RETURN(read, reader->Read(crops));
    ratio = reader->DenoiseRatio();
    if (used) used->push_back({reader->model_id(), "reader", reader->model_sha256()});
  }
  // The read-back pseudonym carries the generator's rendering error; its whitened inverse would
  // magnify the error's weak-direction part, so the likeliest pseudonym is inverted instead.
  VEIL_ASSIGN_OR_RETURN(std::vector<Descriptor> pseudonyms, flow_->Denoise(read, ratio));
  VEIL_ASSIGN_OR_RETURN(std::vector<Descriptor> originals, Flow(pseudonyms, scope_ids, scope, key, /*inverse=*/true));
  for (size_t i = 0; i < originals.size(); ++i) originals[i] = SteerIdentity(codes[i], originals[i], renderer_->IdentityGain());
  return Render(image, faces, originals, nullptr);
}

}  // namespace veil::engine::internal
