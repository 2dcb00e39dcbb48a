// Reproducible Matroska files (internal).
//
// FFmpeg's Matroska muxer gives each file a random segment UID and random track UIDs (repeated in
// the tags) unless it runs bit-exact, which OpenCV's VideoWriter cannot ask for. The same frames
// would then give different file bytes, and a restore request names a file by its bytes.
#pragma once

#include <string>

#include "veil/status.h"

namespace veil::engine::internal {

// Replaces the segment UID and every track UID of the Matroska file at `path` with ids derived from
// its content (SHA-256 of the file with those ids and the CRC-32s over them zeroed) and rewrites the
// CRC-32 elements that cover them. Only the header before the first cluster is parsed and changed,
// in place, size unchanged. A file whose header does not parse, or whose CRC-32s do not verify
// before the change, is refused (DataLoss) and left as it is.
Status MakeMatroskaIdsDeterministic(const std::string& path);

}  // namespace veil::engine::internal
