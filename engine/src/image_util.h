// Small helpers shared by the pipeline files (no LibTorch).
#pragma once

#include <opencv2/core.hpp>

#include "veil/status.h"

namespace veil::engine {

// 8-bit gray, BGR or BGRA image -> 8-bit RGB; InvalidArgument for anything else or an empty image.
StatusOr<cv::Mat> ToRgb(const cv::Mat& image);

// face-api's Box.clipAtImageBorders: clip to the image, then floor x, y, width and height.
cv::Rect ClipAndFloor(const cv::Rect2f& box, int width, int height);

}  // namespace veil::engine
