// Where a Veil output's manifest is found, for the commands that read one (restore, inspect).
#pragma once

#include <optional>
#include <string>

#include "veil/status.h"

namespace veil::cli {

struct ManifestBytes {
  std::string raw;    // the serialized manifest
  std::string where;  // "embedded", or the file it was read from
};

// INPUT's manifest: from `manifest_path` when given, else embedded in `bytes` (INPUT's encoded
// image; empty for a video), else INPUT.veil. Errors say "no Veil manifest for INPUT" and keep
// their code (NotFound when there is none, DataLoss for a damaged embedded one).
StatusOr<ManifestBytes> FindManifestBytes(const std::string& input, const std::string& bytes,
                                          const std::optional<std::string>& manifest_path);

}  // namespace veil::cli
