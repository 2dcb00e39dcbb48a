// Video files through the pipeline, frame by frame (OpenCV VideoCapture / VideoWriter).
//
// Audio is not carried over: OpenCV reads and writes pictures only, so the output is silent (a
// voice identifies people too; mux the original audio back yourself only if that is acceptable).
// The manifest goes to a sidecar ("<output>.veil"): per face its frame, box and method, and the
// SHA-256 over every decoded output frame. Plain replacements of video are irreversible: no
// payloads are kept for videos.
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
// never replaces an existing file). .avi is written as Motion-JPEG, everything else as MPEG-4 Part 2
// in an .mp4 container. Returns the manifest (with the output hash).
StatusOr<Manifest> AnonymizeVideo(Pipeline& pipeline, const keys::KeyHandle& key, const std::string& input,
                                  const std::string& output,
                                  const std::function<void(const VideoProgress&)>& progress = {});

}  // namespace veil::engine
