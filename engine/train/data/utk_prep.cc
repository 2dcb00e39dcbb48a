#include "data/utk_prep.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include <opencv2/core.hpp>

#include "data/utk_dataset.h"
#include "veil/engine/aligner.h"
#include "veil/engine/face_detector.h"
#include "veil/engine/image_io.h"
#include "veil/engine/recognizer.h"
#include "veil/keys/secret.h"

namespace veil::train {
namespace {

namespace fs = std::filesystem;
using engine::Descriptor;

void Log(const PrepOptions& o, const std::string& line) {
  if (o.log) o.log(line);
}

// "[age]_[gender]_[race]_[datetime].jpg.chip.jpg"; a missing or unparsable field is -1.
UtkRecord ParseName(const std::string& file) {
  UtkRecord r;
  r.file = file;
  std::vector<std::string> f;
  std::string cur;
  for (char c : file) {
    if (c == '_') {
      f.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  f.push_back(cur);
  auto num = [](const std::string& s, int lo, int hi) {
    if (s.empty() || s.size() > 4 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return -1;
    const int v = std::stoi(s);
    return v >= lo && v <= hi ? v : -1;
  };
  if (f.size() >= 2) {
    r.age = num(f[0], 0, 150);
    r.gender = num(f[1], 0, 1);
  }
  if (f.size() >= 4) r.race = num(f[2], 0, 4);
  return r;
}

StatusOr<std::vector<std::string>> ListImages(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFoundError("no image folder at " + dir);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file()) continue;
    const std::string n = e.path().filename().string();
    if (n.size() > 4 && (n.ends_with(".jpg") || n.ends_with(".png"))) names.push_back(n);
  }
  if (ec) return IoError("cannot list " + dir + ": " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

// RMS distance of the aligned landmarks 17-67 to the template, as a fraction of the crop side.
float FitError(const engine::AlignedFace& a, const engine::Aligner& aligner) {
  const auto& t = aligner.template_points();
  double sum = 0;
  for (int i = 17; i < 68; ++i) {
    const cv::Point2f d = a.landmarks[i] - t[i - 17];
    sum += d.x * d.x + d.y * d.y;
  }
  return static_cast<float>(std::sqrt(sum / 51.0) / aligner.params().output_size);
}

engine::Face FaceFrom(const std::array<cv::Point2f, 68>& lm) {
  engine::Face f;
  f.landmarks = lm;
  f.landmarks5 = engine::FivePointsFrom68(lm);
  f.has_landmarks = true;
  return f;
}

// The detector's face closest to the chip's centre among those found (highest score breaks ties).
const engine::Face* PickFace(const std::vector<engine::Face>& faces, const cv::Size& size) {
  const engine::Face* best = nullptr;
  double best_d = 1e18;
  const cv::Point2f c(size.width / 2.0f, size.height / 2.0f);
  for (const auto& f : faces) {
    if (!f.has_landmarks) continue;
    const cv::Point2f fc(f.box.x + f.box.width / 2, f.box.y + f.box.height / 2);
    const double d = cv::norm(fc - c);
    if (d < best_d) best_d = d, best = &f;
  }
  return best;
}

class Writer {
 public:
  Status Open(const std::string& path) {
    path_ = path;
    tmp_ = path + ".tmp";
    out_.open(tmp_, std::ios::binary | std::ios::trunc);
    if (!out_) return IoError("cannot write " + tmp_);
    return Status::Ok();
  }
  void Write(const void* data, size_t n) { out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(n)); }
  Status Commit() {
    out_.flush();
    if (!out_) return IoError("writing " + tmp_ + " failed");
    out_.close();
    std::error_code ec;
    fs::rename(tmp_, path_, ec);
    if (ec) return IoError("cannot rename " + tmp_ + ": " + ec.message());
    return Status::Ok();
  }

 private:
  std::string path_, tmp_;
  std::ofstream out_;
};

struct Engines {
  std::unique_ptr<engine::FaceDetector> detector;
  std::unique_ptr<engine::Recognizer> recognizer;
};

StatusOr<Engines> MakeEngines(const PrepOptions& o) {
  Engines e;
  engine::FaceDetectorParams dp;
  dp.models_dir = o.models_dir;
  dp.kind = engine::DetectorKind::kTiny;
  dp.tiny_input_size = o.tiny_input_size;
  VEIL_ASSIGN_OR_RETURN(e.detector, engine::FaceDetector::Create(dp));
  engine::RecognizerParams rp;
  rp.models_dir = o.models_dir;
  rp.max_batch = std::max(1, o.batch);
  VEIL_ASSIGN_OR_RETURN(e.recognizer, engine::Recognizer::Create(rp));
  return e;
}

struct Landmarked {
  bool ok = false;
  bool from_detector = false;
  std::string reason;
  engine::Face face;
};

StatusOr<Landmarked> Landmarks(engine::FaceDetector& det, const cv::Mat& img, LandmarkSource source) {
  Landmarked out;
  if (source != LandmarkSource::kChip) {
    VEIL_ASSIGN_OR_RETURN(auto faces, det.Detect(img));
    if (const engine::Face* f = PickFace(faces, img.size())) {
      out.ok = true;
      out.from_detector = true;
      out.face = *f;
      return out;
    }
    if (source == LandmarkSource::kDetect) {
      out.reason = "no face detected";
      return out;
    }
  }
  VEIL_ASSIGN_OR_RETURN(auto marks, det.LandmarksForCrops(img, {cv::Rect(0, 0, img.cols, img.rows)}));
  out.ok = true;
  out.face = FaceFrom(marks.at(0));
  return out;
}

std::string Pct(std::vector<float> v) {
  if (v.empty()) return "n=0";
  std::sort(v.begin(), v.end());
  auto q = [&](double p) { return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))]; };
  double mean = 0;
  for (float x : v) mean += x;
  mean /= v.size();
  char buf[200];
  std::snprintf(buf, sizeof buf, "n=%zu mean=%.4f p5=%.4f p50=%.4f p95=%.4f max=%.4f", v.size(), mean, q(0.05), q(0.5),
                q(0.95), v.back());
  return buf;
}

}  // namespace

