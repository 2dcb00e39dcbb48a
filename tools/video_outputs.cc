#include "video_outputs.h"

#include <filesystem>

#include "veil/keys/fs.h"

namespace veil::cli {

VideoOutputs::VideoOutputs(const StoreOptions& store, engine::PayloadLocation where, const std::string& output,
                           engine::VideoOptions& options)
    : output_(output), sidecar_(output + ".veil") {
  if (where == engine::PayloadLocation::kKeyStore) {
    std::error_code ec;
    options.payloads.folder = StorePayloadFolder(store);
    std::filesystem::create_directories(options.payloads.folder, ec);
    options.payloads.name = StoreVideoPayloadName;
    options.payloads.replace = true;  // named by the output's digest: a re-run writes the same bytes
  }
  options.before_commit = [this](const engine::Manifest& m) -> Status {
    manifest_bytes_ = engine::SerializeManifest(m);
    // An identical sidecar is an earlier run's, stopped just before its video appeared.
    return keys::WriteNewFileOrSame(sidecar_, manifest_bytes_, 0644, &made_sidecar_);
  };
}

void VideoOutputs::CleanUp() const {
  std::error_code ec;
  if (made_sidecar_ && !keys::PathExists(output_)) std::filesystem::remove(sidecar_, ec);  // ours, and no video
}

}  // namespace veil::cli
