// SteerIdentity (face_renderer.h): extrapolate from the crop's own code past the target.
#include "veil/engine/face_renderer.h"

namespace veil::engine {

Descriptor SteerIdentity(const Descriptor& source, const Descriptor& target, float gain) {
  Descriptor t;
  for (size_t i = 0; i < t.size(); ++i) t[i] = source[i] + gain * (target[i] - source[i]);
  return t;
}

}  // namespace veil::engine