Status RunPrep(const PrepOptions& o, PrepStats* stats) {
  const auto t0 = std::chrono::steady_clock::now();
  VEIL_ASSIGN_OR_RETURN(std::vector<std::string> files, ListImages(o.images_dir));
  if (o.limit > 0 && static_cast<size_t>(o.limit) < files.size()) files.resize(o.limit);
  if (files.empty()) return NotFoundError("no images in " + o.images_dir);

  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) return IoError("cannot create " + o.out_dir + ": " + ec.message());
  const std::string done_path = o.out_dir + "/DONE";
  if (fs::exists(done_path)) {
    if (!o.overwrite) return AlreadyExistsError(o.out_dir + " already holds a complete set (pass --overwrite)");
    fs::remove(done_path, ec);
  }

  VEIL_ASSIGN_OR_RETURN(Engines eng, MakeEngines(o));
  const engine::Aligner align128({.output_size = kUtkCropSize, .padding = 0.25f});
  const engine::Aligner align150({.output_size = engine::Recognizer::kInputSize, .padding = 0.25f});

  Writer crops, desc, flip, marks;
  VEIL_RETURN_IF_ERROR(crops.Open(o.out_dir + "/crops128.u8"));
  VEIL_RETURN_IF_ERROR(desc.Open(o.out_dir + "/desc.f32"));
  VEIL_RETURN_IF_ERROR(marks.Open(o.out_dir + "/landmarks.f32"));
  if (o.flip) VEIL_RETURN_IF_ERROR(flip.Open(o.out_dir + "/desc_flip.f32"));

  PrepStats st;
  st.files = static_cast<int>(files.size());
  std::vector<UtkRecord> records;
  double t_landmarks = 0, t_describe = 0;
  std::vector<cv::Mat> chips;  // pending batch of 150 chips (then their mirror images)

  auto flush = [&]() -> Status {
    if (chips.empty()) return Status::Ok();
    std::vector<cv::Mat> inputs = chips;
    if (o.flip) {
      for (const cv::Mat& c : chips) {
        cv::Mat m;
        cv::flip(c, m, 1);
        inputs.push_back(m);
      }
    }
    const auto td = std::chrono::steady_clock::now();
    VEIL_ASSIGN_OR_RETURN(std::vector<Descriptor> d, eng.recognizer->DescribeAligned(inputs));
    t_describe += std::chrono::duration<double>(std::chrono::steady_clock::now() - td).count();
    for (size_t i = 0; i < chips.size(); ++i) desc.Write(d[i].data(), sizeof(float) * 128);
    if (o.flip)
      for (size_t i = 0; i < chips.size(); ++i) flip.Write(d[chips.size() + i].data(), sizeof(float) * 128);
    chips.clear();
    return Status::Ok();
  };

  engine::ImageLimits limits;
  limits.silence_decoder_stderr = true;
  for (size_t start = 0; start < files.size(); start += static_cast<size_t>(o.batch)) {
    const size_t end = std::min(files.size(), start + static_cast<size_t>(o.batch));
    std::vector<std::pair<size_t, cv::Mat>> imgs;  // file index, image
    for (size_t fi = start; fi < end; ++fi) {
      auto img = engine::ReadImage(o.images_dir + "/" + files[fi], limits);
      if (!img.ok()) {
        st.failures.emplace_back(files[fi], "unreadable: " + img.status().message());
        continue;
      }
      imgs.emplace_back(fi, std::move(*img));
    }
    const auto tl = std::chrono::steady_clock::now();
    std::vector<Landmarked> lms;
    if (o.source == LandmarkSource::kChip && !imgs.empty()) {
      // One batch through the 68-point net: the chips side by side in one mosaic, one crop each.
      int width = 0, height = 0;
      for (const auto& [fi, im] : imgs) width += im.cols, height = std::max(height, im.rows);
      cv::Mat mosaic(height, width, CV_8UC3, cv::Scalar::all(0));
      std::vector<cv::Rect> rects;
      int x = 0;
      for (const auto& [fi, im] : imgs) {
        rects.emplace_back(x, 0, im.cols, im.rows);
        im.copyTo(mosaic(rects.back()));
        x += im.cols;
      }
      VEIL_ASSIGN_OR_RETURN(auto found, eng.detector->LandmarksForCrops(mosaic, rects));
      for (size_t k = 0; k < imgs.size(); ++k) {
        for (auto& p : found[k]) p.x -= static_cast<float>(rects[k].x);
        Landmarked lm;
        lm.ok = true;
        lm.face = FaceFrom(found[k]);
        lms.push_back(std::move(lm));
      }
    } else {
      for (const auto& [fi, im] : imgs) {
        VEIL_ASSIGN_OR_RETURN(Landmarked lm, Landmarks(*eng.detector, im, o.source));
        lms.push_back(std::move(lm));
      }
    }
    t_landmarks += std::chrono::duration<double>(std::chrono::steady_clock::now() - tl).count();
    for (size_t k = 0; k < imgs.size(); ++k) {
      const std::string& name = files[imgs[k].first];
      const cv::Mat& img = imgs[k].second;
      const Landmarked& lm = lms[k];
      if (!lm.ok) {
        st.failures.emplace_back(name, lm.reason);
        continue;
      }
      VEIL_ASSIGN_OR_RETURN(engine::AlignedFace a128, align128.Align(img, lm.face));
      const float fit = FitError(a128, align128);
      if (!(fit <= o.max_fit_error)) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "landmarks do not fit the template (rms %.3f of the crop side)", fit);
        st.failures.emplace_back(name, buf);
        continue;
      }
      VEIL_ASSIGN_OR_RETURN(engine::AlignedFace a150, align150.Align(img, lm.face));
      CV_Assert(a128.image.isContinuous() && a128.image.type() == CV_8UC3);
      crops.Write(a128.image.data, a128.image.total() * 3);
      float xy[kUtkLandmarks * 2];
      for (int i = 0; i < kUtkLandmarks; ++i) xy[2 * i] = a128.landmarks[i].x, xy[2 * i + 1] = a128.landmarks[i].y;
      marks.Write(xy, sizeof xy);
      chips.push_back(a150.image);
      records.push_back(ParseName(name));
      (lm.from_detector ? st.from_detector : st.from_chip)++;
    }
    VEIL_RETURN_IF_ERROR(flush());
    if (end / o.log_every != start / o.log_every || end == files.size()) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      Log(o, "prep: " + std::to_string(end) + "/" + std::to_string(files.size()) + " files, " +
                 std::to_string(records.size()) + " usable, " + std::to_string(st.failures.size()) + " refused, " +
                 std::to_string(static_cast<int>(s)) + " s (landmarks " + std::to_string(static_cast<int>(t_landmarks)) +
                 " s, descriptors " + std::to_string(static_cast<int>(t_describe)) + " s)");
    }
  }
  VEIL_RETURN_IF_ERROR(flush());
  st.usable = static_cast<int>(records.size());
  if (st.usable <= o.holdout) return FailedPreconditionError("too few usable images for the hold-out set");

  // Hold-out: the `holdout` usable images with the smallest BLAKE2b-256(file name).
  std::vector<std::pair<std::string, size_t>> h;
  for (size_t i = 0; i < records.size(); ++i) h.emplace_back(keys::Blake2b256(records[i].file), i);
  std::sort(h.begin(), h.end());
  for (int i = 0; i < o.holdout; ++i) records[h[i].second].split = Split::kHoldout;
  st.holdout = o.holdout;

  Writer index;
  VEIL_RETURN_IF_ERROR(index.Open(o.out_dir + "/index.tsv"));
  std::ostringstream os;
  os << "idx\tfile\tsplit\tage\tgender\trace\n";
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    os << i << '\t' << r.file << '\t' << (r.split == Split::kHoldout ? "holdout" : "train") << '\t' << r.age << '\t'
       << r.gender << '\t' << r.race << '\n';
  }
  const std::string text = os.str();
  index.Write(text.data(), text.size());
  VEIL_RETURN_IF_ERROR(crops.Commit());
  VEIL_RETURN_IF_ERROR(desc.Commit());
  VEIL_RETURN_IF_ERROR(marks.Commit());
  if (o.flip) VEIL_RETURN_IF_ERROR(flip.Commit());
  VEIL_RETURN_IF_ERROR(index.Commit());
  if (!o.failures_path.empty()) {
    Writer fw;
    VEIL_RETURN_IF_ERROR(fw.Open(o.failures_path));
    std::string t = "file\treason\n";
    for (const auto& [f, why] : st.failures) t += f + "\t" + why + "\n";
    fw.Write(t.data(), t.size());
    VEIL_RETURN_IF_ERROR(fw.Commit());
  }
  Writer done;
  VEIL_RETURN_IF_ERROR(done.Open(done_path));
  const std::string n = std::to_string(records.size()) + "\n";
  done.Write(n.data(), n.size());
  VEIL_RETURN_IF_ERROR(done.Commit());
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (stats != nullptr) *stats = std::move(st);
  return Status::Ok();
}

