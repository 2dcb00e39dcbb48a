#include "eval_attack.h"

#include <opencv2/core.hpp>

namespace veil::cli {
namespace {

// Rows of descriptors, with a constant 1 column when `bias`.
cv::Mat Rows(const std::vector<engine::Descriptor>& v, bool bias) {
  const int cols = 128 + (bias ? 1 : 0);
  cv::Mat m(static_cast<int>(v.size()), cols, CV_64F);
  for (int i = 0; i < m.rows; ++i) {
    for (int k = 0; k < 128; ++k) m.at<double>(i, k) = v[i][k];
    if (bias) m.at<double>(i, 128) = 1.0;
  }
  return m;
}

// Least squares x w ~ y with a ridge of `scale` times the mean diagonal of x'x.
cv::Mat Ridge(const cv::Mat& x, const cv::Mat& y, double scale) {
  cv::Mat gram = x.t() * x;
  gram += scale * cv::trace(gram)[0] / gram.rows * cv::Mat::eye(gram.rows, gram.cols, CV_64F);
  cv::Mat w;
  cv::solve(gram, x.t() * y, w, cv::DECOMP_CHOLESKY);
  return w;
}

// Fraction of rows of `guess` whose nearest row of `gallery` has the same index.
double RankOne(const cv::Mat& guess, const cv::Mat& gallery) {
  size_t hits = 0;
  for (int i = 0; i < guess.rows; ++i) {
    int best = -1;
    double best_d = 0;
    for (int j = 0; j < gallery.rows; ++j) {
      const double d = cv::norm(guess.row(i), gallery.row(j), cv::NORM_L2SQR);
      if (best < 0 || d < best_d) best_d = d, best = j;
    }
    hits += best == i;
  }
  return guess.rows == 0 ? 0.0 : static_cast<double>(hits) / guess.rows;
}

}  // namespace

std::optional<double> LinearAttackRankOne(const std::vector<engine::Descriptor>& train_anonymized,
                           const std::vector<engine::Descriptor>& train_original,
                           const std::vector<engine::Descriptor>& test_anonymized,
                           const std::vector<engine::Descriptor>& test_original) {
  if (train_anonymized.size() != train_original.size() || train_anonymized.size() < 10 ||
      test_anonymized.size() != test_original.size() || test_anonymized.empty()) {
    return std::nullopt;
  }
  const cv::Mat x = Rows(train_anonymized, true), y = Rows(train_original, false);
  // The attacker tunes its ridge strength on the last fifth of its own pairs, then refits on all.
  const int fit_rows = x.rows - x.rows / 5;
  double best_lambda = 0, best_rate = -1;
  for (double scale : {1e-3, 1e-2, 1e-1, 1.0, 10.0}) {
    const cv::Mat w = Ridge(x.rowRange(0, fit_rows), y.rowRange(0, fit_rows), scale);
    const double rate = RankOne(x.rowRange(fit_rows, x.rows) * w, y.rowRange(fit_rows, y.rows));
    if (rate > best_rate) best_rate = rate, best_lambda = scale;
  }
  return RankOne(Rows(test_anonymized, true) * Ridge(x, y, best_lambda), Rows(test_original, false));
}

}  // namespace veil::cli
