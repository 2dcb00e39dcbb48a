// The generator file's calibration values (GeneratorOptions identity_gain and readback_noise_ratio;
// their meaning: SteerIdentity and FaceRenderer::ReadBackNoiseRatio in face_renderer.h).
#pragma once

#include <string>

#include "veil/status.h"

namespace veil::engine {

// identity_gain in [1, 8], readback_noise_ratio in [0, 10]. InvalidArgument "<what> must be a number
// in [lo, hi]" otherwise. The one rule for the model-file loader, the trainer's export and veil
// eval's overrides.
Status CheckIdentityGain(double gain, const std::string& what);
Status CheckReadBackNoiseRatio(double ratio, const std::string& what);

}  // namespace veil::engine
