// Face detection with 68 landmarks, in the style of OpenCV's FaceDetectorYN.
//
//   auto detector = veil::engine::FaceDetector::Create({});          // SSD, models from the default dir
//   if (!detector.ok()) return Fail(detector.status());
//   auto faces = (*detector)->Detect(bgr);                            // StatusOr<std::vector<Face>>
//
// Two detectors, ported from face-api 1.7.15: SSD MobileNet v1 (accurate; photos) and the Tiny Face
// Detector (about 4x faster; camera). Landmarks come from face-api's 68-point net run on each box.
// Weights are loaded once in Create(); Detect() is not thread safe (one detector per thread).
// An image without faces gives an empty vector, not an error.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "veil/engine/face.h"
#include "veil/status.h"

namespace veil::engine {

enum class DetectorKind { kSsd, kTiny };

struct FaceDetectorParams {
  std::string models_dir;        // empty: $VEIL_FACE_API_DIR, else the build-time default (see runtime.h)
  DetectorKind kind = DetectorKind::kSsd;
  float score_threshold = 0.5f;  // face-api's default for both detectors
  int min_face_size = 0;         // boxes narrower or lower than this many pixels are dropped
  int max_input_side = 4096;     // larger images are downscaled (INTER_AREA) before detection;
                                 // results are in the original image's coordinates
  int tiny_input_size = 416;     // tiny detector's network input, a multiple of 32 (face-api: 416)
  bool with_landmarks = true;    // run the 68-point net on each face
  bool verify_checksums = true;  // model files must match the SHA-256 pinned for face-api 1.7.15
};

// A box as the detector network produced it, before landmarks (used by the golden tests).
struct FaceBox {
  cv::Rect2f box;
  float score = 0;
};

class FaceDetector {
 public:
  static StatusOr<std::unique_ptr<FaceDetector>> Create(const FaceDetectorParams& params);
  virtual ~FaceDetector() = default;

  // Faces in an 8-bit BGR (or gray / BGRA) image, highest score first.
  virtual StatusOr<std::vector<Face>> Detect(const cv::Mat& image) = 0;

  // The detector alone: boxes in image coordinates after NMS, highest score first.
  virtual StatusOr<std::vector<FaceBox>> DetectBoxes(const cv::Mat& image) = 0;

  // The 68-point net on integer crops of the image (face-api's preprocessing: crop, centred zero
  // padding to a square, TF bilinear resize to 112). Returns landmarks in image coordinates.
  // Crops are clipped to the image; all crops run as one batch.
  virtual StatusOr<std::vector<std::array<cv::Point2f, 68>>> LandmarksForCrops(const cv::Mat& image,
                                                                              const std::vector<cv::Rect>& crops) = 0;

  virtual const FaceDetectorParams& params() const = 0;
};

// Intersection over union of two boxes (0 when both are empty).
float BoxIou(const cv::Rect2f& a, const cv::Rect2f& b);

// Faces lying on their side or upside down as well: Detect() on the image as it is and turned by
// 90, 180 and 270 degrees, boxes and landmarks mapped back to the image. For photos whose pixels lie
// sideways with no orientation tag (scanners, some cameras and editors), where Detect() alone
// misses most faces, and for faces lying down. The turn with the most finds scoring at least
// kQuarterTurnConfident is taken as the photo's upright (the image as it is on a tie, and when no
// find scores that high) and its finds stand; the other turns add, best first, finds that overlap
// no face kept so far (IoU above kQuarterTurnSameFaceIou). The upright is chosen per photo, not
// per face, because scores do not tell which turn shows a face upright: the SSD finds some faces
// upside down with 0.97, and the 68-point net, which always draws an upright face, then places
// their landmarks wrongly. So a face lying down in an upright photo that Detect() finds as it is
// keeps Detect()'s landmarks, which may be misplaced. Finds of the two turns that are neither the
// image as it is nor the upright need kQuarterTurnScoreMargin above the score threshold: more
// passes give a false find more chances (the two seen in tests scored 0.52, the lowest real face
// found turned 0.62). Only quarter turns: a face at 45 degrees is left to the detector's own
// tolerance. Highest score first. Four detector passes: about 4x Detect()'s time.
StatusOr<std::vector<Face>> DetectAtQuarterTurns(FaceDetector& detector, const cv::Mat& image);
inline constexpr float kQuarterTurnSameFaceIou = 0.3f;
inline constexpr float kQuarterTurnScoreMargin = 0.05f;
inline constexpr float kQuarterTurnConfident = 0.9f;

}  // namespace veil::engine