Status CompareLandmarkSources(const PrepOptions& o, int count) {
  VEIL_ASSIGN_OR_RETURN(std::vector<std::string> files, ListImages(o.images_dir));
  // An even spread over the (name-sorted, hence age-sorted) files.
  std::vector<std::string> pick;
  const size_t step = std::max<size_t>(1, files.size() / std::max(1, count));
  for (size_t i = 0; i < files.size() && static_cast<int>(pick.size()) < count; i += step) pick.push_back(files[i]);
  VEIL_ASSIGN_OR_RETURN(Engines eng, MakeEngines(o));
  const engine::Aligner align128({.output_size = kUtkCropSize, .padding = 0.25f});
  const engine::Aligner align150({.output_size = engine::Recognizer::kInputSize, .padding = 0.25f});
  std::vector<float> fit_chip, fit_det, fit_chip_where_det, desc_dist, lm_diff;
  int detected = 0;
  double t_chip = 0, t_det = 0;
  engine::ImageLimits limits;
  limits.silence_decoder_stderr = true;
  for (const auto& name : pick) {
    VEIL_ASSIGN_OR_RETURN(cv::Mat img, engine::ReadImage(o.images_dir + "/" + name, limits));
    auto t0 = std::chrono::steady_clock::now();
    VEIL_ASSIGN_OR_RETURN(Landmarked chip, Landmarks(*eng.detector, img, LandmarkSource::kChip));
    auto t1 = std::chrono::steady_clock::now();
    VEIL_ASSIGN_OR_RETURN(Landmarked det, Landmarks(*eng.detector, img, LandmarkSource::kDetect));
    auto t2 = std::chrono::steady_clock::now();
    t_chip += std::chrono::duration<double>(t1 - t0).count();
    t_det += std::chrono::duration<double>(t2 - t1).count();
    VEIL_ASSIGN_OR_RETURN(auto ac, align128.Align(img, chip.face));
    fit_chip.push_back(FitError(ac, align128));
    if (!det.ok) continue;
    ++detected;
    VEIL_ASSIGN_OR_RETURN(auto ad, align128.Align(img, det.face));
    fit_det.push_back(FitError(ad, align128));
    fit_chip_where_det.push_back(fit_chip.back());
    // Landmark disagreement, normalized by the inter-ocular distance of the detector's landmarks.
    const auto e = engine::FivePointsFrom68(det.face.landmarks);
    const double iod = cv::norm(e[0] - e[1]);
    double s = 0;
    for (int i = 0; i < 68; ++i) s += cv::norm(det.face.landmarks[i] - chip.face.landmarks[i]);
    lm_diff.push_back(static_cast<float>(s / 68 / std::max(1.0, iod)));
    VEIL_ASSIGN_OR_RETURN(auto c1, align150.Align(img, chip.face));
    VEIL_ASSIGN_OR_RETURN(auto c2, align150.Align(img, det.face));
    VEIL_ASSIGN_OR_RETURN(auto d, eng.recognizer->DescribeAligned({c1.image, c2.image}));
    desc_dist.push_back(engine::DescriptorDistance(d[0], d[1]));
  }
  const int n = static_cast<int>(pick.size());
  Log(o, "compare: " + std::to_string(n) + " images, tiny detector (input " + std::to_string(o.tiny_input_size) +
             ") found a face in " + std::to_string(detected));
  Log(o, "compare: seconds/image chip " + std::to_string(t_chip / n) + ", detector+landmarks " + std::to_string(t_det / n));
  Log(o, "compare: template fit error, chip (all):          " + Pct(fit_chip));
  Log(o, "compare: template fit error, chip (where detected): " + Pct(fit_chip_where_det));
  Log(o, "compare: template fit error, detector:              " + Pct(fit_det));
  Log(o, "compare: mean landmark difference / inter-ocular:   " + Pct(lm_diff));
  Log(o, "compare: descriptor distance chip vs detector:      " + Pct(desc_dist));
  return Status::Ok();
}

}  // namespace veil::train
