// veil-bench-perception: speed and memory of the perception engine, and (optionally) verification
// quality of the identity code on a folder of face crops such as UTKFace.
//
//   veil-bench-perception [--models DIR] [--image PHOTO] [--iters 5]
//                         [--verification UTKFACE_IMAGES_DIR --count 400]
//
// Prints ms per image for each detector at 640x480 and 1280x720 (detector alone, and with
// landmarks), ms per face for landmarks and recognizer at batch 1 and 16, and peak RSS.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "cli.h"
#include "veil/engine/face_detector.h"
#include "veil/engine/image_io.h"
#include "veil/engine/recognizer.h"
#include "veil/engine/runtime.h"

namespace {

using namespace veil;
using Clock = std::chrono::steady_clock;

// Median milliseconds of `iters` runs after one warm-up run.
template <typename F>
double MedianMs(int iters, F&& f) {
  f();
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = Clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

double PeakRssMb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

template <typename T>
T OrDie(StatusOr<T> v) {
  if (!v.ok()) {
    std::fprintf(stderr, "veil-bench-perception: %s\n", v.status().ToString().c_str());
    std::exit(static_cast<int>(v.status().code()));
  }
  return std::move(v).value();
}

int Verification(const std::string& dir, int count, engine::Recognizer& rec) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".jpg") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "veil-bench-perception: no .jpg files in %s\n", dir.c_str());
    return 3;
  }
  const size_t step = std::max<size_t>(1, files.size() / static_cast<size_t>(count));
  std::vector<cv::Mat> images;
  std::vector<std::string> groups;  // gender_race_agedecade from UTKFace names
  for (size_t i = 0; i < files.size() && images.size() < static_cast<size_t>(count); i += step) {
    auto img = engine::ReadImage(files[i].string());
    if (!img.ok()) continue;
    images.push_back(*img);
    const std::string name = files[i].filename().string();
    const auto a = name.find('_'), b = name.find('_', a + 1), c = name.find('_', b + 1);
    groups.push_back(a == std::string::npos || c == std::string::npos
                         ? "?"
                         : name.substr(a + 1, b - a - 1) + "_" + name.substr(b + 1, c - b - 1) + "_" +
                               std::to_string(std::stoi(name.substr(0, a)) / 10));
  }
  auto codes = OrDie(rec.DescribeAligned(images));
  // Same face under transformations.
  std::map<std::string, std::vector<float>> genuine;
  std::vector<cv::Mat> flipped, jpeg, cropped, brighter;
  for (const cv::Mat& m : images) {
    cv::Mat f;
    cv::flip(m, f, 1);
    flipped.push_back(f);
    std::vector<uchar> buf;
    cv::imencode(".jpg", m, buf, {cv::IMWRITE_JPEG_QUALITY, 30});
    jpeg.push_back(cv::imdecode(buf, cv::IMREAD_COLOR));
    const int inset = m.cols / 20;
    cropped.push_back(m(cv::Rect(inset, inset, m.cols - 2 * inset, m.rows - 2 * inset)).clone());
    cv::Mat b;
    m.convertTo(b, -1, 1.0, 40);
    brighter.push_back(b);
  }
  const std::pair<const char*, std::vector<cv::Mat>*> variants[] = {
      {"flip", &flipped}, {"jpeg q30", &jpeg}, {"crop 90%", &cropped}, {"brightness +40", &brighter}};
  std::printf("\nverification on %zu UTKFace crops (no identity labels; each file treated as its own person)\n",
              images.size());
  for (const auto& [name, set] : variants) {
    auto other = OrDie(rec.DescribeAligned(*set));
    std::vector<float> d;
    for (size_t i = 0; i < images.size(); ++i) d.push_back(engine::DescriptorDistance(codes[i], other[i]));
    std::sort(d.begin(), d.end());
    std::printf("  same face, %-15s median %.3f  p95 %.3f  max %.3f  (>= 0.6: %zu)\n", name, d[d.size() / 2],
                d[d.size() * 95 / 100], d.back(),
                static_cast<size_t>(std::count_if(d.begin(), d.end(), [](float x) { return x >= 0.6f; })));
  }
  std::vector<float> same_group, other_group;
  for (size_t i = 0; i < images.size(); ++i) {
    for (size_t j = i + 1; j < images.size(); ++j) {
      (groups[i] == groups[j] ? same_group : other_group).push_back(engine::DescriptorDistance(codes[i], codes[j]));
    }
  }
  for (auto* v : {&same_group, &other_group}) std::sort(v->begin(), v->end());
  auto report = [](const char* label, const std::vector<float>& d) {
    if (d.empty()) return;
    const size_t below = std::count_if(d.begin(), d.end(), [](float x) { return x < 0.6f; });
    const size_t below5 = std::count_if(d.begin(), d.end(), [](float x) { return x < 0.5f; });
    std::printf("  different files, %-28s %7zu pairs: min %.3f  p1 %.3f  median %.3f;  < 0.6: %.2f%%  < 0.5: %.2f%%\n",
                label, d.size(), d.front(), d[d.size() / 100], d[d.size() / 2], 100.0 * below / d.size(),
                100.0 * below5 / d.size());
  };
  report("same gender+race+age decade", same_group);
  report("otherwise", other_group);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  cli::KeepFreedHeapForReuse();
  cli::Args args(argc - 1, argv + 1, {});
  const std::string models = args.GetOr("--models", "");
  const std::string photo = args.GetOr("--image", engine::DefaultModelsDir() + "/../demo/sample1.jpg");
  const int iters = static_cast<int>(OrDie(args.GetInt("--iters", 5, 1, 1000)));
  const auto verification = args.Get("--verification");
  const int count = static_cast<int>(OrDie(args.GetInt("--count", 400, 10, 20000)));
  if (Status st = args.Finish(); !st.ok()) return cli::Fail(st);

  const cv::Mat source = OrDie(engine::ReadImage(photo));
  engine::InitRuntimeOnce();
  std::printf("veil-bench-perception: %d LibTorch threads, %d iterations (median), photo %s\n",
              engine::RuntimeThreads(), iters, photo.c_str());
  const cv::Size sizes[] = {{640, 480}, {1280, 720}};
  std::vector<engine::Face> faces_720;
  for (auto kind : {engine::DetectorKind::kSsd, engine::DetectorKind::kTiny}) {
    engine::FaceDetectorParams p;
    p.models_dir = models;
    p.kind = kind;
    auto det = OrDie(engine::FaceDetector::Create(p));
    for (const cv::Size& s : sizes) {
      cv::Mat img;
      cv::resize(source, img, s, 0, 0, cv::INTER_AREA);
      size_t n = 0;
      const double boxes_ms = MedianMs(iters, [&] { n = OrDie(det->DetectBoxes(img)).size(); });
      const double full_ms = MedianMs(iters, [&] { faces_720 = OrDie(det->Detect(img)); });
      std::printf("  %-4s detector %4dx%-4d  %7.1f ms/image (boxes only)  %7.1f ms/image (+ 68 landmarks)  %zu faces\n",
                  kind == engine::DetectorKind::kSsd ? "ssd" : "tiny", s.width, s.height, boxes_ms, full_ms, n);
    }
    if (kind == engine::DetectorKind::kSsd) {
      // Landmarks alone, per face, on crops of the photo.
      cv::Mat img;
      cv::resize(source, img, sizes[1], 0, 0, cv::INTER_AREA);
      auto faces = OrDie(det->DetectBoxes(img));
      if (faces.empty()) faces.push_back({cv::Rect2f(500, 200, 200, 250), 1.0f});
      for (int batch : {1, 16}) {
        std::vector<cv::Rect> crops(batch, cv::Rect(faces[0].box) & cv::Rect(0, 0, img.cols, img.rows));
        const double ms = MedianMs(iters, [&] { OrDie(det->LandmarksForCrops(img, crops)); });
        std::printf("  landmarks  batch %2d  %7.1f ms/face\n", batch, ms / batch);
      }
    }
  }
  engine::RecognizerParams rp;
  rp.models_dir = models;
  auto rec = OrDie(engine::Recognizer::Create(rp));
  cv::Mat chip;
  cv::resize(source(cv::Rect(0, 0, std::min(source.cols, source.rows), std::min(source.cols, source.rows))), chip,
             cv::Size(150, 150), 0, 0, cv::INTER_AREA);
  for (int batch : {1, 16}) {
    std::vector<cv::Mat> chips(batch, chip);
    const double ms = MedianMs(iters, [&] { OrDie(rec->DescribeAligned(chips)); });
    std::printf("  recognizer batch %2d  %7.1f ms/face\n", batch, ms / batch);
  }
  std::printf("  peak RSS %.0f MB (getrusage ru_maxrss)\n", PeakRssMb());
  if (verification) return Verification(*verification, count, *rec);
  return 0;
}
