// The anonymization manifest (format: proto/veil/proto/manifest.proto) and where it travels:
// embedded in the output image (a PNG "veIL" chunk, JPEG APP11 "VEIL" segments) or in a sidecar
// file "<output>.veil". Parsing is strict: sizes are bounded and the format version checked first.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "veil/keys/key_store.h"
#include "veil/status.h"

namespace veil::engine {

enum class ReplaceMethod { kSynthesized = 1, kBlur = 2, kPixelate = 3, kSolid = 4 };
enum class PayloadLocation { kNone = 0, kInline = 1, kSidecar = 2, kKeyStore = 3 };

const char* ReplaceMethodName(ReplaceMethod m);
StatusOr<ReplaceMethod> ParseReplaceMethod(const std::string& name);

struct ModelRef {
  std::string id;
  std::string role;
  std::string sha256_hex;
};

struct FaceRecord {
  uint32_t index = 0;
  cv::Rect2f box;
  std::vector<cv::Point2f> landmarks;  // 5 points in manifests before 2026-12-07; no longer written
  ReplaceMethod method = ReplaceMethod::kPixelate;
  std::string method_reason;
  float detector_score = 0;            // likewise
  cv::Rect region;                     // the pixels the replacement changed
  PayloadLocation payload_location = PayloadLocation::kNone;
  std::string sealed_payload;          // keys::SealPayload output; empty unless kept in the manifest
  uint32_t frame = 0;                  // frame number in a video
};

// A video's payload container (proto/veil/proto/payload_container.proto): the sealed originals,
// streamed beside the video or kept by the key store.
struct PayloadContainerRef {
  std::string container_id;            // 16 bytes; empty: no container
  std::string sha256;                  // 32 bytes, of the container file
  uint64_t size = 0;
  uint32_t records = 0;
};

struct Manifest {
  std::string manifest_id;             // 16 bytes
  std::vector<ModelRef> models;
  std::string keyring;
  uint32_t key_version = 0;
  std::string key_check;               // 16 bytes (keys::KeyHandle::KeyCheck); empty in older manifests
  keys::ScopeKind scope = keys::ScopeKind::kImage;
  std::string scope_id;
  std::vector<FaceRecord> faces;
  std::string output_pixels_sha256;    // 32 bytes: SHA-256 of the decoded output (BGR rows)
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t frames = 0;                 // videos: number of frames
  PayloadContainerRef payload_container;  // videos with sealed originals
  // A live recording kept in real time (StreamOptions::clock): output frame `frame` is followed by
  // `copies` copies of it (maybe none), written while the pipeline was busy, and then `cut` frame
  // intervals of real time are left out (a hold cut to one second, or copies too dear to write).
  // Ascending, not overlapping.
  struct HeldFrame {
    uint32_t frame = 0;
    uint32_t copies = 0;
    uint32_t cut = 0;
  };
  std::vector<HeldFrame> held_frames;
  std::string manifest_seal;           // authenticates every field (videos: the container reference too)
  // Only on an approximate restore's output: the anonymized image's manifest id (empty otherwise),
  // the authorizing request, and that the faces were re-rendered, not restored.
  struct RestoredFrom {
    std::string manifest_id;
    std::string request_id;
    bool approximate = false;
  } restored_from;
};

// The largest manifest ParseManifest accepts (sealed payloads included), and its most records:
// protobuf builds every record before a field is checked, and an empty record is 2 bytes on the
// wire but some 100 in memory, so the counts are checked on the wire first. Images hold fewer faces
// than videos; a face at most 68 landmarks (Veil wrote 5, and none since 2026-12-07), and all faces
// together 5 on average.
inline constexpr size_t kMaxManifestBytes = 64u << 20;
inline constexpr size_t kMaxManifestFaces = 1u << 20;       // and held frames
inline constexpr size_t kMaxImageManifestFaces = 1u << 16;

std::string SerializeManifest(const Manifest& m);
StatusOr<Manifest> ParseManifest(const std::string& bytes);

// SHA-256 over the pixel rows of an 8-bit image (with its size and channel count), independent of
// the file format.
std::string PixelsSha256(const cv::Mat& image);
// Whether a decoded image is exactly the output `m` describes: 8-bit BGR, its size, its pixel hash.
bool PixelsMatchManifest(const cv::Mat& decoded, const Manifest& m);

// Inserts the manifest into encoded PNG or JPEG bytes; Unsupported for other formats (use a sidecar).
StatusOr<std::string> EmbedManifest(const std::string& encoded_image, const std::string& manifest);
// The embedded manifest, NotFound when there is none, DataLoss when it is damaged.
StatusOr<std::string> ExtractManifest(const std::string& encoded_image);

}  // namespace veil::engine
