// veil eval's measure of blur: how much fine detail a face crop holds.
#pragma once

#include <opencv2/core.hpp>

namespace veil::cli {

// The mean squared Laplacian of a BGR crop's grey levels over its central 5/8 (the face). A blurred
// render has less of it than the photo it stands for: veil eval reports the renders' mean over the
// originals' (detail_vs_original; 1: as much detail as the photos). The GAN trainer's hold-out
// evaluation computes the same number on tensors (engine/src/identity/fine_detail.h; tested equal).
double DetailEnergy(const cv::Mat& bgr);

}  // namespace veil::cli
