// A detected face: the result type of FaceDetector::Detect, in image pixel coordinates.
#pragma once

#include <array>

#include <opencv2/core.hpp>

namespace veil::engine {

struct Face {
  cv::Rect2f box;                            // detector box (x, y, width, height), pixels
  float score = 0;                           // detector confidence in [0, 1]
  std::array<cv::Point2f, 68> landmarks{};   // iBUG 300-W 68-point layout (0-16 jaw, 36-41 / 42-47 eyes, ...)
  std::array<cv::Point2f, 5> landmarks5{};   // derived: eye centres (image left, right), nose tip, mouth corners
  bool has_landmarks = false;
};

// The five points derived from 68: mean of 36-41, mean of 42-47, 30, 48, 54.
std::array<cv::Point2f, 5> FivePointsFrom68(const std::array<cv::Point2f, 68>& landmarks);

}  // namespace veil::engine
