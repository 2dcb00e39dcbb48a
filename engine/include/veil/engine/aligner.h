// Face alignment: a similarity transform (rotation, uniform scale, translation) that maps a face's
// landmarks onto a canonical template, its inverse, and a soft face mask in crop coordinates.
//
// The template is dlib's mean face (landmarks 17-67) with dlib's chip padding, i.e. the chips the
// dlib ResNet descriptor was trained on: output_size 150 and padding 0.25 reproduce dlib's
// get_face_chip_details(shape, 150, 0.25). The generator uses the same template at about 128.
//
//   veil::engine::Aligner aligner({.output_size = 150});
//   auto aligned = aligner.Align(bgr, face);      // crop, transforms, mask
//   ... render a new face into aligned->image ...
//   aligner.PasteBack(rendered, *aligned, bgr);   // blends through the soft mask: no seam
#pragma once

#include <array>
#include <vector>

#include <opencv2/core.hpp>

#include "veil/engine/face.h"
#include "veil/status.h"

namespace veil::engine {

struct AlignerParams {
  int output_size = 150;      // side of the square crop, pixels
  float padding = 0.25f;      // margin around the mean face, as a fraction of its extent (dlib: 0.25)
  float mask_feather = 0.1f;  // width of the mask's soft edge, as a fraction of output_size
};

struct AlignedFace {
  cv::Mat image;                          // output_size x output_size, same type as the input image
  cv::Matx23d crop_from_image;            // image pixel -> crop pixel
  cv::Matx23d image_from_crop;            // crop pixel -> image pixel (the inverse)
  cv::Mat mask;                           // CV_32FC1, output_size^2: 1 on the face, falling smoothly to 0
  std::array<cv::Point2f, 68> landmarks;  // the face's landmarks in crop coordinates
};

class Aligner {
 public:
  explicit Aligner(AlignerParams params = {});

  // InvalidArgument when the face has no landmarks or the image is empty.
  StatusOr<AlignedFace> Align(const cv::Mat& image, const Face& face) const;

  // Blends `rendered` (a crop of size output_size, type of `image`) into `image` through the mask.
  Status PasteBack(const cv::Mat& rendered, const AlignedFace& aligned, cv::Mat& image) const;

  // The 51 template points (landmarks 17-67) in crop pixels.
  const std::vector<cv::Point2f>& template_points() const { return template_; }
  const AlignerParams& params() const { return params_; }

 private:
  AlignerParams params_;
  std::vector<cv::Point2f> template_;
};

// Least-squares similarity transform (no reflection) mapping `from` onto `to` (Umeyama 1991).
cv::Matx23d EstimateSimilarity(const std::vector<cv::Point2f>& from, const std::vector<cv::Point2f>& to);

}  // namespace veil::engine
