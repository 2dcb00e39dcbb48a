// Sealed originals (internal to the engine): each replaced face region, PNG-encoded, sealed with
// XChaCha20-Poly1305 under a per-face subkey; the associated data binds it to its manifest, its
// output pixels, its region and (videos) its frame. Shared by images (pipeline.cc) and videos.
#pragma once

#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "veil/engine/manifest.h"
#include "veil/keys/key_store.h"
#include "veil/status.h"

namespace veil::engine::internal {

// The region of `bgr` as PNG bytes (lossless), or an empty string for an empty region.
StatusOr<std::string> RegionPng(const cv::Mat& bgr, const cv::Rect& region);

// Seals `pngs[i]` (empty: none) into m.faces[i] and marks where it is kept. The manifest id, the
// output hash, the regions and (videos) frames must be final: they are bound into the seal.
Status SealPayloads(Manifest& m, const keys::KeyHandle& key, const std::vector<std::string>& pngs,
                    PayloadLocation where);

// Opens the payload of `face` (one of m.faces) and decodes its region: Unauthenticated when it
// does not open (wrong key, manifest or payload altered), DataLoss when it holds no such region.
StatusOr<cv::Mat> OpenPayload(const Manifest& m, const FaceRecord& face, const keys::KeyHandle& key);

}  // namespace veil::engine::internal
