// The detection pipeline: face-api's pre-processing, the ported networks, box decoding and NMS.
#include "veil/engine/face_detector.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "image_util.h"
#include "nets/landmark68_net.h"
#include "nets/ssd_mobilenet_net.h"
#include "nets/tiny_face_detector_net.h"
#include "tf_image_ops.h"
#include "veil/engine/runtime.h"

namespace veil::engine {
namespace {

constexpr int kLandmarkBatch = 16;
constexpr int kSsdMaxResults = 100;
constexpr double kSsdIou = 0.5;

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Relative box (x0, y0, x1, y1) in [0, 1] of the image.
struct RelBox {
  double x0, y0, x1, y1;
  double score;
};

double Iou(const RelBox& a, const RelBox& b) {
  const double w = std::max(0.0, std::min(a.x1, b.x1) - std::max(a.x0, b.x0));
  const double h = std::max(0.0, std::min(a.y1, b.y1) - std::max(a.y0, b.y0));
  const double inter = w * h;
  return inter / ((a.x1 - a.x0) * (a.y1 - a.y0) + (b.x1 - b.x0) * (b.y1 - b.y0) - inter);
}

// face-api's computeReshapedDimensions: the image scaled so its longer side is `size`.
cv::Size2d Reshaped(int width, int height, int size) {
  const double scale = static_cast<double>(size) / std::max(width, height);
  return {std::round(width * scale), std::round(height * scale)};
}

class FaceDetectorImpl final : public FaceDetector {
 public:
  explicit FaceDetectorImpl(FaceDetectorParams params) : params_(std::move(params)) {}

  Status Load() {
    const std::filesystem::path dir = ResolveModelsDir(params_.models_dir);
    if (params_.kind == DetectorKind::kTiny) {
      VEIL_ASSIGN_OR_RETURN(auto w, TfjsWeights::Load(dir, "tiny_face_detector_model", params_.verify_checksums));
      VEIL_RETURN_IF_ERROR(tiny_->LoadFrom(w));
    } else {
      VEIL_ASSIGN_OR_RETURN(auto w, TfjsWeights::Load(dir, "ssd_mobilenetv1_model", params_.verify_checksums));
      VEIL_RETURN_IF_ERROR(ssd_->LoadFrom(w));
    }
    if (params_.with_landmarks) {
      VEIL_ASSIGN_OR_RETURN(auto w, TfjsWeights::Load(dir, "face_landmark_68_model", params_.verify_checksums));
      VEIL_RETURN_IF_ERROR(landmarks_->LoadFrom(w));
    }
    tiny_->eval();
    ssd_->eval();
    landmarks_->eval();
    return Status::Ok();
  }

  const FaceDetectorParams& params() const override { return params_; }

  StatusOr<std::vector<FaceBox>> DetectBoxes(const cv::Mat& image) override {
    return Guard<std::vector<FaceBox>>([&]() -> StatusOr<std::vector<FaceBox>> {
      VEIL_ASSIGN_OR_RETURN(cv::Mat rgb, ToRgb(image));
      double factor = 1.0;
      VEIL_ASSIGN_OR_RETURN(rgb, Limit(rgb, &factor));
      std::vector<FaceBox> boxes = BoxesOf(rgb);
      for (FaceBox& b : boxes) b.box = Scale(b.box, 1.0 / factor);
      return boxes;
    });
  }

  StatusOr<std::vector<Face>> Detect(const cv::Mat& image) override {
    return Guard<std::vector<Face>>([&]() -> StatusOr<std::vector<Face>> {
      VEIL_ASSIGN_OR_RETURN(cv::Mat rgb, ToRgb(image));
      double factor = 1.0;
      VEIL_ASSIGN_OR_RETURN(rgb, Limit(rgb, &factor));
      std::vector<FaceBox> boxes = BoxesOf(rgb);
      std::vector<Face> faces;
      std::vector<cv::Rect> crops;
      std::vector<size_t> with_crop;
      for (const FaceBox& b : boxes) {
        Face f;
        f.box = b.box;
        f.score = b.score;
        const cv::Rect crop = ClipAndFloor(b.box, rgb.cols, rgb.rows);
        if (params_.with_landmarks && crop.width > 0 && crop.height > 0) {
          crops.push_back(crop);
          with_crop.push_back(faces.size());
        }
        faces.push_back(f);
      }
      if (!crops.empty()) {
        const auto marks = LandmarksOf(rgb, crops);
        for (size_t i = 0; i < crops.size(); ++i) {
          Face& f = faces[with_crop[i]];
          f.landmarks = marks[i];
          f.landmarks5 = FivePointsFrom68(f.landmarks);
          f.has_landmarks = true;
        }
      }
      if (factor != 1.0) {
        for (Face& f : faces) {
          f.box = Scale(f.box, 1.0 / factor);
          for (auto& p : f.landmarks) p *= 1.0 / factor;
          for (auto& p : f.landmarks5) p *= 1.0 / factor;
        }
      }
      return faces;
    });
  }

