#include "eval_attack.h"

#include <algorithm>
#include <numeric>
#include <random>

#include <opencv2/core.hpp>

namespace veil::cli {
namespace {

cv::Mat Rows(const std::vector<engine::Descriptor>& v) {
  cv::Mat m(static_cast<int>(v.size()), 128, CV_64F);
  for (int i = 0; i < m.rows; ++i)
    for (int k = 0; k < 128; ++k) m.at<double>(i, k) = v[i][k];
  return m;
}

cv::Mat Take(const cv::Mat& m, const std::vector<int>& rows) {
  cv::Mat out(static_cast<int>(rows.size()), m.cols, m.type());
  for (size_t i = 0; i < rows.size(); ++i) m.row(rows[i]).copyTo(out.row(static_cast<int>(i)));
  return out;
}

// Ridge regression y ~ mean_y + (x - mean_x) w, the intercept unpenalized: the data are centred and
// the ridge is `scale` times the mean diagonal of the centred x'x.
struct Ridge {
  cv::Mat mean_x, mean_y, w;
  Ridge(const cv::Mat& x, const cv::Mat& y, double scale) {
    cv::reduce(x, mean_x, 0, cv::REDUCE_AVG);
    cv::reduce(y, mean_y, 0, cv::REDUCE_AVG);
    const cv::Mat xc = x - cv::repeat(mean_x, x.rows, 1), yc = y - cv::repeat(mean_y, y.rows, 1);
    cv::Mat gram = xc.t() * xc;
    gram += scale * cv::trace(gram)[0] / gram.rows * cv::Mat::eye(gram.rows, gram.cols, CV_64F);
    cv::solve(gram, xc.t() * yc, w, cv::DECOMP_CHOLESKY);
  }
  cv::Mat Predict(const cv::Mat& x) const { return (x - cv::repeat(mean_x, x.rows, 1)) * w + cv::repeat(mean_y, x.rows, 1); }
};

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
  const cv::Mat x = Rows(train_anonymized), y = Rows(train_original);
  // The attacker picks its ridge strength by 5-fold cross-validation on its own pairs (a seeded
  // shuffle; the squared error of the guesses), the stronger ridge on ties, then refits on all.
  std::vector<int> order(x.rows);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(20261201));
  const int folds = 5;
  double best_scale = 0, best_error = 0;
  for (double scale : {10.0, 1.0, 1e-1, 1e-2, 1e-3}) {  // strongest first: ties keep it
    double error = 0;
    for (int f = 0; f < folds; ++f) {
      std::vector<int> fit, held;
      for (int i = 0; i < x.rows; ++i) (i % folds == f ? held : fit).push_back(order[i]);
      const Ridge r(Take(x, fit), Take(y, fit), scale);
      error += cv::norm(r.Predict(Take(x, held)), Take(y, held), cv::NORM_L2SQR);
    }
    if (best_scale == 0 || error < best_error) best_error = error, best_scale = scale;
  }
  return RankOne(Ridge(x, y, best_scale).Predict(Rows(test_anonymized)), Rows(test_original));
}

}  // namespace veil::cli
