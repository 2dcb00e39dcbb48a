// Image pre-processing exactly as face-api does it in TensorFlow.js, so that the ported networks
// see the same input values: zero padding to a square (padToSquare) and TF's bilinear resize
// without half-pixel centres (OpenCV's INTER_LINEAR uses half-pixel centres and differs).
#pragma once

#include <opencv2/core.hpp>

namespace veil::engine {

// Takes `roi` (inside the image) of an 8-bit RGB image, zero-pads it to a square like face-api's
// padToSquare (centred: floor(diff/2) before, the rest after; otherwise all after, i.e. at the
// bottom or right), and resizes the square to out x out with TF's bilinear resize
// (align_corners=false, half_pixel_centers=false). Returns CV_32FC3 with values in 0..255.
cv::Mat SquareResizeTf(const cv::Mat& rgb, const cv::Rect& roi, bool centered, int out);

}  // namespace veil::engine