  StatusOr<std::vector<std::array<cv::Point2f, 68>>> LandmarksForCrops(const cv::Mat& image,
                                                                      const std::vector<cv::Rect>& crops) override {
    using Result = std::vector<std::array<cv::Point2f, 68>>;
    return Guard<Result>([&]() -> StatusOr<Result> {
      if (!params_.with_landmarks) return FailedPreconditionError("detector was created with with_landmarks = false");
      VEIL_ASSIGN_OR_RETURN(cv::Mat rgb, ToRgb(image));
      std::vector<cv::Rect> clipped;
      for (const cv::Rect& c : crops) {
        const cv::Rect r = c & cv::Rect(0, 0, rgb.cols, rgb.rows);
        if (r.width <= 0 || r.height <= 0) return InvalidArgumentError("landmark crop lies outside the image");
        clipped.push_back(r);
      }
      return LandmarksOf(rgb, clipped);
    });
  }

 private:
  template <typename T, typename F>
  StatusOr<T> Guard(F&& body) {
    try {
      c10::InferenceMode guard;
      return body();
    } catch (const std::exception& e) {
      return InternalError(std::string("face detector failed: ") + e.what());
    }
  }

  StatusOr<cv::Mat> Limit(const cv::Mat& rgb, double* factor) const {
    const int side = std::max(rgb.cols, rgb.rows);
    if (params_.max_input_side <= 0 || side <= params_.max_input_side) return rgb;
    *factor = static_cast<double>(params_.max_input_side) / side;
    cv::Mat small;
    cv::resize(rgb, small, cv::Size(), *factor, *factor, cv::INTER_AREA);
    if (small.empty()) return InvalidArgumentError("image too small after downscaling");
    return small;
  }

  static cv::Rect2f Scale(const cv::Rect2f& r, double s) {
    return {static_cast<float>(r.x * s), static_cast<float>(r.y * s), static_cast<float>(r.width * s),
            static_cast<float>(r.height * s)};
  }

  std::vector<FaceBox> BoxesOf(const cv::Mat& rgb) {
    std::vector<RelBox> rel = params_.kind == DetectorKind::kTiny ? Tiny(rgb) : Ssd(rgb);
    std::vector<FaceBox> out;
    for (const RelBox& r : rel) {
      FaceBox b;
      b.box = cv::Rect2f(static_cast<float>(r.x0 * rgb.cols), static_cast<float>(r.y0 * rgb.rows),
                         static_cast<float>((r.x1 - r.x0) * rgb.cols), static_cast<float>((r.y1 - r.y0) * rgb.rows));
      b.score = static_cast<float>(r.score);
      if (b.box.width < params_.min_face_size || b.box.height < params_.min_face_size) continue;
      out.push_back(b);
    }
    return out;
  }

