// What `veil anonymize` and `veil camera` write for a video, in this order: the payload container
// (beside the video, or only in the key store's folder with --payload store), the sidecar manifest
// OUT.veil, and the video last: its presence marks the job as done.
#pragma once

#include <string>

#include "store_options.h"
#include "veil/engine/video.h"

namespace veil::cli {

class VideoOutputs {
 public:
  // Sets options.payloads and options.before_commit (which writes the sidecar) for `output`.
  VideoOutputs(const StoreOptions& store, engine::PayloadLocation where, const std::string& output,
               engine::VideoOptions& options);
  VideoOutputs(const VideoOutputs&) = delete;
  VideoOutputs& operator=(const VideoOutputs&) = delete;

  // After a failed job: removes the sidecar this job wrote when its video is absent.
  void CleanUp() const;
  // The manifest as written to the sidecar (empty until then).
  const std::string& manifest_bytes() const { return manifest_bytes_; }

 private:
  std::string output_, sidecar_, manifest_bytes_;
  bool made_sidecar_ = false;
};

}  // namespace veil::cli
