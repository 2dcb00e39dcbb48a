// SteerIdentity (face_renderer.h): extrapolate from the crop's own code past the target; the
// ranges of the generator file's calibration values.
#include "veil/engine/face_renderer.h"

namespace veil::engine {

Descriptor SteerIdentity(const Descriptor& source, const Descriptor& target, float gain) {
  Descriptor t;
  for (size_t i = 0; i < t.size(); ++i) t[i] = source[i] + gain * (target[i] - source[i]);
  return t;
}

Status CheckIdentityGain(double gain, const std::string& what) { return CheckInRange(gain, 1.0, 8.0, what); }
Status CheckReadBackNoiseRatio(double ratio, const std::string& what) { return CheckInRange(ratio, 0.0, 10.0, what); }

}  // namespace veil::engine
