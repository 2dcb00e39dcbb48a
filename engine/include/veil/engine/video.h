// Video files through the pipeline, frame by frame (OpenCV VideoCapture / VideoWriter).
//
// Audio is not carried over: OpenCV reads and writes pictures only, so the output is silent (a
// voice identifies people too; mux the original audio back yourself only if that is acceptable).
// The manifest goes to a sidecar ("<output>.veil"): per face its frame, box and method, the
// SHA-256 over every decoded output frame, and (PipelineParams::payloads) each face region of the
// original frames, sealed as for images. `.mkv` is written losslessly (FFV1): restoring such a
// video gives back the original frames bit for bit. Other containers are lossy: their restored
// face regions are exact copies of the original's decoded pixels, the rest is the re-encoded frame.
#pragma once

#include <functional>
#include <string>

#include "veil/engine/pipeline.h"

namespace veil::engine {

struct VideoProgress {
  int64_t frame = 0;
  int64_t frames = 0;  // 0 when the container does not say
};

// True for the extensions handled as video: .mp4 .m4v .mov .avi .mkv .webm
bool IsVideoPath(const std::string& path);

// Anonymizes `input` into `output` (written to a temporary file in the same folder, then renamed;
// never replaces an existing file). .mkv is written as FFV1 (lossless), .avi as Motion-JPEG,
// everything else as MPEG-4 Part 2 in an .mp4 container. Returns the manifest (with the output
// hash and, unless the pipeline keeps none, the sealed payloads; the caller strips them from the
// shared sidecar when the key store keeps them). `before_commit` (optional) receives the final
// manifest before the video appears under `output`, so that a sidecar written there is never
// missing next to a finished video; its error aborts the job.
StatusOr<Manifest> AnonymizeVideo(Pipeline& pipeline, const keys::KeyHandle& key, const std::string& input,
                                  const std::string& output,
                                  const std::function<void(const VideoProgress&)>& progress = {},
                                  const std::function<Status(const Manifest&)>& before_commit = {});

struct VideoRestoreOutput {
  int64_t frames = 0;
  int faces_restored = 0;
  int faces_without_payload = 0;
};

// Puts the original face regions back into every frame of `input` (a video anonymized by Veil,
// described by `manifest`) and writes `output` (codec as for AnonymizeVideo; temporary file, then
// renamed; never replaces a file). Nothing appears under `output` unless every payload opens with
// the key version the manifest names (checked first; Unauthenticated otherwise) and the decoded
// frames are exactly those the manifest describes (DataLoss "edited after anonymization" otherwise). The
// written file (mode 0600) is read back before it appears under `output`: as many frames, and for
// .mkv the very pixels restored. `before_commit` (optional; the CLI writes the audit record there)
// runs just before; its error aborts the restore and nothing appears. `input` should be a private
// copy of what the restore request names (veil restore copies it while hashing it).
StatusOr<VideoRestoreOutput> RestoreVideoFromPayloads(
    const std::string& input, const Manifest& manifest, const keys::RestoreGrant& grant, const std::string& output,
    const std::function<void(const VideoProgress&)>& progress = {},
    const std::function<Status(const VideoRestoreOutput&)>& before_commit = {});

}  // namespace veil::engine