  std::vector<RelBox> Tiny(const cv::Mat& rgb) {
    const int size = params_.tiny_input_size;
    const cv::Mat input = SquareResizeTf(rgb, cv::Rect(0, 0, rgb.cols, rgb.rows), /*centered=*/false, size);
    torch::Tensor out = tiny_->forward(nets::ToNchw({input.ptr<float>()}, size, nets::TinyFaceDetectorNetImpl::kMeanRgb, 255.0f));
    const int64_t cells = out.size(2);
    // NCHW [1, 25, g, g] -> [g, g, 5 anchors, 5 values], as TF reshapes NHWC.
    torch::Tensor grid = out[0].permute({1, 2, 0}).reshape({cells, cells, 5, 5}).contiguous();
    const auto g = grid.accessor<float, 4>();
    const cv::Size2d reshaped = Reshaped(rgb.cols, rgb.rows, size);
    const double in_size = std::max(reshaped.width, reshaped.height);
    const double corr_x = in_size / reshaped.width, corr_y = in_size / reshaped.height;
    std::vector<RelBox> candidates;
    for (int64_t row = 0; row < cells; ++row) {
      for (int64_t col = 0; col < cells; ++col) {
        for (int a = 0; a < 5; ++a) {
          const double score = Sigmoid(g[row][col][a][4]);
          if (!(score > params_.score_threshold)) continue;
          const auto& anchor = nets::TinyFaceDetectorNetImpl::kAnchors[a];
          const double cx = ((col + Sigmoid(g[row][col][a][0])) / cells) * corr_x;
          const double cy = ((row + Sigmoid(g[row][col][a][1])) / cells) * corr_y;
          const double w = ((std::exp(g[row][col][a][2]) * anchor[0]) / cells) * corr_x;
          const double h = ((std::exp(g[row][col][a][3]) * anchor[1]) / cells) * corr_y;
          candidates.push_back({cx - w / 2, cy - h / 2, cx - w / 2 + w, cy - h / 2 + h, score});
        }
      }
    }
    // face-api's nonMaxSuppression: highest score first (stable for ties), drop IoU > 0.4.
    std::stable_sort(candidates.begin(), candidates.end(), [](const RelBox& a, const RelBox& b) { return a.score > b.score; });
    std::vector<RelBox> picked;
    std::vector<bool> gone(candidates.size(), false);
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (gone[i]) continue;
      picked.push_back(candidates[i]);
      for (size_t j = i + 1; j < candidates.size(); ++j) {
        if (!gone[j] && Iou(candidates[i], candidates[j]) > tiny_->options().iou_threshold()) gone[j] = true;
      }
    }
    return picked;
  }

