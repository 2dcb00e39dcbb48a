#include "manifest_lookup.h"

#include "veil/engine/manifest.h"
#include "veil/keys/fs.h"

namespace veil::cli {

StatusOr<ManifestBytes> FindManifestBytes(const std::string& input, const std::string& bytes,
                                          const std::optional<std::string>& manifest_path) {
  ManifestBytes found;
  StatusOr<std::string> raw = NotFoundError("no manifest");
  if (manifest_path) {
    raw = keys::ReadFile(*manifest_path, engine::kMaxManifestBytes);
    found.where = *manifest_path;
  } else {
    raw = engine::ExtractManifest(bytes);
    found.where = "embedded";
    if (!raw.ok() && raw.status().code() == StatusCode::kNotFound && keys::PathExists(input + ".veil")) {
      raw = keys::ReadFile(input + ".veil", engine::kMaxManifestBytes);
      found.where = input + ".veil";
    }
  }
  if (!raw.ok()) return raw.status().WithContext("no Veil manifest for " + input + " (was it anonymized by Veil?)");
  found.raw = std::move(*raw);
  return found;
}

}  // namespace veil::cli
