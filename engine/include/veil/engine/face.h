// A detected face: the result type of FaceDetector::Detect, in image pixel coordinates.
#pragma once

#include <array>

#include <opencv2/core.hpp>

namespace veil::engine {

struct Face {
  cv::Rect2f box;                            // detector box (x, y, width, height), pixels
  float score = 0;                           // detector confidence in [0, 1]
  std::array<cv::Point2f, 68> landmarks{};   // iBUG 300-W 68-point layout (0-16 jaw, 36-41 / 42-47 eyes, ...)
  std::array<cv::Point2f, 5> landmarks5{};   // derived: eye centres (36-41, 42-47: image left, right in an
                                             // upright face), nose tip, mouth corners (48, 54)
  bool has_landmarks = false;
};

// The five points derived from 68: mean of 36-41, mean of 42-47, 30, 48, 54.
std::array<cv::Point2f, 5> FivePointsFrom68(const std::array<cv::Point2f, 68>& landmarks);

// How far a face is turned left or right, from its 68 landmarks: where the nose tip (30) lies
// between the jaw's ends (0 and 16), measured along the line through the eye centres (so a tilted
// head reads the same). 0.5 faces the camera; it falls towards 0 as the face turns to the image's
// left and rises towards 1 as it turns right (a full profile: about 0.1 or 0.9). 0.5 for a face
// without landmarks or with a degenerate jaw line.
float FaceTurn(const Face& face);

}  // namespace veil::engine
