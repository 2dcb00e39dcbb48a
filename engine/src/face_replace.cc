#include "face_replace.h"

#include <algorithm>

#include <opencv2/imgproc.hpp>

namespace veil::engine::internal {

cv::Rect ReplacementRegion(const cv::Rect2f& box, float margin, const cv::Size& image_size) {
  float mx = box.width * margin, my = box.height * margin;
  int x0 = static_cast<int>(std::floor(box.x - mx)), y0 = static_cast<int>(std::floor(box.y - my));
  int x1 = static_cast<int>(std::ceil(box.x + box.width + mx)), y1 = static_cast<int>(std::ceil(box.y + box.height + my));
  cv::Rect r(cv::Point(x0, y0), cv::Point(x1, y1));
  return r & cv::Rect(0, 0, image_size.width, image_size.height);
}

void ReplacePlain(cv::Mat& image, const cv::Rect& region, ReplaceMethod method) {
  if (region.area() <= 0) return;
  cv::Mat roi = image(region);
  const int side = std::max(region.width, region.height);
  switch (method) {
    case ReplaceMethod::kBlur: {
      int k = std::max(3, (side / 3) | 1);
      cv::Mat blurred;
      // Two passes of a wide box-like Gaussian: nothing of the fine structure survives.
      cv::GaussianBlur(roi, blurred, cv::Size(k, k), 0, 0, cv::BORDER_REPLICATE);
      cv::GaussianBlur(blurred, roi, cv::Size(k, k), 0, 0, cv::BORDER_REPLICATE);
      break;
    }
    case ReplaceMethod::kPixelate: {
      int block = std::max(6, side / 10);
      cv::Mat small;
      cv::resize(roi, small, cv::Size(std::max(1, region.width / block), std::max(1, region.height / block)), 0, 0,
                 cv::INTER_AREA);
      cv::resize(small, roi, region.size(), 0, 0, cv::INTER_NEAREST);
      break;
    }
    case ReplaceMethod::kSolid:
    case ReplaceMethod::kSynthesized:  // never reaches here; the pipeline renders those
      roi.setTo(cv::Scalar(128, 128, 128));
      break;
  }
}

}  // namespace veil::engine::internal
