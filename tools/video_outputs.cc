#include "video_outputs.h"

#include <filesystem>

#include "veil/keys/fs.h"

namespace veil::cli {

StatusOr<engine::PayloadLocation> ParsePayloadOption(const std::string& value) {
  if (value == "inline") return engine::PayloadLocation::kInline;
  if (value == "store") return engine::PayloadLocation::kKeyStore;
  if (value == "none") return engine::PayloadLocation::kNone;
  return InvalidArgumentError("--payload is inline, store or none");
}

VideoOutputs::VideoOutputs(const StoreOptions& store, engine::PayloadLocation where, const std::string& output,
                           engine::VideoOptions& options)
    : options_(options), output_(output), sidecar_(output + ".veil"), beside_(where == engine::PayloadLocation::kInline) {
  if (where == engine::PayloadLocation::kKeyStore) {
    std::error_code ec;
    options.payloads.folder = StorePayloadFolder(store);
    std::filesystem::create_directories(options.payloads.folder, ec);
    options.payloads.name = StoreVideoPayloadName;  // the manifest id: from the input and output digests
  }
  options.before_commit = [this](const engine::Manifest& m) -> Status {
    manifest_bytes_ = engine::SerializeManifest(m);
    // An identical sidecar is an earlier run's, stopped just before its video appeared.
    return keys::WriteNewFileOrSame(sidecar_, manifest_bytes_, 0644, &made_sidecar_);
  };
}

VideoOutputs::~VideoOutputs() { options_.before_commit = nullptr; }

Status VideoOutputs::CheckFree() const {
  for (const std::string& path : {sidecar_, beside_ ? engine::VideoPayloadPath(output_) : std::string()}) {
    if (!path.empty() && keys::PathExists(path)) return AlreadyExistsError(path + " exists; not overwriting it");
  }
  return Status::Ok();
}

bool CommittedDespite(const std::string& output, const Status& failure) {
  return keys::PathExists(output) && failure.code() != StatusCode::kAlreadyExists;
}

void VideoOutputs::CleanUp(const Status& failure) const {
  // Once the sidecar is written, a failure can only come from the video's commit.
  std::error_code ec;
  if (made_sidecar_ && !CommittedDespite(output_, failure)) std::filesystem::remove(sidecar_, ec);
}

}  // namespace veil::cli
