// Fine detail, the measure of blur: veil eval's DetailEnergy (tools/eval_detail.h, OpenCV) and the
// GAN trainer's FineDetailEnergy (engine/src/identity/fine_detail.h, LibTorch) give one number, so
// a training run's hold-out log and veil eval's detail_vs_original can be compared.
// (DOCTEST_CHECK: LibTorch defines its own CHECK.)
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <vector>

#include <opencv2/imgproc.hpp>

#include "eval_detail.h"
#include "identity/fine_detail.h"

namespace {

using veil::cli::DetailEnergy;
using veil::engine::identity::FineDetailEnergy;

torch::Tensor AsTensor(const cv::Mat& bgr) {
  return torch::from_blob(bgr.data, {1, bgr.rows, bgr.cols, 3}, torch::kUInt8).clone();
}

TEST_CASE("a flat crop has no fine detail") {
  const cv::Mat flat(128, 128, CV_8UC3, cv::Scalar(117, 90, 200));
  DOCTEST_CHECK(DetailEnergy(flat) == 0.0);
  const torch::Tensor e = FineDetailEnergy(AsTensor(flat).expand({2, 128, 128, 3}).contiguous());
  REQUIRE(e.sizes() == torch::IntArrayRef({2}));
  DOCTEST_CHECK(e.abs().max().item<double>() == 0.0);
}

TEST_CASE("a black and white checkerboard has the Laplacian energy (4 x 255)^2 everywhere, borders included") {
  cv::Mat board(128, 128, CV_8UC3);
  board.forEach<cv::Vec3b>([](cv::Vec3b& p, const int* pos) { p = cv::Vec3b::all((pos[0] + pos[1]) % 2 * 255); });
  DOCTEST_CHECK(DetailEnergy(board) == doctest::Approx(1020.0 * 1020.0).epsilon(1e-12));
  DOCTEST_CHECK(FineDetailEnergy(AsTensor(board)).item<double>() == doctest::Approx(1020.0 * 1020.0).epsilon(1e-12));
}

TEST_CASE("the trainer's fine detail equals veil eval's, image by image and in a batch") {
  cv::RNG rng(34);
  for (const int side : {128, 150, 97}) {
    std::vector<torch::Tensor> batch;
    std::vector<double> expected;
    for (int k = 0; k < 3; ++k) {
      cv::Mat img(side, side, CV_8UC3);
      rng.fill(img, cv::RNG::UNIFORM, 0, 256);
      if (k == 1) cv::GaussianBlur(img, img, cv::Size(5, 5), 1.2);
      if (k == 2) img.forEach<cv::Vec3b>([](cv::Vec3b& p, const int* pos) { p[1] = static_cast<uchar>(pos[0] * 2); });
      expected.push_back(DetailEnergy(img));
      batch.push_back(AsTensor(img));
      DOCTEST_CHECK(FineDetailEnergy(batch.back()).item<double>() == doctest::Approx(expected.back()).epsilon(1e-12));
    }
    const torch::Tensor e = FineDetailEnergy(torch::cat(batch));
    for (size_t k = 0; k < expected.size(); ++k) {
      DOCTEST_CHECK(e[static_cast<int64_t>(k)].item<double>() == doctest::Approx(expected[k]).epsilon(1e-12));
    }
    DOCTEST_CHECK(expected[1] < 0.5 * expected[0]);  // the blurred copy of noise holds less detail
  }
}

TEST_CASE("the trainer's fine detail refuses what is not N x H x W x 3 uint8") {
  DOCTEST_CHECK_THROWS(FineDetailEnergy(torch::zeros({1, 128, 128, 3})));
  DOCTEST_CHECK_THROWS(FineDetailEnergy(torch::zeros({128, 128, 3}, torch::kUInt8)));
}

}  // namespace
