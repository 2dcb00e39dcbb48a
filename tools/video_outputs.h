// What `veil anonymize` and `veil camera` write for a video, in this order: the payload container
// (beside the video, or only in the key store's folder with --payload store), the sidecar manifest
// OUT.veil, and the video last: its presence marks the job as done.
#pragma once

#include <string>

#include "store_options.h"
#include "veil/engine/video.h"

namespace veil::cli {

// The --payload option of anonymize and camera: inline (beside the output), store (only in the key
// store's folder) or none.
StatusOr<engine::PayloadLocation> ParsePayloadOption(const std::string& value);

// After the commit of `output` failed with `failure`, its manifest already written beside it:
// whether our file stands under that name all the same (only the folder's fsync failed), so that
// the manifest, which may hold its sealed originals, stays. AlreadyExists means that another file
// took the name meanwhile, which the manifest must not describe.
bool CommittedDespite(const std::string& output, const Status& failure);

class VideoOutputs {
 public:
  // Sets options.payloads and options.before_commit (which writes the sidecar) for `output`;
  // `options` must outlive this object (the destructor takes before_commit back).
  VideoOutputs(const StoreOptions& store, engine::PayloadLocation where, const std::string& output,
               engine::VideoOptions& options);
  ~VideoOutputs();
  VideoOutputs(const VideoOutputs&) = delete;
  VideoOutputs& operator=(const VideoOutputs&) = delete;

  // AlreadyExists when the sidecar or the container beside `output` is already taken: for a live
  // stream, which cannot be repeated, this is checked before the first frame.
  Status CheckFree() const;

  // After a job that failed with `failure`: removes the sidecar this job wrote unless its video took
  // its name (a file that appeared under that name meanwhile is not ours: AlreadyExists).
  void CleanUp(const Status& failure) const;
  // The manifest as written to the sidecar (empty until then).
  const std::string& manifest_bytes() const { return manifest_bytes_; }

 private:
  engine::VideoOptions& options_;
  std::string output_, sidecar_, manifest_bytes_;
  bool beside_ = false;  // the payload container goes beside the output
  bool made_sidecar_ = false;
};

}  // namespace veil::cli
