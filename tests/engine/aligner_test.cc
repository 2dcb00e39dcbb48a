// Alignment: the similarity transform, its inverse, and the soft mask.
#include <doctest/doctest.h>

#include <cmath>
#include <opencv2/imgproc.hpp>

#include "veil/engine/aligner.h"

namespace veil::engine {
namespace {

// A face whose 68 landmarks are the template mapped by a known similarity transform.
Face FaceFromTemplate(const Aligner& aligner, const cv::Matx23d& image_from_crop) {
  Face f;
  f.has_landmarks = true;
  // Jaw points: spread below the eyes so the mask has an outline.
  const auto& t = aligner.template_points();
  const float s = static_cast<float>(aligner.params().output_size);
  for (int i = 0; i <= 16; ++i) {
    const double a = CV_PI * (1.0 - i / 16.0);
    f.landmarks[i] = cv::Point2f(static_cast<float>(0.5 * s + 0.33 * s * std::cos(a)),
                                 static_cast<float>(0.45 * s + 0.4 * s * std::sin(a) * (i > 0 && i < 16 ? 1 : 0.2)));
  }
  for (int i = 17; i < 68; ++i) f.landmarks[i] = t[i - 17];
  for (auto& p : f.landmarks) {
    p = cv::Point2f(static_cast<float>(image_from_crop(0, 0) * p.x + image_from_crop(0, 1) * p.y + image_from_crop(0, 2)),
                    static_cast<float>(image_from_crop(1, 0) * p.x + image_from_crop(1, 1) * p.y + image_from_crop(1, 2)));
  }
  return f;
}

TEST_CASE("the similarity estimate recovers a known rotation, scale and shift") {
  const double angle = 0.3, scale = 2.5;
  const cv::Matx23d m(scale * std::cos(angle), -scale * std::sin(angle), 40, scale * std::sin(angle),
                      scale * std::cos(angle), -12);
  std::vector<cv::Point2f> from, to;
  for (int i = 0; i < 10; ++i) {
    from.emplace_back(static_cast<float>(i * 7 % 13), static_cast<float>(i * i % 11));
    const auto& p = from.back();
    to.emplace_back(static_cast<float>(m(0, 0) * p.x + m(0, 1) * p.y + m(0, 2)),
                    static_cast<float>(m(1, 0) * p.x + m(1, 1) * p.y + m(1, 2)));
  }
  const cv::Matx23d e = EstimateSimilarity(from, to);
  for (int r = 0; r < 2; ++r) {
    for (int c = 0; c < 3; ++c) CHECK(e(r, c) == doctest::Approx(m(r, c)).epsilon(1e-4));
  }
}

TEST_CASE("aligning maps the landmarks onto the template, and the inverse maps them back") {
  Aligner aligner({.output_size = 128});
  const cv::Matx23d image_from_crop(1.8 * std::cos(0.2), -1.8 * std::sin(0.2), 300, 1.8 * std::sin(0.2),
                                    1.8 * std::cos(0.2), 200);
  const Face face = FaceFromTemplate(aligner, image_from_crop);
  const cv::Mat image(800, 800, CV_8UC3, cv::Scalar(90, 120, 150));
  auto a = aligner.Align(image, face);
  REQUIRE(a.ok());
  CHECK(a->image.size() == cv::Size(128, 128));
  for (int i = 17; i < 68; ++i) {
    CHECK(cv::norm(a->landmarks[i] - aligner.template_points()[i - 17]) < 1e-2);
  }
  for (int r = 0; r < 2; ++r) {
    for (int c = 0; c < 3; ++c) CHECK(a->image_from_crop(r, c) == doctest::Approx(image_from_crop(r, c)).epsilon(1e-4));
  }
}

TEST_CASE("the mask is 1 on the face, 0 at the crop's corners, smooth in between") {
  Aligner aligner({.output_size = 150});
  const Face face = FaceFromTemplate(aligner, cv::Matx23d(1, 0, 0, 0, 1, 0));
  auto a = aligner.Align(cv::Mat(150, 150, CV_8UC3, cv::Scalar::all(0)), face);
  REQUIRE(a.ok());
  double lo, hi;
  cv::minMaxLoc(a->mask, &lo, &hi);
  CHECK(lo >= 0.0);
  CHECK(hi <= 1.0 + 1e-6);
  CHECK(a->mask.at<float>(75, 75) > 0.99f);  // between the eyes and the mouth
  CHECK(a->mask.at<float>(0, 0) == 0.0f);
  CHECK(a->mask.at<float>(149, 149) == 0.0f);
  // No step: neighbouring pixels differ by less than 0.2 anywhere.
  cv::Mat dx, dy;
  cv::Sobel(a->mask, dx, CV_32F, 1, 0, 1);
  cv::Sobel(a->mask, dy, CV_32F, 0, 1, 1);
  double mx, my;
  cv::minMaxLoc(cv::abs(dx), nullptr, &mx);
  cv::minMaxLoc(cv::abs(dy), nullptr, &my);
  CHECK(mx < 0.2);
  CHECK(my < 0.2);
}

TEST_CASE("pasting the aligned crop back changes the image only where the mask is, and barely") {
  Aligner aligner({.output_size = 128});
  cv::Mat image(400, 400, CV_8UC3);
  cv::randu(image, 0, 255);
  cv::GaussianBlur(image, image, cv::Size(0, 0), 4);
  const Face face = FaceFromTemplate(aligner, cv::Matx23d(1.5, 0, 100, 0, 1.5, 80));
  auto a = aligner.Align(image, face);
  REQUIRE(a.ok());
  cv::Mat copy = image.clone();
  REQUIRE(aligner.PasteBack(a->image, *a, copy).ok());
  cv::Mat diff;
  cv::absdiff(copy, image, diff);
  double worst;
  cv::minMaxLoc(diff.reshape(1), nullptr, &worst);
  CHECK(worst <= 12);  // resampling twice, nothing more
  // A black face pasted back darkens the middle of the face but not the image corners.
  cv::Mat black(128, 128, CV_8UC3, cv::Scalar::all(0));
  copy = image.clone();
  REQUIRE(aligner.PasteBack(black, *a, copy).ok());
  const cv::Point2f centre = face.landmarks[30];
  CHECK(cv::norm(copy.at<cv::Vec3b>(cv::Point(centre))) < 1.0);
  CHECK(copy.at<cv::Vec3b>(0, 0) == image.at<cv::Vec3b>(0, 0));
  CHECK(copy.at<cv::Vec3b>(399, 399) == image.at<cv::Vec3b>(399, 399));
}

TEST_CASE("the turn reads 0.5 for a frontal face whatever its tilt, and moves towards 0 or 1 as the nose does") {
  Aligner aligner;
  const Face frontal = FaceFromTemplate(aligner, cv::Matx23d(2, 0, 40, 0, 2, 30));
  CHECK(FaceTurn(frontal) == doctest::Approx(0.5).epsilon(0.04));
  const double a = 30 * CV_PI / 180;
  const Face tilted = FaceFromTemplate(aligner, cv::Matx23d(2 * std::cos(a), -2 * std::sin(a), 200, 2 * std::sin(a), 2 * std::cos(a), 30));
  CHECK(FaceTurn(tilted) == doctest::Approx(FaceTurn(frontal)).epsilon(1e-3));
  // The nose tip slid towards the jaw's image-left end, along the eye line: the face turned left.
  Face left = tilted, right = tilted;
  const cv::Point2f towards0 = tilted.landmarks[0] - tilted.landmarks[16];
  left.landmarks[30] += towards0 * 0.35f;
  right.landmarks[30] -= towards0 * 0.35f;
  CHECK(FaceTurn(left) == doctest::Approx(FaceTurn(frontal) - 0.35).epsilon(0.01));
  CHECK(FaceTurn(right) == doctest::Approx(FaceTurn(frontal) + 0.35).epsilon(0.01));
  left.landmarks[30] += towards0;  // beyond the jaw: clamped
  CHECK(FaceTurn(left) == 0.0f);
  CHECK(FaceTurn(Face{}) == 0.5f);  // no landmarks
  Face collapsed = frontal;
  collapsed.landmarks[16] = collapsed.landmarks[0];
  CHECK(FaceTurn(collapsed) == 0.5f);
}

TEST_CASE("a face without landmarks cannot be aligned") {
  Aligner aligner;
  CHECK(aligner.Align(cv::Mat(10, 10, CV_8UC3), Face{}).status().code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace veil::engine
