// How `veil anonymize` and `veil camera` replace faces, from the options they share:
//   --replace blur|pixelate|solid|synthesized   (default pixelate)
//   --experimental                              needed for synthesized while the shipped models
//                                               miss their privacy targets (models/README.md)
//   --verify-distance D                         the identity check of synthesized faces, in [0, 2]
//                                               (default PipelineParams::verify_distance; 0: off)
//   --max-turn T                                synthesized faces turned further than T from frontal
//                                               are pixelated, in [0, 0.5] (default
//                                               PipelineParams::max_turn; 0.5: off)
#pragma once

#include "cli.h"
#include "veil/engine/pipeline.h"

namespace veil::cli {

struct ReplaceOptions {
  engine::ReplaceMethod method = engine::ReplaceMethod::kPixelate;
  float verify_distance = engine::PipelineParams().verify_distance;
  float max_turn = engine::PipelineParams().max_turn;
};

// Reads the options (before Args::Finish, so none counts as unknown). InvalidArgument for an
// unknown method, a distance or turn out of range or either without synthesized faces;
// FailedPrecondition for synthesized faces without --experimental. The caller registers
// "--experimental" as a boolean flag.
StatusOr<ReplaceOptions> ReadReplaceOptions(Args& args);

}  // namespace veil::cli
