#include "eval_detail.h"

#include <opencv2/imgproc.hpp>

namespace veil::cli {

double DetailEnergy(const cv::Mat& bgr) {
  const int m = bgr.cols * 3 / 16;
  cv::Mat grey, lap;
  cv::cvtColor(bgr(cv::Rect(m, m, bgr.cols - 2 * m, bgr.rows - 2 * m)), grey, cv::COLOR_BGR2GRAY);
  cv::Laplacian(grey, lap, CV_64F);
  return cv::mean(lap.mul(lap))[0];
}

}  // namespace veil::cli
