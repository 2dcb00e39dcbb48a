// Sealed originals (internal to the engine): each replaced face region, PNG-encoded, sealed with
// XChaCha20-Poly1305 under a per-face subkey. Images: the associated data binds it to its
// manifest, its output pixels and its region. Videos: sealed as the frames come (the output hash
// is not known yet), bound to the payload container id, the frame and the region; the manifest's
// video seal then authenticates the whole manifest: the container reference, every face record
// and the output frames' hash. Images are sealed the same way (older images without a seal still restore).
#pragma once

#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "veil/engine/manifest.h"
#include "veil/keys/key_store.h"
#include "veil/status.h"

namespace veil::engine::internal {

// The key's manifest subkey (deployment-wide): scope, manifest and container ids are derived from it.
keys::SecretBytes ManifestKey(const keys::KeyHandle& key);

// A manifest's 16-byte id, keyed by `manifest_key` (ManifestKey) over its kind ("veil-manifest-id-v2"
// for images, "veil-video-manifest-id-v2" for video files), the input's digest and the output
// pixels' SHA-256: the same input and key give the same id, and only the key's holder can tell
// which input an id names.
std::string DeriveManifestId(const keys::SecretBytes& manifest_key, const std::string& kind,
                             const std::string& input_digest, const std::string& output_pixels_sha256);

// The region of `bgr` as PNG bytes (lossless), or an empty string for an empty region.
StatusOr<std::string> RegionPng(const cv::Mat& bgr, const cv::Rect& region);

// An image's manifest: seals `pngs[i]` (empty: none) into m.faces[i] and marks where it is kept
// (nothing with kNone), then seals the manifest (m.manifest_seal). Every other field must be final.
Status SealImage(Manifest& m, const keys::KeyHandle& key, const std::vector<std::string>& pngs, PayloadLocation where);

// Opens the payload of `face` (one of m.faces) and decodes its region. When it does not open:
// DataLoss (altered) if `key_proven` (the manifest seal verified under `key`, or KeyConfirmed), else
// Unauthenticated (wrong key or altered: cannot tell). DataLoss when it holds no such region.
StatusOr<cv::Mat> OpenPayload(const Manifest& m, const FaceRecord& face, const keys::KeyHandle& key, bool key_proven);

// Videos: one face region of one frame, sealed for the payload container `container_id`.
StatusOr<std::string> SealVideoPayload(const std::string& container_id, const FaceRecord& face,
                                       const keys::KeyHandle& key, const std::string& png);
// Opens what SealVideoPayload sealed (errors as OpenPayload).
StatusOr<cv::Mat> OpenVideoPayload(const std::string& container_id, const FaceRecord& face,
                                   const keys::KeyHandle& key, const std::string& sealed, bool key_proven);

// The manifest seal of a final manifest (every field set: it authenticates them all, the sealed
// payloads excepted, which are bound on their own).
StatusOr<std::string> SealManifest(const Manifest& m, const keys::KeyHandle& key);
// True when the manifest's key check (KeyHandle::KeyCheck of its manifest id) names `key`'s material
// (never for older manifests, which carry none). Tells errors apart only: the seals decide.
bool KeyConfirmed(const Manifest& m, const keys::KeyHandle& key);
// The key the manifest names, from the grant (its errors). A manifest naming another keyring whose
// key check names the grant's own key of that version had its keyring name altered: DataLoss.
StatusOr<keys::KeyHandle> KeyForManifest(const Manifest& m, const keys::RestoreGrant& grant);
// Ok when m.manifest_seal opens with `key` for exactly this manifest, whatever the key check says.
// Otherwise Unauthenticated ("wrong key") when the manifest's key check names other key material,
// DataLoss ("altered") when it names this key; an older manifest without a check gets
// Unauthenticated (wrong key or altered: they look the same).
Status VerifyManifestSeal(const Manifest& m, const keys::KeyHandle& key);
// DataLoss when a face of a sealed manifest had its original sealed (its payload location
// says so) but the payload is gone: a restore must refuse, never skip or re-render that face.
Status RequireKeptPayloads(const Manifest& m);

}  // namespace veil::engine::internal
