// The identity code: face-api's pre-processing and the ported ResNet-34 descriptor network.
#include "veil/engine/recognizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "image_util.h"
#include "nets/face_recognition_net.h"
#include "tf_image_ops.h"
#include "veil/engine/aligner.h"
#include "veil/engine/runtime.h"

namespace veil::engine {
namespace {

class RecognizerImpl final : public Recognizer {
 public:
  explicit RecognizerImpl(RecognizerParams params) : params_(std::move(params)) {}

  Status Load() {
    VEIL_ASSIGN_OR_RETURN(auto w, TfjsWeights::Load(ResolveModelsDir(params_.models_dir), "face_recognition_model",
                                                    params_.verify_checksums));
    VEIL_RETURN_IF_ERROR(net_->LoadFrom(w));
    net_->eval();
    return Status::Ok();
  }

  StatusOr<std::vector<Descriptor>> DescribeAligned(const std::vector<cv::Mat>& faces) override {
    std::vector<cv::Mat> inputs;
    for (const cv::Mat& face : faces) {
      VEIL_ASSIGN_OR_RETURN(cv::Mat rgb, ToRgb(face));
      inputs.push_back(SquareResizeTf(rgb, cv::Rect(0, 0, rgb.cols, rgb.rows), /*centered=*/true, kInputSize));
    }
    return Run(inputs);
  }

  StatusOr<std::vector<Descriptor>> DescribeFaces(const cv::Mat& image, const std::vector<Face>& faces) override {
    std::vector<cv::Mat> chips;
    for (const Face& f : faces) {
      VEIL_ASSIGN_OR_RETURN(AlignedFace a, aligner_.Align(image, f));
      chips.push_back(std::move(a.image));
    }
    return DescribeAligned(chips);
  }

  StatusOr<std::vector<Descriptor>> DescribeCrops(const cv::Mat& image, const std::vector<cv::Rect>& crops) override {
    VEIL_ASSIGN_OR_RETURN(cv::Mat rgb, ToRgb(image));
    std::vector<cv::Mat> inputs;
    for (const cv::Rect& c : crops) {
      const cv::Rect r = c & cv::Rect(0, 0, rgb.cols, rgb.rows);
      if (r.width <= 0 || r.height <= 0) return InvalidArgumentError("face crop lies outside the image");
      inputs.push_back(SquareResizeTf(rgb, r, /*centered=*/true, kInputSize));
    }
    return Run(inputs);
  }

 private:
  StatusOr<std::vector<Descriptor>> Run(const std::vector<cv::Mat>& inputs) {
    std::vector<Descriptor> out;
    try {
      c10::InferenceMode guard;
      const size_t batch = static_cast<size_t>(std::max(1, params_.max_batch));
      for (size_t start = 0; start < inputs.size(); start += batch) {
        std::vector<const float*> ptrs;
        for (size_t i = start; i < std::min(inputs.size(), start + batch); ++i) ptrs.push_back(inputs[i].ptr<float>());
        torch::Tensor codes =
            net_->forward(nets::ToNchw(ptrs, kInputSize, nets::FaceRecognitionNetImpl::kMeanRgb, 255.0f)).contiguous();
        for (int64_t i = 0; i < codes.size(0); ++i) {
          Descriptor d;
          std::memcpy(d.data(), codes[i].data_ptr<float>(), sizeof(float) * d.size());
          out.push_back(d);
        }
      }
    } catch (const std::exception& e) {
      return InternalError(std::string("recognizer failed: ") + e.what());
    }
    return out;
  }

  RecognizerParams params_;
  Aligner aligner_{AlignerParams{.output_size = kInputSize}};
  nets::FaceRecognitionNet net_;
};

}  // namespace

StatusOr<std::unique_ptr<Recognizer>> Recognizer::Create(const RecognizerParams& params) {
  InitRuntimeOnce();
  auto rec = std::make_unique<RecognizerImpl>(params);
  try {
    VEIL_RETURN_IF_ERROR(rec->Load());
  } catch (const std::exception& e) {
    return InternalError(std::string("loading the recognizer failed: ") + e.what());
  }
  return std::unique_ptr<Recognizer>(std::move(rec));
}

float DescriptorDistance(const Descriptor& a, const Descriptor& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return static_cast<float>(std::sqrt(sum));
}

float DescriptorCosine(const Descriptor& a, const Descriptor& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return aa > 0 && bb > 0 ? static_cast<float>(ab / std::sqrt(aa * bb)) : 0.0f;
}

}  // namespace veil::engine
