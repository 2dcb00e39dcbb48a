#include "payloads.h"

#include <cstring>

#include <opencv2/imgcodecs.hpp>

#include "byte_order.h"
#include "veil/engine/pipeline.h"
#include "veil/keys/aead.h"
#include "veil/keys/secret.h"

namespace veil::engine {
namespace {

using internal::PutLittleEndian32;

void PutRegion(std::string* s, const cv::Rect& r) {
  PutLittleEndian32(s, static_cast<uint32_t>(r.x));
  PutLittleEndian32(s, static_cast<uint32_t>(r.y));
  PutLittleEndian32(s, static_cast<uint32_t>(r.width));
  PutLittleEndian32(s, static_cast<uint32_t>(r.height));
}

StatusOr<cv::Mat> DecodeRegion(const std::string& png, const FaceRecord& face) {
  std::vector<uchar> bytes(png.begin(), png.end());
  cv::Mat region = cv::imdecode(bytes, cv::IMREAD_COLOR);
  if (region.empty() || region.size() != face.region.size()) return DataLossError("a face payload holds a malformed region");
  return region;
}

// With the key proven (the manifest seal verified, or the key check matched), a payload that does
// not open was altered; otherwise (older manifests) the two causes cannot be told apart.
Status NotOpened(const FaceRecord& face, bool key_proven) {
  const std::string which = "the sealed original of face " + std::to_string(face.index);
  if (key_proven) return DataLossError(which + " was altered (it does not open under the right key)");
  return UnauthenticatedError(which + " does not open: wrong key, or the manifest or payload was altered");
}

std::string VideoPayloadAssociatedData(const std::string& container_id, const FaceRecord& face) {
  std::string ad = "veil-video-payload-v2" + container_id;
  PutLittleEndian32(&ad, face.index);
  PutLittleEndian32(&ad, face.frame);
  PutRegion(&ad, face.region);
  return ad;
}

void PutFloat(std::string* s, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  PutLittleEndian32(s, bits);
}

void PutText(std::string* s, const std::string& text) {
  PutLittleEndian32(s, static_cast<uint32_t>(text.size()));
  *s += text;
}

// Every field of a video's manifest but the seal itself, in a fixed encoding (not protobuf's, which
// is not canonical): the video seal authenticates all of it, face boxes and landmarks included.
std::string ManifestSealAssociatedData(const Manifest& m) {
  std::string ad = "veil-video-seal-v1";
  PutText(&ad, m.manifest_id);
  PutLittleEndian32(&ad, static_cast<uint32_t>(m.models.size()));
  for (const auto& r : m.models) {
    PutText(&ad, r.id);
    PutText(&ad, r.role);
    PutText(&ad, r.sha256_hex);
  }
  PutText(&ad, m.keyring);
  PutLittleEndian32(&ad, m.key_version);
  PutLittleEndian32(&ad, static_cast<uint32_t>(m.scope));
  PutText(&ad, m.scope_id);
  PutLittleEndian32(&ad, static_cast<uint32_t>(m.faces.size()));
  for (const auto& f : m.faces) {
    PutLittleEndian32(&ad, f.index);
    PutLittleEndian32(&ad, f.frame);
    for (float v : {f.box.x, f.box.y, f.box.width, f.box.height}) PutFloat(&ad, v);
    PutLittleEndian32(&ad, static_cast<uint32_t>(f.landmarks.size()));
    for (const auto& p : f.landmarks) {
      PutFloat(&ad, p.x);
      PutFloat(&ad, p.y);
    }
    PutLittleEndian32(&ad, static_cast<uint32_t>(f.method));
    PutText(&ad, f.method_reason);
    PutFloat(&ad, f.detector_score);
    PutRegion(&ad, f.region);
    PutLittleEndian32(&ad, static_cast<uint32_t>(f.payload_location));
  }
  PutText(&ad, m.output_pixels_sha256);
  PutLittleEndian32(&ad, m.width);
  PutLittleEndian32(&ad, m.height);
  PutLittleEndian32(&ad, m.frames);
  PutText(&ad, m.payload_container.container_id);
  PutText(&ad, m.payload_container.sha256);
  PutLittleEndian32(&ad, static_cast<uint32_t>(m.payload_container.size & 0xffffffffu));
  PutLittleEndian32(&ad, static_cast<uint32_t>(m.payload_container.size >> 32));
  PutLittleEndian32(&ad, m.payload_container.records);
  // Added with held frames: absent from (and so not changing) the data of manifests without them.
  if (!m.held_frames.empty()) {
    PutText(&ad, "held-frames");
    PutLittleEndian32(&ad, static_cast<uint32_t>(m.held_frames.size()));
    for (const auto& h : m.held_frames) {
      PutLittleEndian32(&ad, h.frame);
      PutLittleEndian32(&ad, h.copies);
      PutLittleEndian32(&ad, h.cut);
    }
  }
  return ad;
}

}  // namespace

namespace {

// `sealed_manifest`: an image whose manifest carries a seal (v2): its payloads do not open under
// the v1 data of an unsealed manifest, so stripping the seal is no way around it.
std::string PayloadAd(const Manifest& manifest, uint32_t face_index, bool sealed_manifest) {
  // Videos with their payloads in the manifest (before payload containers) bind the frame too.
  std::string ad = manifest.frames > 0 ? "veil-video-payload-v1" : sealed_manifest ? "veil-payload-v2" : "veil-payload-v1";
  ad += manifest.manifest_id;
  PutLittleEndian32(&ad, face_index);
  ad += manifest.output_pixels_sha256;
  for (const auto& f : manifest.faces) {
    if (f.index != face_index) continue;
    PutRegion(&ad, f.region);
    if (manifest.frames > 0) PutLittleEndian32(&ad, f.frame);
  }
  return ad;
}

}  // namespace

std::string PayloadAssociatedData(const Manifest& manifest, uint32_t face_index) {
  return PayloadAd(manifest, face_index, !manifest.manifest_seal.empty());
}

namespace internal {

keys::SecretBytes ManifestKey(const keys::KeyHandle& key) {
  return key.DeriveSubkey(keys::KeyPurpose::kManifest, keys::ScopeKind::kDeployment, "");
}

std::string DeriveManifestId(const keys::SecretBytes& manifest_key, const std::string& kind,
                             const std::string& input_digest, const std::string& output_pixels_sha256) {
  return std::string(
      keys::ExpandSecret(manifest_key, kind + ":" + keys::ToHex(input_digest) + ":" + keys::ToHex(output_pixels_sha256), 16)
          .view(keys::SecretAccess::Get()));
}

StatusOr<std::string> RegionPng(const cv::Mat& bgr, const cv::Rect& region) {
  if (region.area() == 0) return std::string();
  if ((region & cv::Rect(0, 0, bgr.cols, bgr.rows)) != region) return InternalError("a face region leaves the image");
  std::vector<uchar> png;
  if (!cv::imencode(".png", bgr(region), png)) return InternalError("encoding a face payload failed");
  return std::string(png.begin(), png.end());
}

Status SealImage(Manifest& m, const keys::KeyHandle& key, const std::vector<std::string>& pngs, PayloadLocation where) {
  if (pngs.size() != m.faces.size()) return InternalError("one payload (or none) per face expected");
  if (m.frames != 0) return InternalError("SealImage is for images");
  if (where != PayloadLocation::kNone) {
    for (size_t i = 0; i < m.faces.size(); ++i) {
      if (pngs[i].empty()) continue;
      FaceRecord& rec = m.faces[i];
      VEIL_ASSIGN_OR_RETURN(rec.sealed_payload,
                            keys::SealPayload(key, keys::ScopeKind::kFace, keys::ToHex(m.manifest_id) + "#" + std::to_string(i),
                                              pngs[i], PayloadAd(m, rec.index, /*sealed_manifest=*/true),
                                              /*synthetic_nonce=*/true));
      rec.payload_location = where;
    }
  }
  m.key_check = key.KeyCheck(m.manifest_id);
  VEIL_ASSIGN_OR_RETURN(m.manifest_seal, SealManifest(m, key));
  return Status::Ok();
}

StatusOr<cv::Mat> OpenPayload(const Manifest& m, const FaceRecord& face, const keys::KeyHandle& key, bool key_proven) {
  auto plain = keys::OpenPayload(key, face.sealed_payload, PayloadAssociatedData(m, face.index));
  if (!plain.ok()) return NotOpened(face, key_proven);
  return DecodeRegion(*plain, face);
}

StatusOr<std::string> SealVideoPayload(const std::string& container_id, const FaceRecord& face,
                                       const keys::KeyHandle& key, const std::string& png) {
  return keys::SealPayload(key, keys::ScopeKind::kFace, keys::ToHex(container_id) + "#" + std::to_string(face.index), png,
                           VideoPayloadAssociatedData(container_id, face), /*synthetic_nonce=*/true);
}

StatusOr<cv::Mat> OpenVideoPayload(const std::string& container_id, const FaceRecord& face,
                                   const keys::KeyHandle& key, const std::string& sealed, bool key_proven) {
  auto plain = keys::OpenPayload(key, sealed, VideoPayloadAssociatedData(container_id, face));
  if (!plain.ok()) return NotOpened(face, key_proven);
  return DecodeRegion(*plain, face);
}

StatusOr<std::string> SealManifest(const Manifest& m, const keys::KeyHandle& key) {
  return keys::SealPayload(key, keys::ScopeKind::kStream, keys::ToHex(m.manifest_id) + "#video-seal", "",
                           ManifestSealAssociatedData(m), /*synthetic_nonce=*/true);
}

Status RequireKeptPayloads(const Manifest& m) {
  for (const auto& f : m.faces) {
    if (f.payload_location != PayloadLocation::kNone && f.sealed_payload.empty()) {
      return DataLossError("the manifest lost the sealed original of face " + std::to_string(f.index));
    }
  }
  return Status::Ok();
}

bool KeyConfirmed(const Manifest& m, const keys::KeyHandle& key) {
  return !m.key_check.empty() && m.key_check == key.KeyCheck(m.manifest_id);
}

StatusOr<keys::KeyHandle> KeyForManifest(const Manifest& m, const keys::RestoreGrant& grant) {
  auto key = grant.Key(m.keyring, m.key_version);
  if (key.ok() || m.keyring == grant.keyring() || m.key_check.empty()) return key;
  // Another keyring's image, or this keyring's name altered in the manifest: the check tells.
  auto own = grant.Key(grant.keyring(), m.key_version);
  if (own.ok() && KeyConfirmed(m, *own)) {
    return DataLossError("the manifest was altered: it names keyring '" + keys::Printable(m.keyring) +
                         "', but its key check names '" + grant.keyring() + "'");
  }
  return key;
}

Status VerifyManifestSeal(const Manifest& m, const keys::KeyHandle& key) {
  // The seal decides; the key check only says why it failed.
  if (!m.manifest_seal.empty() && keys::OpenPayload(key, m.manifest_seal, ManifestSealAssociatedData(m)).ok()) {
    return Status::Ok();
  }
  const std::string what = m.frames > 0 ? "video" : "image";
  if (m.key_check.empty()) {  // older manifests: a wrong key and an alteration look the same
    return UnauthenticatedError(m.frames > 0 ? "the video's manifest and payload container do not verify: wrong key, or the "
                                               "manifest or payload container was altered or swapped"
                                             : "the image's manifest does not verify: wrong key, or the manifest was altered");
  }
  if (!KeyConfirmed(m, key)) {
    return UnauthenticatedError("wrong key: the " + what + " was sealed under another key than '" + keys::Printable(m.keyring) +
                                "' version " + std::to_string(m.key_version) + " of this key store");
  }
  return DataLossError(m.frames > 0 ? "the video's manifest or payload container was altered or swapped after anonymization"
                                    : "the image's manifest was altered after anonymization (it does not verify under its key)");
}

}  // namespace internal
}  // namespace veil::engine
