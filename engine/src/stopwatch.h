// Wall time of the pipeline's stages (StageTimes), for the files under engine/src.
#pragma once

#include <chrono>

namespace veil::engine::internal {

using Clock = std::chrono::steady_clock;

// Milliseconds since t0.
inline double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace veil::engine::internal
