// veil detect IMAGE... : every face with its box, score and landmarks, as text or JSON, and
// optionally drawn onto a copy of the image.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>

#include "cli.h"
#include "commands.h"
#include "veil/engine/face_detector.h"
#include "veil/engine/image_io.h"

namespace veil::cli {
namespace {

constexpr const char* kUsage =
    "usage: veil detect IMAGE... [--json] [--draw OUT.png] [--detector ssd|tiny]\n"
    "                   [--score-threshold 0.5] [--min-face-size 0] [--max-input-side 4096]\n"
    "                   [--no-landmarks] [--upright-only] [--models DIR]\n"
    "Finds every face: box (x y width height, pixels), score, 5 and 68 landmarks.\n"
    "  --upright-only    look only at the image as it is; by default faces lying on their side or upside\n"
    "                    down are found too (the image turned by 90, 180 and 270 degrees, as veil\n"
    "                    anonymize does for photos; 4x the time)\n"
    "  --detector        ssd (default; accurate, for photos) or tiny (fast, for the camera)\n"
    "  --draw OUT.png    also write the image with boxes and landmarks drawn (one IMAGE only)\n"
    "  --models DIR      face-api model folder (default: $VEIL_FACE_API_DIR or the build's .cache)\n"
    "An image without faces prints an empty result; an unreadable one is an error (non-zero exit).\n";

nlohmann::json PointsJson(const cv::Point2f* p, size_t n) {
  nlohmann::json a = nlohmann::json::array();
  for (size_t i = 0; i < n; ++i) a.push_back({p[i].x, p[i].y});
  return a;
}

void PrintText(const std::string& path, const cv::Mat& image, const std::vector<engine::Face>& faces) {
  std::printf("%s: %dx%d, %zu face%s\n", OneLine(path).c_str(), image.cols, image.rows, faces.size(), faces.size() == 1 ? "" : "s");
  for (size_t i = 0; i < faces.size(); ++i) {
    const engine::Face& f = faces[i];
    std::printf("  face %zu: box %.1f %.1f %.1f %.1f score %.4f\n", i, f.box.x, f.box.y, f.box.width, f.box.height,
                f.score);
    if (!f.has_landmarks) continue;
    std::printf("    landmarks5:");
    for (const auto& p : f.landmarks5) std::printf(" %.1f,%.1f", p.x, p.y);
    std::printf("\n    landmarks68:");
    for (const auto& p : f.landmarks) std::printf(" %.1f,%.1f", p.x, p.y);
    std::printf("\n");
  }
}

Status Draw(const cv::Mat& image, const std::vector<engine::Face>& faces, const std::string& out) {
  cv::Mat canvas = image.clone();
  const int thick = std::max(1, std::max(image.cols, image.rows) / 500);
  for (const engine::Face& f : faces) {
    cv::rectangle(canvas, f.box, cv::Scalar(0, 255, 0), thick);
    char label[32];
    std::snprintf(label, sizeof label, "%.2f", f.score);
    cv::putText(canvas, label, cv::Point(static_cast<int>(f.box.x), static_cast<int>(f.box.y) - 4 * thick),
                cv::FONT_HERSHEY_SIMPLEX, 0.5 * thick, cv::Scalar(0, 255, 0), thick);
    if (!f.has_landmarks) continue;
    for (const auto& p : f.landmarks) cv::circle(canvas, p, thick + 1, cv::Scalar(0, 200, 255), cv::FILLED);
    for (const auto& p : f.landmarks5) cv::circle(canvas, p, 2 * thick + 1, cv::Scalar(255, 0, 255), thick);
  }
  std::vector<uchar> bytes;
  const std::string ext = out.size() >= 4 ? out.substr(out.rfind('.') == std::string::npos ? 0 : out.rfind('.')) : "";
  try {
    if (!cv::imencode(ext.empty() ? ".png" : ext, canvas, bytes)) return InvalidArgumentError("cannot encode " + out);
  } catch (const cv::Exception&) {
    return InvalidArgumentError("--draw: unsupported image extension in " + out + " (use .png or .jpg)");
  }
  return WriteFileAtomic(out, std::string(bytes.begin(), bytes.end()), /*overwrite=*/true);
}

}  // namespace

int RunDetect(int argc, char** argv) {
  Args args(argc, argv, {"--json", "--no-landmarks", "--upright-only", "--help"});
  if (args.Flag("--help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const bool json = args.Flag("--json");
  auto draw = args.Get("--draw");
  engine::FaceDetectorParams params;
  params.models_dir = args.GetOr("--models", "");
  const std::string detector = args.GetOr("--detector", "ssd");
  if (detector == "tiny") {
    params.kind = engine::DetectorKind::kTiny;
  } else if (detector != "ssd") {
    return Fail(InvalidArgumentError("--detector must be ssd or tiny"));
  }
  params.with_landmarks = !args.Flag("--no-landmarks");
  const bool upright_only = args.Flag("--upright-only");
  auto score = args.GetNumber("--score-threshold", params.score_threshold, 0, 1);
  if (!score.ok()) return Fail(score.status());
  params.score_threshold = static_cast<float>(*score);
  auto min_size = args.GetInt("--min-face-size", 0, 0, 100000);
  if (!min_size.ok()) return Fail(min_size.status());
  auto max_side = args.GetInt("--max-input-side", params.max_input_side, 0, 100000);
  if (!max_side.ok()) return Fail(max_side.status());
  params.min_face_size = static_cast<int>(*min_size);
  params.max_input_side = static_cast<int>(*max_side);
  if (Status st = args.parse_status(); !st.ok()) return Fail(st);
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  const auto& images = args.positionals();
  if (images.empty()) {
    std::fputs(kUsage, stderr);
    return Fail(InvalidArgumentError("veil detect needs at least one IMAGE"));
  }
  if (draw && images.size() != 1) return Fail(InvalidArgumentError("--draw takes exactly one IMAGE"));

  auto detector_or = engine::FaceDetector::Create(params);
  if (!detector_or.ok()) return Fail(detector_or.status());
  nlohmann::json doc = nlohmann::json::array();
  engine::ImageLimits limits;
  limits.silence_decoder_stderr = true;  // errors come back as one line through Fail()
  for (const std::string& path : images) {
    auto image = engine::ReadImage(path, limits);
    if (!image.ok()) return Fail(image.status());
    auto faces = upright_only ? (*detector_or)->Detect(*image) : engine::DetectAtQuarterTurns(**detector_or, *image);
    if (!faces.ok()) return Fail(faces.status().WithContext(path));
    if (json) {
      nlohmann::json jf = nlohmann::json::array();
      for (const engine::Face& f : *faces) {
        nlohmann::json j = {{"box", {f.box.x, f.box.y, f.box.width, f.box.height}}, {"score", f.score}};
        if (f.has_landmarks) {
          j["landmarks5"] = PointsJson(f.landmarks5.data(), 5);
          j["landmarks68"] = PointsJson(f.landmarks.data(), 68);
        }
        jf.push_back(j);
      }
      doc.push_back({{"image", path}, {"width", image->cols}, {"height", image->rows}, {"faces", jf}});
    } else {
      PrintText(path, *image, *faces);
    }
    if (draw) {
      if (Status st = Draw(*image, *faces, *draw); !st.ok()) return Fail(st);
    }
  }
  if (json) std::printf("%s\n", doc.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace).c_str());  // as PrintJson, one line
  return 0;
}

}  // namespace veil::cli
