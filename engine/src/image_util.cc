#include "image_util.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

namespace veil::engine {

StatusOr<cv::Mat> ToRgb(const cv::Mat& image) {
  if (image.empty()) return InvalidArgumentError("image is empty");
  if (image.depth() != CV_8U) return InvalidArgumentError("image must have 8-bit channels");
  cv::Mat rgb;
  switch (image.channels()) {
    case 1: cv::cvtColor(image, rgb, cv::COLOR_GRAY2RGB); break;
    case 3: cv::cvtColor(image, rgb, cv::COLOR_BGR2RGB); break;
    case 4: cv::cvtColor(image, rgb, cv::COLOR_BGRA2RGB); break;
    default: return InvalidArgumentError("image must have 1, 3 or 4 channels");
  }
  return rgb;
}

cv::Rect ClipAndFloor(const cv::Rect2f& box, int width, int height) {
  const double x = std::max<double>(box.x, 0.0), y = std::max<double>(box.y, 0.0);
  const double w = std::min<double>(box.x + box.width - x, width - x);
  const double h = std::min<double>(box.y + box.height - y, height - y);
  return cv::Rect(static_cast<int>(std::floor(x)), static_cast<int>(std::floor(y)), static_cast<int>(std::floor(w)),
                  static_cast<int>(std::floor(h)));
}

}  // namespace veil::engine
