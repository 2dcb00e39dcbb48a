#include "veil/engine/aligner.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

namespace veil::engine {
namespace {

// dlib's mean face shape for landmarks 17..67, in [0, 1] (dlib/image_transforms/interpolation.h).
constexpr double kMeanFaceX[51] = {
    0.000213256, 0.0752622, 0.18113,  0.29077,  0.393397, 0.586856, 0.689483, 0.799124, 0.904991, 0.98004,
    0.490127,    0.490127,  0.490127, 0.490127, 0.36688,  0.426036, 0.490127, 0.554217, 0.613373, 0.121737,
    0.187122,    0.265825,  0.334606, 0.260918, 0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751,
    0.719335,    0.254149,  0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127,    0.423532,  0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874, 0.553364, 0.490127,
    0.42689};
constexpr double kMeanFaceY[51] = {
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891, 0.0187482, 0.038915, 0.106454,
    0.203352, 0.307009, 0.409805,  0.515625,  0.587326,  0.609345,  0.628106,  0.609345,  0.587326, 0.216423,
    0.178758, 0.179852, 0.231733,  0.245099,  0.244077,  0.231733,  0.179852,  0.178758,  0.216423, 0.244077,
    0.245099, 0.780233, 0.745405,  0.727388,  0.742578,  0.727388,  0.745405,  0.780233,  0.864805, 0.902192,
    0.909281, 0.902192, 0.864805,  0.784792,  0.778746,  0.785343,  0.778746,  0.784792,  0.824182, 0.831803,
    0.824182};

cv::Point2f Apply(const cv::Matx23d& m, const cv::Point2f& p) {
  return {static_cast<float>(m(0, 0) * p.x + m(0, 1) * p.y + m(0, 2)),
          static_cast<float>(m(1, 0) * p.x + m(1, 1) * p.y + m(1, 2))};
}

}  // namespace

std::array<cv::Point2f, 5> FivePointsFrom68(const std::array<cv::Point2f, 68>& lm) {
  cv::Point2f left(0, 0), right(0, 0);
  for (int i = 36; i < 42; ++i) left += lm[i];
  for (int i = 42; i < 48; ++i) right += lm[i];
  return {left * (1.0f / 6), right * (1.0f / 6), lm[30], lm[48], lm[54]};
}

float FaceTurn(const Face& face) {
  if (!face.has_landmarks) return 0.5f;
  const std::array<cv::Point2f, 5> five = FivePointsFrom68(face.landmarks);
  cv::Point2f axis = five[1] - five[0];
  const float norm = std::hypot(axis.x, axis.y);
  if (!(norm > 1e-6f)) return 0.5f;
  axis *= 1.0f / norm;
  auto along = [&](const cv::Point2f& p) { return p.dot(axis); };
  const float left = along(face.landmarks[0]), right = along(face.landmarks[16]);
  if (!(right - left > 1e-6f)) return 0.5f;
  return std::clamp((along(face.landmarks[30]) - left) / (right - left), 0.0f, 1.0f);
}

cv::Matx23d EstimateSimilarity(const std::vector<cv::Point2f>& from, const std::vector<cv::Point2f>& to) {
  CV_Assert(from.size() == to.size() && from.size() >= 2);
  const double n = static_cast<double>(from.size());
  double mx = 0, my = 0, qx = 0, qy = 0;
  for (size_t i = 0; i < from.size(); ++i) {
    mx += from[i].x, my += from[i].y, qx += to[i].x, qy += to[i].y;
  }
  mx /= n, my /= n, qx /= n, qy /= n;
  double sxx = 0, a = 0, b = 0;
  for (size_t i = 0; i < from.size(); ++i) {
    const double px = from[i].x - mx, py = from[i].y - my, tx = to[i].x - qx, ty = to[i].y - qy;
    sxx += px * px + py * py;
    a += px * tx + py * ty;
    b += px * ty - py * tx;
  }
  if (sxx <= 0) return cv::Matx23d(1, 0, qx - mx, 0, 1, qy - my);
  a /= sxx, b /= sxx;
  return cv::Matx23d(a, -b, qx - (a * mx - b * my), b, a, qy - (b * mx + a * my));
}

Aligner::Aligner(AlignerParams params) : params_(params) {
  const double s = params_.output_size, p = params_.padding;
  for (int i = 0; i < 51; ++i) {
    template_.emplace_back(static_cast<float>((kMeanFaceX[i] + p) / (1 + 2 * p) * s),
                           static_cast<float>((kMeanFaceY[i] + p) / (1 + 2 * p) * s));
  }
}

StatusOr<AlignedFace> Aligner::Align(const cv::Mat& image, const Face& face) const {
  if (image.empty()) return InvalidArgumentError("image is empty");
  if (!face.has_landmarks) return InvalidArgumentError("face has no landmarks to align");
  if (params_.output_size < 8 || params_.output_size > 4096) return InvalidArgumentError("output_size must be in [8, 4096]");
  const std::vector<cv::Point2f> from(face.landmarks.begin() + 17, face.landmarks.end());
  AlignedFace out;
  out.crop_from_image = EstimateSimilarity(from, template_);
  cv::invertAffineTransform(out.crop_from_image, out.image_from_crop);
  const cv::Size size(params_.output_size, params_.output_size);
  cv::warpAffine(image, out.image, out.crop_from_image, size, cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  for (int i = 0; i < 68; ++i) out.landmarks[i] = Apply(out.crop_from_image, face.landmarks[i]);

  // Mask: the jaw line plus the eyebrows raised towards the forehead, filled, eroded and blurred
  // so that it reaches 0 inside the outline (a pasted face then has no visible edge).
  const cv::Point2f eyes = (out.landmarks[39] + out.landmarks[42]) * 0.5f;
  const cv::Point2f up = eyes - out.landmarks[8];
  std::vector<cv::Point> outline;
  for (int i = 0; i <= 16; ++i) outline.emplace_back(out.landmarks[i]);
  for (int i = 26; i >= 17; --i) outline.emplace_back(out.landmarks[i] + up * 0.25f);
  std::vector<cv::Point> hull;
  cv::convexHull(outline, hull);
  cv::Mat mask = cv::Mat::zeros(size, CV_32FC1);
  cv::fillConvexPoly(mask, hull, cv::Scalar(1.0));
  const int feather = std::max(1, static_cast<int>(std::lround(params_.mask_feather * params_.output_size)));
  cv::erode(mask, mask, cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(feather | 1, feather | 1)));
  cv::GaussianBlur(mask, out.mask, cv::Size(2 * feather + 1, 2 * feather + 1), feather / 3.0);
  return out;
}

Status Aligner::PasteBack(const cv::Mat& rendered, const AlignedFace& aligned, cv::Mat& image) const {
  if (rendered.size() != aligned.mask.size() || rendered.type() != image.type()) {
    return InvalidArgumentError("rendered face must be output_size x output_size and of the image's type");
  }
  // The crop's footprint in the image, clipped; warp only that region.
  std::vector<cv::Point2f> corners;
  const float s = static_cast<float>(rendered.cols);
  for (const cv::Point2f c : {cv::Point2f(0, 0), cv::Point2f(s, 0), cv::Point2f(0, s), cv::Point2f(s, s)}) {
    corners.push_back(Apply(aligned.image_from_crop, c));
  }
  const cv::Rect roi = cv::boundingRect(corners) & cv::Rect(0, 0, image.cols, image.rows);
  if (roi.empty()) return Status::Ok();
  cv::Matx23d m = aligned.image_from_crop;
  m(0, 2) -= roi.x;
  m(1, 2) -= roi.y;
  cv::Mat face, alpha;
  cv::warpAffine(rendered, face, m, roi.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  cv::warpAffine(aligned.mask, alpha, m, roi.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar(0));
  cv::Mat target = image(roi), face_f, target_f, alpha_c;
  face.convertTo(face_f, CV_32F);
  target.convertTo(target_f, CV_32F);
  std::vector<cv::Mat> channels(image.channels(), alpha);
  cv::merge(channels, alpha_c);
  cv::Mat blended = face_f.mul(alpha_c) + target_f.mul(cv::Scalar::all(1.0) - alpha_c);
  blended.convertTo(target, image.type());
  return Status::Ok();
}

}  // namespace veil::engine
