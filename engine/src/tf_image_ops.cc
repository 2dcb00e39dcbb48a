#include "tf_image_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace veil::engine {

cv::Mat SquareResizeTf(const cv::Mat& rgb, const cv::Rect& roi, bool centered, int out) {
  CV_Assert(rgb.type() == CV_8UC3 && out > 0 && roi.width > 0 && roi.height > 0);
  CV_Assert((roi & cv::Rect(0, 0, rgb.cols, rgb.rows)) == roi);
  const int side = std::max(roi.width, roi.height);
  const int diff = side - std::min(roi.width, roi.height);
  const int before = centered ? diff - static_cast<int>(std::lround(diff * 0.5)) : 0;
  const int pad_top = roi.height < roi.width ? before : 0;
  const int pad_left = roi.width < roi.height ? before : 0;

  // Value of the padded square at integer (y, x), per channel.
  auto at = [&](int y, int x, int c) -> float {
    const int sy = y - pad_top, sx = x - pad_left;
    if (sy < 0 || sx < 0 || sy >= roi.height || sx >= roi.width) return 0.0f;
    return rgb.ptr<uint8_t>(roi.y + sy)[3 * (roi.x + sx) + c];
  };

  const float scale = static_cast<float>(side) / static_cast<float>(out);
  std::vector<int> x0(out), x1(out);
  std::vector<float> lx(out);
  for (int x = 0; x < out; ++x) {
    const float in = static_cast<float>(x) * scale;
    x0[x] = static_cast<int>(std::floor(in));
    x1[x] = std::min(x0[x] + 1, side - 1);
    lx[x] = in - static_cast<float>(x0[x]);
  }
  cv::Mat dst(out, out, CV_32FC3);
  for (int y = 0; y < out; ++y) {
    const float in = static_cast<float>(y) * scale;
    const int y0 = static_cast<int>(std::floor(in));
    const int y1 = std::min(y0 + 1, side - 1);
    const float ly = in - static_cast<float>(y0);
    float* row = dst.ptr<float>(y);
    for (int x = 0; x < out; ++x) {
      for (int c = 0; c < 3; ++c) {
        const float tl = at(y0, x0[x], c), tr = at(y0, x1[x], c);
        const float bl = at(y1, x0[x], c), br = at(y1, x1[x], c);
        const float top = tl + (tr - tl) * lx[x];
        const float bottom = bl + (br - bl) * lx[x];
        row[3 * x + c] = top + (bottom - top) * ly;
      }
    }
  }
  return dst;
}

}  // namespace veil::engine
