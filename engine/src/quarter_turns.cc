// Faces at every quarter turn: the detector on the image as it is and turned by 90, 180 and 270
// degrees, the turned finds mapped back; the photo's upright turn chosen, the others adding the
// faces it missed.
#include <algorithm>
#include <array>
#include <opencv2/core.hpp>

#include "veil/engine/face_detector.h"

namespace veil::engine {
namespace {

// The point of the image that a point of the image turned `turn` quarter turns clockwise shows.
// Continuous coordinates: pixel (i, j) covers [i, i + 1) x [j, j + 1), as the detector's boxes do.
cv::Point2f Unturn(const cv::Point2f& p, int turn, const cv::Size& size) {
  const float w = static_cast<float>(size.width), h = static_cast<float>(size.height);
  switch (turn) {
    case 1: return {p.y, h - p.x};      // turned clockwise: its top left is the image's bottom left
    case 2: return {w - p.x, h - p.y};
    case 3: return {w - p.y, p.x};      // turned anticlockwise: its top left is the image's top right
    default: return p;
  }
}

Face UnturnFace(const Face& f, int turn, const cv::Size& size) {
  Face out = f;
  const cv::Point2f a = Unturn(f.box.tl(), turn, size), b = Unturn(f.box.br(), turn, size);
  out.box = cv::Rect2f(cv::Point2f(std::min(a.x, b.x), std::min(a.y, b.y)),
                       cv::Point2f(std::max(a.x, b.x), std::max(a.y, b.y)));
  for (auto& p : out.landmarks) p = Unturn(p, turn, size);
  for (auto& p : out.landmarks5) p = Unturn(p, turn, size);
  return out;
}

}  // namespace

StatusOr<std::vector<Face>> DetectAtQuarterTurns(FaceDetector& detector, const cv::Mat& image) {
  // Finds of each turn, in the image's coordinates.
  std::array<std::vector<Face>, 4> finds;
  constexpr cv::RotateFlags kTurns[] = {cv::ROTATE_90_CLOCKWISE, cv::ROTATE_180, cv::ROTATE_90_COUNTERCLOCKWISE};
  for (int turn = 0; turn <= 3; ++turn) {
    cv::Mat view;  // a buffer of its own: rotating into one that shares the image's would turn the image
    if (turn == 0 || image.empty()) {
      view = image;
    } else {
      cv::rotate(image, view, kTurns[turn - 1]);
    }
    VEIL_ASSIGN_OR_RETURN(std::vector<Face> found, detector.Detect(view));
    for (const Face& f : found) finds[turn].push_back(turn == 0 ? f : UnturnFace(f, turn, image.size()));
  }
  // The photo's own upright: the turn with the most confident finds, the image as it is on a tie.
  auto confident = [](const std::vector<Face>& faces) {
    return std::count_if(faces.begin(), faces.end(), [](const Face& f) { return f.score >= kQuarterTurnConfident; });
  };
  int upright = 0;
  for (int turn = 1; turn <= 3; ++turn) {
    if (confident(finds[turn]) > confident(finds[upright])) upright = turn;
  }
  // Its finds stand as they are. The others add faces it missed, best first; one that overlaps a
  // face already kept is that face seen again, sideways, its landmarks guessed. The image as it
  // is keeps Detect()'s threshold (every face Detect() alone finds is kept or overlaps a kept
  // one); the two remaining turns need the margin.
  std::vector<Face> faces = finds[upright];
  std::vector<Face> more;
  const float margin_score = detector.params().score_threshold + kQuarterTurnScoreMargin;
  for (int turn = 0; turn <= 3; ++turn) {
    if (turn == upright) continue;
    for (const Face& f : finds[turn]) {
      if (turn == 0 || f.score >= margin_score) more.push_back(f);
    }
  }
  std::stable_sort(more.begin(), more.end(), [](const Face& a, const Face& b) { return a.score > b.score; });
  for (const Face& f : more) {
    const bool seen = std::any_of(faces.begin(), faces.end(), [&](const Face& k) {
      return BoxIou(k.box, f.box) > kQuarterTurnSameFaceIou;
    });
    if (!seen) faces.push_back(f);
  }
  std::stable_sort(faces.begin(), faces.end(), [](const Face& a, const Face& b) { return a.score > b.score; });
  return faces;
}

}  // namespace veil::engine
