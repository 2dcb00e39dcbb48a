// Verification quality of the identity code on the demo photos (all different people): the same
// face under flip, crop and JPEG re-encoding against different faces. The 0.6 threshold is dlib's;
// the measured numbers are printed and written down in tests/engine/README.md.
#include <doctest/doctest.h>

#include <algorithm>
#include <opencv2/imgcodecs.hpp>

#include "test_support.h"
#include "veil/engine/face_detector.h"
#include "veil/engine/recognizer.h"

namespace veil::engine {
namespace {

struct Coded {
  Face face;
  Descriptor code;
};

class Pipeline {
 public:
  Pipeline() {
    FaceDetectorParams dp;
    dp.models_dir = testing::ModelsDir().string();
    auto d = FaceDetector::Create(dp);
    REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    detector_ = std::move(d).value();
    RecognizerParams rp;
    rp.models_dir = dp.models_dir;
    auto r = Recognizer::Create(rp);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    recognizer_ = std::move(r).value();
  }

  std::vector<Coded> Run(const cv::Mat& image) {
    auto faces = detector_->Detect(image);
    REQUIRE(faces.ok());
    auto codes = recognizer_->DescribeFaces(image, *faces);
    REQUIRE(codes.ok());
    std::vector<Coded> out;
    for (size_t i = 0; i < faces->size(); ++i) out.push_back({(*faces)[i], (*codes)[i]});
    return out;
  }

 private:
  std::unique_ptr<FaceDetector> detector_;
  std::unique_ptr<Recognizer> recognizer_;
};

// The face in `candidates` whose box best overlaps `box`; nullptr below IoU 0.5.
const Coded* Match(const std::vector<Coded>& candidates, const cv::Rect2f& box) {
  const Coded* best = nullptr;
  float best_iou = 0.5f;
  for (const Coded& c : candidates) {
    const float iou = BoxIou(c.face.box, box);
    if (iou > best_iou) best_iou = iou, best = &c;
  }
  return best;
}

TEST_SUITE("verification") {

TEST_CASE("the same face under flip, crop and JPEG re-encoding stays within 0.45; different people mostly do not") {
  Pipeline pipeline;
  std::vector<std::pair<std::string, Descriptor>> all;  // (photo, code)
  float worst_flip = 0, worst_crop = 0, worst_jpeg = 0;
  int matched = 0, lost = 0;
  for (const auto& img : testing::Golden()["images"]) {
    const std::string name = img["name"];
    const cv::Mat& image = testing::DemoImage(name);
    const auto faces = pipeline.Run(image);
    cv::Mat flipped;
    cv::flip(image, flipped, 1);
    const auto flipped_faces = pipeline.Run(flipped);
    std::vector<uchar> jpeg;
    cv::imencode(".jpg", image, jpeg, {cv::IMWRITE_JPEG_QUALITY, 40});
    const auto jpeg_faces = pipeline.Run(cv::imdecode(jpeg, cv::IMREAD_COLOR));
    for (const Coded& f : faces) {
      all.emplace_back(name, f.code);
      const cv::Rect2f mirrored(image.cols - f.face.box.x - f.face.box.width, f.face.box.y, f.face.box.width,
                                f.face.box.height);
      const Coded* fl = Match(flipped_faces, mirrored);
      const Coded* jp = Match(jpeg_faces, f.face.box);
      // A loose crop: twice the box, clipped to the photo.
      const cv::Point2f c = (f.face.box.tl() + f.face.box.br()) * 0.5f;
      const float side = 2.0f * std::max(f.face.box.width, f.face.box.height);
      const cv::Rect roi = cv::Rect(cv::Point(c - cv::Point2f(side, side) * 0.5f), cv::Size(int(side), int(side))) &
                           cv::Rect(0, 0, image.cols, image.rows);
      const auto crop_faces = pipeline.Run(image(roi).clone());
      const Coded* cr = Match(crop_faces, cv::Rect2f(f.face.box.x - roi.x, f.face.box.y - roi.y, f.face.box.width,
                                                     f.face.box.height));
      if (!fl || !jp || !cr) {
        MESSAGE(name << ": face at " << f.face.box << " not found again under"
                     << std::string(fl ? "" : " flip") + (jp ? "" : " JPEG") + (cr ? "" : " crop"));
        ++lost;
        continue;
      }
      worst_flip = std::max(worst_flip, DescriptorDistance(f.code, fl->code));
      worst_jpeg = std::max(worst_jpeg, DescriptorDistance(f.code, jp->code));
      worst_crop = std::max(worst_crop, DescriptorDistance(f.code, cr->code));
      ++matched;
    }
  }
  std::vector<float> impostor;
  for (size_t i = 0; i < all.size(); ++i) {
    for (size_t j = i + 1; j < all.size(); ++j) impostor.push_back(DescriptorDistance(all[i].second, all[j].second));
  }
  std::sort(impostor.begin(), impostor.end());
  const auto below = std::count_if(impostor.begin(), impostor.end(), [](float d) { return d < kSamePersonDistance; });
  MESSAGE(matched << " faces (" << lost << " lost under a transform): worst same-face distance flip " << worst_flip << ", 2x crop " << worst_crop
                  << ", JPEG q40 " << worst_jpeg << "; different faces: " << impostor.size() << " pairs, min "
                  << impostor.front() << ", median " << impostor[impostor.size() / 2] << ", " << below
                  << " below 0.6");
  CHECK(matched >= 20);
  CHECK(lost <= 2);
  CHECK(worst_flip < 0.45f);
  CHECK(worst_crop < 0.45f);
  CHECK(worst_jpeg < 0.45f);
  CHECK(impostor.front() > std::max({worst_flip, worst_crop, worst_jpeg}) * 0.5f);
}

}  // TEST_SUITE
}  // namespace
}  // namespace veil::engine
