#include "payloads.h"

#include <opencv2/imgcodecs.hpp>

#include "veil/engine/pipeline.h"
#include "veil/keys/aead.h"
#include "veil/keys/secret.h"

namespace veil::engine {
namespace {

void PutU32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

std::string PayloadAssociatedData(const Manifest& manifest, uint32_t face_index) {
  // Videos bind the frame too (and use their own label): a payload cannot move to another frame.
  std::string ad = manifest.frames > 0 ? "veil-video-payload-v1" : "veil-payload-v1";
  ad += manifest.manifest_id;
  PutU32(&ad, face_index);
  ad += manifest.output_pixels_sha256;
  for (const auto& f : manifest.faces) {
    if (f.index != face_index) continue;
    PutU32(&ad, static_cast<uint32_t>(f.region.x));
    PutU32(&ad, static_cast<uint32_t>(f.region.y));
    PutU32(&ad, static_cast<uint32_t>(f.region.width));
    PutU32(&ad, static_cast<uint32_t>(f.region.height));
    if (manifest.frames > 0) PutU32(&ad, f.frame);
  }
  return ad;
}

namespace internal {

StatusOr<std::string> RegionPng(const cv::Mat& bgr, const cv::Rect& region) {
  if (region.area() == 0) return std::string();
  if ((region & cv::Rect(0, 0, bgr.cols, bgr.rows)) != region) return InternalError("a face region leaves the image");
  std::vector<uchar> png;
  if (!cv::imencode(".png", bgr(region), png)) return InternalError("encoding a face payload failed");
  return std::string(png.begin(), png.end());
}

Status SealPayloads(Manifest& m, const keys::KeyHandle& key, const std::vector<std::string>& pngs,
                    PayloadLocation where) {
  if (pngs.size() != m.faces.size()) return InternalError("one payload (or none) per face expected");
  if (where == PayloadLocation::kNone) return Status::Ok();
  for (size_t i = 0; i < m.faces.size(); ++i) {
    if (pngs[i].empty()) continue;
    FaceRecord& rec = m.faces[i];
    VEIL_ASSIGN_OR_RETURN(rec.sealed_payload,
                          keys::SealPayload(key, keys::ScopeKind::kFace, keys::ToHex(m.manifest_id) + "#" + std::to_string(i),
                                            pngs[i], PayloadAssociatedData(m, rec.index), /*synthetic_nonce=*/true));
    rec.payload_location = where;
  }
  return Status::Ok();
}

StatusOr<cv::Mat> OpenPayload(const Manifest& m, const FaceRecord& face, const keys::KeyHandle& key) {
  auto plain = keys::OpenPayload(key, face.sealed_payload, PayloadAssociatedData(m, face.index));
  if (!plain.ok()) {
    return UnauthenticatedError("the payload of face " + std::to_string(face.index) +
                                " does not open: wrong key, or the manifest or payload was altered");
  }
  std::vector<uchar> png(plain->begin(), plain->end());
  cv::Mat region = cv::imdecode(png, cv::IMREAD_COLOR);
  if (region.empty() || region.size() != face.region.size()) return DataLossError("a face payload holds a malformed region");
  return region;
}

}  // namespace internal
}  // namespace veil::engine