  std::vector<RelBox> Ssd(const cv::Mat& rgb) {
    constexpr int size = nets::SsdMobilenetNetImpl::kInputSize;
    const cv::Mat input = SquareResizeTf(rgb, cv::Rect(0, 0, rgb.cols, rgb.rows), /*centered=*/false, size);
    const float mean[3] = {127.5f, 127.5f, 127.5f};
    auto [boxes_t, scores_t] = ssd_->forward(nets::ToNchw({input.ptr<float>()}, size, mean, 127.5f));
    torch::Tensor boxes_c = boxes_t[0].contiguous(), scores_c = scores_t[0].contiguous();
    const auto boxes = boxes_c.accessor<float, 2>();
    const auto scores = scores_c.accessor<float, 1>();
    struct Cand {
      double score;
      int64_t index;
    };
    std::vector<Cand> cands;
    for (int64_t i = 0; i < scores.size(0); ++i) {
      if (scores[i] > params_.score_threshold) cands.push_back({scores[i], i});
    }
    std::stable_sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) { return a.score > b.score; });
    // face-api's SSD NMS on (ymin, xmin, ymax, xmax) with min/max normalisation.
    auto iou = [&](int64_t i, int64_t j) {
      const double ymin_i = std::min(boxes[i][0], boxes[i][2]), xmin_i = std::min(boxes[i][1], boxes[i][3]);
      const double ymax_i = std::max(boxes[i][0], boxes[i][2]), xmax_i = std::max(boxes[i][1], boxes[i][3]);
      const double ymin_j = std::min(boxes[j][0], boxes[j][2]), xmin_j = std::min(boxes[j][1], boxes[j][3]);
      const double ymax_j = std::max(boxes[j][0], boxes[j][2]), xmax_j = std::max(boxes[j][1], boxes[j][3]);
      const double area_i = (ymax_i - ymin_i) * (xmax_i - xmin_i), area_j = (ymax_j - ymin_j) * (xmax_j - xmin_j);
      if (area_i <= 0 || area_j <= 0) return 0.0;
      const double inter = std::max(std::min(ymax_i, ymax_j) - std::max(ymin_i, ymin_j), 0.0) *
                           std::max(std::min(xmax_i, xmax_j) - std::max(xmin_i, xmin_j), 0.0);
      return inter / (area_i + area_j - inter);
    };
    std::vector<int64_t> selected;
    for (const Cand& c : cands) {
      if (static_cast<int>(selected.size()) >= kSsdMaxResults) break;
      bool keep = true;
      for (int64_t s : selected) {
        if (iou(c.index, s) > kSsdIou) { keep = false; break; }
      }
      if (keep) selected.push_back(c.index);
    }
    const cv::Size2d reshaped = Reshaped(rgb.cols, rgb.rows, size);
    const double pad_x = size / reshaped.width, pad_y = size / reshaped.height;
    std::vector<RelBox> out;
    for (int64_t i : selected) {
      const double top = std::max(0.0, static_cast<double>(boxes[i][0])) * pad_y;
      const double bottom = std::min(1.0, static_cast<double>(boxes[i][2])) * pad_y;
      const double left = std::max(0.0, static_cast<double>(boxes[i][1])) * pad_x;
      const double right = std::min(1.0, static_cast<double>(boxes[i][3])) * pad_x;
      out.push_back({left, top, right, bottom, scores[i]});
    }
    return out;
  }

  std::vector<std::array<cv::Point2f, 68>> LandmarksOf(const cv::Mat& rgb, const std::vector<cv::Rect>& crops) {
    constexpr int size = nets::Landmark68NetImpl::kInputSize;
    std::vector<std::array<cv::Point2f, 68>> result;
    for (size_t start = 0; start < crops.size(); start += kLandmarkBatch) {
      const size_t end = std::min(crops.size(), start + kLandmarkBatch);
      std::vector<cv::Mat> inputs;
      std::vector<const float*> ptrs;
      for (size_t i = start; i < end; ++i) {
        inputs.push_back(SquareResizeTf(rgb, crops[i], /*centered=*/true, size));
        ptrs.push_back(inputs.back().ptr<float>());
      }
      torch::Tensor out = landmarks_->forward(nets::ToNchw(ptrs, size, nets::Landmark68NetImpl::kMeanRgb, 255.0f)).contiguous();
      const auto o = out.accessor<float, 2>();
      for (size_t i = start; i < end; ++i) {
        const cv::Rect& c = crops[i];
        // face-api's FaceLandmark68NetBase.postProcess, then scaled to the crop and shifted.
        const double scale = static_cast<double>(size) / std::max(c.width, c.height);
        const double sw = c.width * scale, sh = c.height * scale;
        const double pad_x = c.width < c.height ? std::abs(sw - sh) / 2 : 0.0;
        const double pad_y = c.height < c.width ? std::abs(sw - sh) / 2 : 0.0;
        std::array<cv::Point2f, 68> pts;
        for (int k = 0; k < 68; ++k) {
          const double rx = (o[i - start][2 * k] * size - pad_x) / sw;
          const double ry = (o[i - start][2 * k + 1] * size - pad_y) / sh;
          pts[k] = cv::Point2f(static_cast<float>(rx * c.width + c.x), static_cast<float>(ry * c.height + c.y));
        }
        result.push_back(pts);
      }
    }
    return result;
  }

  FaceDetectorParams params_;
  nets::TinyFaceDetectorNet tiny_;
  nets::SsdMobilenetNet ssd_;
  nets::Landmark68Net landmarks_;
};

}  // namespace

StatusOr<std::unique_ptr<FaceDetector>> FaceDetector::Create(const FaceDetectorParams& params) {
  if (params.score_threshold < 0 || params.score_threshold >= 1) {
    return InvalidArgumentError("score_threshold must be in [0, 1)");
  }
  if (params.tiny_input_size < 32 || params.tiny_input_size > 2048 || params.tiny_input_size % 32 != 0) {
    return InvalidArgumentError("tiny_input_size must be a multiple of 32 in [32, 2048]");
  }
  if (params.min_face_size < 0) return InvalidArgumentError("min_face_size must not be negative");
  if (params.max_input_side < 0) return InvalidArgumentError("max_input_side must not be negative");
  InitRuntimeOnce();
  auto detector = std::make_unique<FaceDetectorImpl>(params);
  try {
    VEIL_RETURN_IF_ERROR(detector->Load());
  } catch (const std::exception& e) {
    return InternalError(std::string("loading the face detector failed: ") + e.what());
  }
  return std::unique_ptr<FaceDetector>(std::move(detector));
}

float BoxIou(const cv::Rect2f& a, const cv::Rect2f& b) {
  const float inter = (a & b).area();
  const float uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0.0f;
}

}  // namespace veil::engine
