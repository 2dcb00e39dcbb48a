// veil eval: what the identity models do, measured with the frozen recognizer, on the held-out
// UTKFace faces (prepared by veil-train-prep) or on any folder of photos.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "cli.h"
#include "commands.h"
#include "eval_attack.h"
#include "eval_detail.h"
#include "output.h"
#include "veil/engine/aligner.h"
#include "veil/engine/face_detector.h"
#include "veil/engine/face_renderer.h"
#include "veil/engine/faceres.h"
#include "veil/engine/identity_flow.h"
#include "veil/engine/image_io.h"
#include "veil/engine/pipeline.h"
#include "veil/engine/pseudonym_reader.h"
#include "veil/engine/recognizer.h"
#include "veil/keys/fs.h"
#include "veil/keys/secret.h"

namespace veil::cli {
namespace {

namespace fs = std::filesystem;
using engine::Descriptor;

const char* kUsage =
    "usage: veil eval (--dataset DIR [--split holdout] | --images DIR) [--limit N] [--sheet OUT.png]\n"
    "                 [--flow F --encoder E --generator G] [--identity-gain G]\n"
    "                 [--readback-noise-ratio R] [--reader FILE|none] [--json]\n"
    "  --dataset: a folder written by veil-train-prep (default split: the 1,000 held-out faces)\n"
    "  --images:  any photos; the largest face of each is aligned and used\n"
    "  Reports, with the face-api recognizer (Euclidean descriptor distance; 0.6 = 'same person'):\n"
    "  original -> anonymized (key A); keyed restore without payload; wrong-key restore (key B);\n"
    "  key diversity (A vs B); same-person consistency (flip, 90% crop, JPEG q40 of one face);\n"
    "  plausibility (nearest real identity); attributes kept: how far the 68 landmarks of the anonymized\n"
    "  crop lie from the original's (pose, expression; mean over the points, px of 128); photos: whether\n"
    "  the SSD detector still finds the face once\n"
    "  the anonymized crop is pasted back; reconstruction PSNR/SSIM of G(E(x), id(x)).\n"
    "  Re-identification (rank 1 among all the originals evaluated) of anonymized and restored faces,\n"
    "  by the face-api recognizer and by a second one Veil never uses (human's FaceRes, when\n"
    "  tools/fetch_human.sh has fetched it; its same/different threshold is the equal-error point of\n"
    "  same-face variants vs different faces of this very set; FaceRes also reads the true-code\n"
    "  restore and G's plain reconstruction, to tell what G can draw from what restore reads back).\n"
    "  An informed attacker (knows Veil's models, not the key) learns a linear guess of the original\n"
    "  from anonymized faces on the even faces (pairs under its own key B, and, stronger, pairs under\n"
    "  the victims' key A) and re-identifies the odd ones (with --images, one person's photos can\n"
    "  fall in both halves, which flatters the attacker). The pipeline's identity check\n"
    "  (PipelineParams::verify_distance): how many faces it releases at the generator's gain, after\n"
    "  a stronger push, or pixelates.\n"
    "  --sheet writes a contact sheet: original | key A | key B | restored | wrong key.\n"
    "  The flow and the reader default to the files next to the encoder, as in the pipeline.\n"
    "  Faces are rendered with SteerIdentity at the generator file's identity_gain, as the pipeline\n"
    "  does; --identity-gain overrides it (to calibrate a new generator). Keyed restore denoises the\n"
    "  read-back pseudonym (IdentityFlow::Denoise) with the file's readback_noise_ratio before the\n"
    "  inverse flow; --readback-noise-ratio overrides it (0: plain inverse). The pseudonym is read back\n"
    "  by the pseudonym reader next to the encoder (veil-reader-v1.veilmodel) when it was trained for\n"
    "  this generator, as the pipeline does (denoised with the reader's own ratio unless\n"
    "  --readback-noise-ratio is given), else by the recognizer; --reader FILE names one (it must\n"
    "  match the generator), --reader none measures the recognizer's read-back. 'restore with the true\n"
    "  code' re-renders with the original's own code: the ceiling a perfect read-back would reach.\n";

const engine::AlignerParams kEvalAligner{128, 0.25f, 0.1f};

struct Face {
  cv::Mat crop;  // 128x128 BGR aligned
  Descriptor code;
  std::string photo;             // --images: the photo it came from (empty for dataset crops)
  engine::AlignedFace aligned;   // --images: its alignment in that photo
  cv::Rect2f box;                // --images: its detector box
};

StatusOr<std::vector<Face>> LoadDataset(const std::string& dir, const std::string& split, size_t limit) {
  VEIL_ASSIGN_OR_RETURN(std::string index, keys::ReadFile(dir + "/index.tsv", 64u << 20));
  if (!keys::PathExists(dir + "/DONE")) return FailedPreconditionError(dir + " is incomplete (no DONE file)");
  std::istringstream lines(index);
  std::string line;
  std::getline(lines, line);  // header
  std::vector<size_t> picked;
  size_t n = 0;
  while (std::getline(lines, line)) {
    std::istringstream f(line);
    std::string idx, file, sp;
    std::getline(f, idx, '\t');
    std::getline(f, file, '\t');
    std::getline(f, sp, '\t');
    if (sp == split && picked.size() < limit) picked.push_back(n);
    ++n;
  }
  const size_t crop_bytes = 128 * 128 * 3;
  std::ifstream crops(dir + "/crops128.u8", std::ios::binary), desc(dir + "/desc.f32", std::ios::binary);
  if (!crops || !desc) return NotFoundError("dataset files missing in " + dir);
  std::vector<Face> out;
  for (size_t i : picked) {
    Face face;
    face.crop.create(128, 128, CV_8UC3);
    crops.seekg(static_cast<std::streamoff>(i * crop_bytes));
    desc.seekg(static_cast<std::streamoff>(i * 128 * sizeof(float)));
    if (!crops.read(reinterpret_cast<char*>(face.crop.data), crop_bytes) ||
        !desc.read(reinterpret_cast<char*>(face.code.data()), 128 * sizeof(float))) {
      return DataLossError("dataset files in " + dir + " are shorter than its index");
    }
    out.push_back(std::move(face));
  }
  return out;
}

StatusOr<std::vector<Face>> LoadImages(const std::string& dir, size_t limit, engine::Recognizer& rec) {
  VEIL_ASSIGN_OR_RETURN(auto detector, engine::FaceDetector::Create({}));
  engine::Aligner aligner(kEvalAligner);
  std::vector<fs::path> paths;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    auto x = e.path().extension().string();
    if (x == ".jpg" || x == ".jpeg" || x == ".png") paths.push_back(e.path());
  }
  std::sort(paths.begin(), paths.end());
  std::vector<Face> out;
  for (const auto& p : paths) {
    if (out.size() >= limit) break;
    auto img = engine::ReadImage(p.string());
    if (!img.ok()) continue;
    VEIL_ASSIGN_OR_RETURN(auto faces, detector->Detect(*img));
    for (const auto& f : faces) {  // every face of the photo
      if (out.size() >= limit || !f.has_landmarks) continue;
      VEIL_ASSIGN_OR_RETURN(auto aligned, aligner.Align(*img, f));
      VEIL_ASSIGN_OR_RETURN(auto codes, rec.DescribeFaces(*img, {f}));
      out.push_back({aligned.image, codes[0], p.string(), aligned, f.box});
    }
  }
  if (out.empty()) return NotFoundError("no faces found in " + dir);
  return out;
}

keys::SecretBytes EvalKey(const char* name) {
  std::string digest = keys::Blake2b256(std::string("veil-eval-key:") + name);
  return keys::SecretBytes::Copy(digest.data(), digest.size());
}

double Psnr(const cv::Mat& a, const cv::Mat& b) {
  double mse = cv::norm(a, b, cv::NORM_L2SQR) / static_cast<double>(a.total() * a.channels());
  return mse <= 1e-12 ? 99.0 : 10.0 * std::log10(255.0 * 255.0 / mse);
}

// Mean SSIM over the three channels (Gaussian window 11, sigma 1.5; Wang et al. 2004 constants).
double Ssim(const cv::Mat& a8, const cv::Mat& b8) {
  const double c1 = 6.5025, c2 = 58.5225;
  cv::Mat a, b;
  a8.convertTo(a, CV_64F);
  b8.convertTo(b, CV_64F);
  auto blur = [](const cv::Mat& m) {
    cv::Mat o;
    cv::GaussianBlur(m, o, cv::Size(11, 11), 1.5);
    return o;
  };
  cv::Mat mu_a = blur(a), mu_b = blur(b);
  cv::Mat s_a = blur(a.mul(a)) - mu_a.mul(mu_a), s_b = blur(b.mul(b)) - mu_b.mul(mu_b), s_ab = blur(a.mul(b)) - mu_a.mul(mu_b);
  cv::Mat num = (2 * mu_a.mul(mu_b) + c1).mul(2 * s_ab + c2);
  cv::Mat den = (mu_a.mul(mu_a) + mu_b.mul(mu_b) + c1).mul(s_a + s_b + c2);
  cv::Mat map;
  cv::divide(num, den, map);
  cv::Scalar m = cv::mean(map);
  return (m[0] + m[1] + m[2]) / 3.0;
}

// Fraction of queries whose nearest gallery item is their own (queries[i] belongs to gallery[i]).
template <typename D, typename F>
double RankOneRate(const std::vector<D>& queries, const std::vector<D>& gallery, F&& distance) {
  size_t hits = 0;
  for (size_t i = 0; i < queries.size(); ++i) {
    size_t best = 0;
    double best_d = 1e18;
    for (size_t j = 0; j < gallery.size(); ++j) {
      const double d = distance(queries[i], gallery[j]);
      if (d < best_d) best_d = d, best = j;
    }
    hits += best == i;
  }
  return queries.empty() ? 0.0 : static_cast<double>(hits) / queries.size();
}

// The threshold where the fraction of `same` above it equals the fraction of `different` below it.
double EqualErrorThreshold(std::vector<double> same, std::vector<double> different, double* error) {
  std::sort(same.begin(), same.end());
  std::sort(different.begin(), different.end());
  // Scan thresholds over [0, 2]; where several are equally good (separable sets: a whole interval
  // with no error), take the middle of that interval.
  double best_gap = 1e9, first = 0, last = 0;
  *error = 1;
  for (int k = 0; k <= 2000; ++k) {
    const double t = 2.0 * k / 2000;
    const double frr = 1.0 - static_cast<double>(std::upper_bound(same.begin(), same.end(), t) - same.begin()) / same.size();
    const double far = static_cast<double>(std::upper_bound(different.begin(), different.end(), t) - different.begin()) /
                       different.size();
    const double gap = std::abs(frr - far) + 1e-9 * std::abs(frr + far);
    if (gap < best_gap - 1e-12) {
      best_gap = gap, first = last = t, *error = (frr + far) / 2;
    } else if (std::abs(gap - best_gap) <= 1e-12) {
      last = t;
    }
  }
  return (first + last) / 2;
}

// A generator calibration value: the file's, or the command line's when given (checked by `check`).
StatusOr<float> Override(const std::string& option, const std::string& text, float from_file,
                         Status (*check)(double, const std::string&)) {
  if (text.empty()) return from_file;
  VEIL_ASSIGN_OR_RETURN(double v, ParseNumber(text, option, check));
  return static_cast<float>(v);
}

// The SHA-256 of the file the renderer loaded for `role` ("encoder" or "generator").
std::string LoadedSha256(const engine::FaceRenderer& renderer, const std::string& role) {
  for (const auto& m : renderer.models()) {
    if (m.role == role) return m.sha256_hex;
  }
  return "";
}

struct Dist {
  std::vector<double> v;
  nlohmann::json Summary(double threshold, bool above) const {
    std::vector<double> s = v;
    std::sort(s.begin(), s.end());
    double mean = 0;
    size_t beyond = 0;
    for (double x : s) {
      mean += x;
      beyond += above ? x > threshold : x < threshold;
    }
    auto pct = [&](double q) { return s.empty() ? 0.0 : s[std::min(s.size() - 1, static_cast<size_t>(q * (s.size() - 1)))]; };
    return {{"n", s.size()}, {"mean", s.empty() ? 0 : mean / s.size()}, {"p5", pct(0.05)}, {"median", pct(0.5)},
            {"p95", pct(0.95)}, {above ? "fraction_above" : "fraction_below", s.empty() ? 0 : double(beyond) / s.size()},
            {"threshold", threshold}};
  }
};

// What the pipeline's identity check would do to these faces: `steps` holds, per face, the gain
// step that released it (0: the generator's gain) or -1 (pixelated).
nlohmann::json IdentityCheckReport(double distance, const std::vector<double>& steps, const Dist& released) {
  size_t first = 0, pushed = 0, pixelated = 0;
  for (double s : steps) {
    first += s == 0;
    pushed += s > 0;
    pixelated += s < 0;
  }
  const double n = steps.empty() ? 1.0 : static_cast<double>(steps.size());
  return {{"distance", distance},
          {"released_at_generator_gain", first / n},
          {"released_after_push", pushed / n},
          {"pixelated", pixelated / n},
          {"released", released.Summary(distance, true)}};
}

int Eval(int argc, char** argv) {
  Args args(argc, argv, {"--json", "--help"});
  if (args.Flag("--help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  auto dataset = args.Get("--dataset");
  auto images = args.Get("--images");
  const std::string split = args.GetOr("--split", "holdout");
  auto limit = args.GetInt("--limit", 1000, 1, 1000000);
  auto sheet = args.Get("--sheet");
  const bool json = args.Flag("--json");
  engine::FaceRendererParams rp;
  rp.encoder_path = args.GetOr("--encoder", "");
  rp.generator_path = args.GetOr("--generator", "");
  std::string flow_path = args.GetOr("--flow", "");
  const std::string gain_arg = args.GetOr("--identity-gain", "");
  const std::string noise_arg = args.GetOr("--readback-noise-ratio", "");
  const std::string reader_arg = args.GetOr("--reader", "");
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  if (!limit.ok()) return Fail(limit.status());
  if (static_cast<bool>(dataset) == static_cast<bool>(images)) return Fail(InvalidArgumentError("give --dataset DIR or --images DIR"));
  if (sheet && keys::PathExists(*sheet)) return Fail(AlreadyExistsError(*sheet + " exists; not overwriting it"));  // before hours of work
  const bool flow_defaulted = flow_path.empty();
  if (flow_defaulted) flow_path = engine::DefaultIdentityFlowPath(rp.encoder_path);  // as the pipeline pairs them

  auto rec = engine::Recognizer::Create({});
  if (!rec.ok()) return Fail(rec.status());
  auto flow = engine::IdentityFlow::Load(flow_path);
  if (!flow.ok() && flow.status().code() == StatusCode::kNotFound && flow_defaulted) {
    return Fail(NotFoundError("no identity flow next to the encoder: " + flow_path + " (pass --flow FILE)"));
  }
  if (!flow.ok()) return Fail(flow.status());
  auto renderer = engine::FaceRenderer::Create(rp);
  if (!renderer.ok()) return Fail(renderer.status());
  // The pseudonym reader, as the pipeline picks it (PseudonymReader::LoadIfFor), or as --reader says.
  std::unique_ptr<engine::PseudonymReader> reader;
  if (reader_arg != "none") {
    const std::string gen_sha = LoadedSha256(**renderer, "generator");
    const std::string path = !reader_arg.empty() ? reader_arg : engine::DefaultPseudonymReaderPath(rp.encoder_path);
    auto r = engine::PseudonymReader::LoadIfFor(path, gen_sha, "");
    if (!r.ok()) return Fail(r.status());
    if (!*r && !reader_arg.empty()) {
      return Fail(keys::PathExists(path) ? InvalidArgumentError("--reader " + path + " was trained for another generator")
                                         : NotFoundError("--reader " + path + ": no such file"));
    }
    reader = std::move(*r);
  }
  auto gain = Override("--identity-gain", gain_arg, (*renderer)->IdentityGain(), engine::CheckIdentityGain);
  if (!gain.ok()) return Fail(gain.status());
  auto noise_ratio = Override("--readback-noise-ratio", noise_arg, (*renderer)->ReadBackNoiseRatio(), engine::CheckReadBackNoiseRatio);
  if (!noise_ratio.ok()) return Fail(noise_ratio.status());
  auto detector = engine::FaceDetector::Create({});  // SSD, face-api's default score threshold
  if (!detector.ok()) return Fail(detector.status());
  engine::Aligner aligner(kEvalAligner);
  // Photos only: the rendered face pasted back into its photo through the aligner's soft mask, as
  // the pipeline does; is a face still found there (SSD box overlapping the original's, IoU > 0.5)?
  auto found_in_photo = [&](const Face& face, const cv::Mat& rendered) -> StatusOr<bool> {
    VEIL_ASSIGN_OR_RETURN(cv::Mat photo, engine::ReadImage(face.photo));
    VEIL_RETURN_IF_ERROR(aligner.PasteBack(rendered, face.aligned, photo));
    VEIL_ASSIGN_OR_RETURN(auto boxes, (*detector)->DetectBoxes(photo));
    for (const auto& b : boxes) {
      if (engine::BoxIou(b.box, face.box) > 0.5f) return true;
    }
    return false;
  };
  auto second = engine::FaceResRecognizer::Create({});  // optional: measured when installed
  std::string second_missing;
  if (!second.ok()) second_missing = second.status().message();
  auto faces = dataset ? LoadDataset(*dataset, split, static_cast<size_t>(*limit))
                       : LoadImages(*images, static_cast<size_t>(*limit), **rec);
  if (!faces.ok()) return Fail(faces.status());

  const keys::SecretBytes ka = EvalKey("A"), kb = EvalKey("B");
  Dist anon, restore, wrong, diversity, consistency, flow_anon, carried, inverted, nearest_real, real_nn;
  Dist ceiling;  // keyed restore re-rendered with the true code (a perfect read-back)
  Dist carry_share, carry_rest;  // read-back = z + share * (pseudonym - z) + rest (least squares)
  // The identity check: per face the gain step that released it (0: the generator's own gain; -1:
  // none, pixelated), and the released faces' distances.
  const double check_distance = engine::PipelineParams().verify_distance;
  Dist check_step, check_released;
  std::vector<double> psnr, ssim;
  std::vector<double> detail_x, detail_rec, detail_anon;  // DetailEnergy of originals, G(E(x), id(x)), key A
  Dist found;  // photos: 1 when the detector still finds the anonymized face, else 0
  // Pose and expression kept: the mean shift of the 68 landmarks from the original crop to the
  // anonymized one (key A) and, as the baseline of rendering alone, to G(E(x), id(x)); px of 128.
  Dist landmark_shift, landmark_shift_rec;
  std::vector<cv::Mat> sheet_rows;
  auto describe = [&](const std::vector<cv::Mat>& crops) { return (*rec)->DescribeAligned(crops); };
  const size_t batch = 8;
  std::vector<Descriptor> all_real, all_pseudo, all_pseudo_b, all_restored;
  // FaceRes also reads the true-code restore and G's plain reconstruction: does G draw an identity
  // that a recognizer it never trained against sees, even at best?
  std::vector<engine::FaceResDescriptor> fr_orig, fr_anon, fr_rest, fr_wrong, fr_ceil, fr_recon;
  Dist fr_anon_d, fr_same_d, fr_diff_d, fr_rest_d, fr_wrong_d, fr_ceil_d, fr_recon_d;
  for (size_t s = 0; s < faces->size(); s += batch) {
    std::vector<cv::Mat> crops;
    std::vector<Descriptor> z;
    for (size_t i = s; i < std::min(faces->size(), s + batch); ++i) {
      crops.push_back((*faces)[i].crop);
      z.push_back((*faces)[i].code);
    }
    auto za = (*flow)->ForwardBatch(z, ka);
    auto zb = (*flow)->ForwardBatch(z, kb);
    if (!za.ok() || !zb.ok()) return Fail(za.ok() ? zb.status() : za.status());
    auto steer = [&](const std::vector<Descriptor>& src, const std::vector<Descriptor>& dst) {
      std::vector<Descriptor> t;
      for (size_t j = 0; j < src.size(); ++j) t.push_back(engine::SteerIdentity(src[j], dst[j], *gain));
      return t;
    };
    auto xa = (*renderer)->Render(crops, steer(z, *za));
    auto xb = (*renderer)->Render(crops, steer(z, *zb));
    auto xr0 = (*renderer)->Render(crops, z);
    if (!xa.ok() || !xb.ok() || !xr0.ok()) return Fail(!xa.ok() ? xa.status() : !xb.ok() ? xb.status() : xr0.status());
    auto da = describe(*xa);
    auto db = describe(*xb);
    if (!da.ok() || !db.ok()) return Fail(da.ok() ? db.status() : da.status());
    // The pipeline's identity check (PipelineParams::verify_distance) on these crops: a face read
    // back within the distance is rendered again at the next gain; what is released at last?
    {
      std::vector<size_t> open;
      for (size_t j = 0; j < crops.size(); ++j) {
        if (engine::DescriptorDistance((*da)[j], z[j]) > check_distance) {
          check_step.v.push_back(0);
          check_released.v.push_back(engine::DescriptorDistance((*da)[j], z[j]));
        } else {
          open.push_back(j);
        }
      }
      for (size_t step = engine::NextIdentityCheckStep(*gain, 0); step < std::size(engine::kIdentityCheckGainSteps) && !open.empty();
           step = engine::NextIdentityCheckStep(*gain, step)) {
        const float pushed = engine::IdentityCheckGain(*gain, step);
        std::vector<cv::Mat> again_crops;
        std::vector<Descriptor> again_ids;
        for (size_t j : open) {
          again_crops.push_back(crops[j]);
          again_ids.push_back(engine::SteerIdentity(z[j], (*za)[j], pushed));
        }
        auto rendered = (*renderer)->Render(again_crops, again_ids);
        if (!rendered.ok()) return Fail(rendered.status());
        auto back = describe(*rendered);
        if (!back.ok()) return Fail(back.status());
        std::vector<size_t> still;
        for (size_t k = 0; k < open.size(); ++k) {
          const double d = engine::DescriptorDistance((*back)[k], z[open[k]]);
          if (d > check_distance) {
            check_step.v.push_back(static_cast<double>(step));
            check_released.v.push_back(d);
          } else {
            still.push_back(open[k]);
          }
        }
        open = std::move(still);
      }
      for (size_t k = 0; k < open.size(); ++k) check_step.v.push_back(-1);  // pixelated
    }
    StatusOr<std::vector<Descriptor>> read = *da;
    if (reader) read = reader->Read(*xa);
    if (!read.ok()) return Fail(read.status());
    auto denoised = (*flow)->Denoise(*read, reader && noise_arg.empty() ? reader->DenoiseRatio() : *noise_ratio);
    if (!denoised.ok()) return Fail(denoised.status());
    auto zr = (*flow)->InverseBatch(*denoised, ka);
    auto zw = (*flow)->InverseBatch(*denoised, kb);
    if (!zr.ok() || !zw.ok()) return Fail(zr.ok() ? zw.status() : zr.status());
    auto xr = (*renderer)->Render(*xa, steer(*da, *zr));
    auto xw = (*renderer)->Render(*xa, steer(*da, *zw));
    if (!xr.ok() || !xw.ok()) return Fail(xr.ok() ? xw.status() : xr.status());
    auto xc = (*renderer)->Render(*xa, steer(*da, z));
    if (!xc.ok()) return Fail(xc.status());
    auto dr = describe(*xr);
    auto dw = describe(*xw);
    auto dc = describe(*xc);
    if (!dr.ok() || !dw.ok() || !dc.ok()) return Fail(!dr.ok() ? dr.status() : !dw.ok() ? dw.status() : dc.status());
    // Same person, other "photos": flip, 90 % crop, JPEG q40 of the same face, anonymized under A.
    std::vector<cv::Mat> variants;
    for (const auto& c : crops) {
      cv::Mat flipped, cropped, jpeg;
      cv::flip(c, flipped, 1);
      cv::resize(c(cv::Rect(6, 6, 116, 116)), cropped, c.size(), 0, 0, cv::INTER_LINEAR);
      std::vector<uchar> buf;
      cv::imencode(".jpg", c, buf, {cv::IMWRITE_JPEG_QUALITY, 40});
      jpeg = cv::imdecode(buf, cv::IMREAD_COLOR);
      variants.insert(variants.end(), {flipped, cropped, jpeg});
    }
    auto dv = describe(variants);
    if (!dv.ok()) return Fail(dv.status());
    std::vector<cv::Mat> vcrops;
    for (size_t j = 0; j < variants.size(); ++j) vcrops.push_back(variants[j]);
    auto vza = (*flow)->ForwardBatch(*dv, ka);
    if (!vza.ok()) return Fail(vza.status());
    auto vxa = (*renderer)->Render(vcrops, steer(*dv, *vza));
    if (!vxa.ok()) return Fail(vxa.status());
    auto dva = describe(*vxa);
    if (!dva.ok()) return Fail(dva.status());
    if (second.ok()) {
      auto fo = (*second)->Describe(crops);
      auto fa = (*second)->Describe(*xa);
      auto fr = (*second)->Describe(*xr);
      auto fw = (*second)->Describe(*xw);
      auto fc = (*second)->Describe(*xc);
      auto f0 = (*second)->Describe(*xr0);
      auto fv = (*second)->Describe(variants);
      for (const auto* r : {&fo, &fa, &fr, &fw, &fc, &f0, &fv})
        if (!r->ok()) return Fail(r->status());
      for (size_t j = 0; j < crops.size(); ++j) {
        fr_orig.push_back((*fo)[j]);
        fr_anon.push_back((*fa)[j]);
        fr_rest.push_back((*fr)[j]);
        fr_wrong.push_back((*fw)[j]);
        fr_ceil.push_back((*fc)[j]);
        fr_recon.push_back((*f0)[j]);
        for (int k = 0; k < 3; ++k) fr_same_d.v.push_back(engine::FaceResDistance((*fv)[3 * j + k], (*fo)[j]));
      }
    }
    for (size_t j = 0; j < crops.size(); ++j) {
      anon.v.push_back(engine::DescriptorDistance((*da)[j], z[j]));
      diversity.v.push_back(engine::DescriptorDistance((*da)[j], (*db)[j]));
      restore.v.push_back(engine::DescriptorDistance((*dr)[j], z[j]));
      ceiling.v.push_back(engine::DescriptorDistance((*dc)[j], z[j]));
      wrong.v.push_back(engine::DescriptorDistance((*dw)[j], z[j]));
      flow_anon.v.push_back(engine::DescriptorDistance((*za)[j], z[j]));
      carried.v.push_back(engine::DescriptorDistance((*da)[j], (*za)[j]));
      {
        double num = 0, den = 0;
        for (int k = 0; k < 128; ++k) {
          num += (double((*da)[j][k]) - z[j][k]) * (double((*za)[j][k]) - z[j][k]);
          den += (double((*za)[j][k]) - z[j][k]) * (double((*za)[j][k]) - z[j][k]);
        }
        const double share = den > 0 ? num / den : 0;
        double rest = 0;
        for (int k = 0; k < 128; ++k) {
          const double r = (*da)[j][k] - z[j][k] - share * ((*za)[j][k] - z[j][k]);
          rest += r * r;
        }
        carry_share.v.push_back(share);
        carry_rest.v.push_back(std::sqrt(rest));
      }
      inverted.v.push_back(engine::DescriptorDistance((*zr)[j], z[j]));
      for (int k = 0; k < 3; ++k) consistency.v.push_back(engine::DescriptorDistance((*dva)[3 * j + k], (*da)[j]));
      {
        // The 68-point net on the same box of both crops (the aligned face with some margin).
        const cv::Rect box(12, 12, 104, 104);
        auto lo = (*detector)->LandmarksForCrops(crops[j], {box});
        auto la = (*detector)->LandmarksForCrops((*xa)[j], {box});
        auto lr = (*detector)->LandmarksForCrops((*xr0)[j], {box});
        for (const auto* l : {&lo, &la, &lr})
          if (!l->ok()) return Fail(l->status());
        double shift = 0, shift_rec = 0;
        for (size_t k = 0; k < 68; ++k) {
          shift += cv::norm((*lo)[0][k] - (*la)[0][k]);
          shift_rec += cv::norm((*lo)[0][k] - (*lr)[0][k]);
        }
        landmark_shift.v.push_back(shift / 68.0);
        landmark_shift_rec.v.push_back(shift_rec / 68.0);
      }
      if (const Face& face = (*faces)[s + j]; !face.photo.empty()) {
        auto f = found_in_photo(face, (*xa)[j]);
        if (!f.ok()) return Fail(f.status());
        found.v.push_back(*f ? 1.0 : 0.0);
      }
      psnr.push_back(Psnr((*xr0)[j], crops[j]));
      ssim.push_back(Ssim((*xr0)[j], crops[j]));
      detail_x.push_back(DetailEnergy(crops[j]));
      detail_rec.push_back(DetailEnergy((*xr0)[j]));
      detail_anon.push_back(DetailEnergy((*xa)[j]));
      all_real.push_back(z[j]);
      all_pseudo.push_back((*da)[j]);
      all_pseudo_b.push_back((*db)[j]);
      all_restored.push_back((*dr)[j]);
      if (sheet && sheet_rows.size() < 8) {
        cv::Mat row;
        cv::hconcat(std::vector<cv::Mat>{crops[j], (*xa)[j], (*xb)[j], (*xr)[j], (*xw)[j]}, row);
        sheet_rows.push_back(row);
      }
    }
  }
  // Plausibility: how far is each pseudonym from the nearest real identity other than its own
  // original (that one is the anonymization row above), against how far real identities are from
  // their nearest neighbour?
  for (size_t i = 0; i < all_real.size() && all_real.size() > 1; ++i) {
    double best_p = 1e9, best_r = 1e9;
    for (size_t j = 0; j < all_real.size(); ++j) {
      if (j == i) continue;
      best_p = std::min(best_p, static_cast<double>(engine::DescriptorDistance(all_pseudo[i], all_real[j])));
      best_r = std::min(best_r, static_cast<double>(engine::DescriptorDistance(all_real[i], all_real[j])));
    }
    nearest_real.v.push_back(best_p);
    real_nn.v.push_back(best_r);
  }
  // Re-identification, rank 1 among every original evaluated (chance: 1 / faces).
  auto dlib_distance = [](const Descriptor& a, const Descriptor& b) { return engine::DescriptorDistance(a, b); };
  nlohmann::json reid = {{"gallery", all_real.size()},
                         {"chance", all_real.empty() ? 0.0 : 1.0 / all_real.size()},
                         {"face_api", {{"anonymized", RankOneRate(all_pseudo, all_real, dlib_distance)},
                                       {"restored", RankOneRate(all_restored, all_real, dlib_distance)}}}};
  {
    // The informed attacker learns on the even faces (its own pairs) and attacks the odd ones.
    std::vector<Descriptor> own_in, known_in, train_out, test_in, test_out;
    for (size_t i = 0; i < all_real.size(); ++i) {
      if (i % 2 == 0) {
        own_in.push_back(all_pseudo_b[i]);  // anonymized under a key of its own (B)
        known_in.push_back(all_pseudo[i]);  // pairs under the victims' key A
        train_out.push_back(all_real[i]);
      } else {
        test_in.push_back(all_pseudo[i]);
        test_out.push_back(all_real[i]);
      }
    }
    reid["informed_attacker"] = {
        {"gallery", test_out.size()},
        {"chance", test_out.empty() ? 0.0 : 1.0 / test_out.size()},
        {"plain_nearest", RankOneRate(test_in, test_out, dlib_distance)},
        {"own_key_pairs", nullptr},
        {"victim_key_pairs", nullptr}};  // null: too few faces to learn from
    if (auto r = LinearAttackRankOne(own_in, train_out, test_in, test_out)) reid["informed_attacker"]["own_key_pairs"] = *r;
    if (auto r = LinearAttackRankOne(known_in, train_out, test_in, test_out)) reid["informed_attacker"]["victim_key_pairs"] = *r;
  }
  double fr_threshold = 0, fr_eer = 1;
  if (second.ok() && fr_orig.size() > 1) {
    for (size_t i = 0; i < fr_orig.size(); ++i) {
      fr_anon_d.v.push_back(engine::FaceResDistance(fr_anon[i], fr_orig[i]));
      fr_rest_d.v.push_back(engine::FaceResDistance(fr_rest[i], fr_orig[i]));
      fr_wrong_d.v.push_back(engine::FaceResDistance(fr_wrong[i], fr_orig[i]));
      fr_ceil_d.v.push_back(engine::FaceResDistance(fr_ceil[i], fr_orig[i]));
      fr_recon_d.v.push_back(engine::FaceResDistance(fr_recon[i], fr_orig[i]));
      for (size_t k = 1; k <= 3 && k < fr_orig.size(); ++k) {
        fr_diff_d.v.push_back(engine::FaceResDistance(fr_orig[i], fr_orig[(i + k * fr_orig.size() / 4 + 1) % fr_orig.size()]));
      }
    }
    fr_threshold = EqualErrorThreshold(fr_same_d.v, fr_diff_d.v, &fr_eer);
    reid["faceres"] = {{"anonymized", RankOneRate(fr_anon, fr_orig, engine::FaceResDistance)},
                       {"restored", RankOneRate(fr_rest, fr_orig, engine::FaceResDistance)},
                       {"restored_with_true_code", RankOneRate(fr_ceil, fr_orig, engine::FaceResDistance)},
                       {"reconstruction", RankOneRate(fr_recon, fr_orig, engine::FaceResDistance)}};
  }
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0.0 : s / v.size();
  };
  auto detail_ratio = [&](const std::vector<double>& v) { return mean(detail_x) > 0 ? mean(v) / mean(detail_x) : 0.0; };
  nlohmann::json report = {
      {"faces", faces->size()},
      {"source", dataset ? *dataset + " (" + split + ")" : *images},
      {"models", {{"flow", (*flow)->model_id()}, {"flow_sha256", (*flow)->model_sha256()},
                  {"encoder_sha256", LoadedSha256(**renderer, "encoder")},
                  {"generator_sha256", LoadedSha256(**renderer, "generator")},
                  {"identity_gain", *gain},
                  {"readback_noise_ratio", reader && noise_arg.empty() ? reader->DenoiseRatio() : *noise_ratio},
                  {"read_back_by", reader ? reader->model_id() : std::string("recognizer")},
                  {"reader_sha256", reader ? reader->model_sha256() : std::string()}}},
      {"anonymized_vs_original", anon.Summary(0.6, true)},
      {"flow_codes_vs_original", flow_anon.Summary(0.6, true)},
      {"anonymized_vs_pseudonym", carried.Summary(0.6, false)},
      {"read_back_share_of_pseudonym", carry_share.Summary(1.0, false)},
      {"read_back_residual", carry_rest.Summary(0.6, false)},
      {"inverse_flow_of_read_back_vs_original", inverted.Summary(0.6, false)},
      {"keyed_restore_vs_original", restore.Summary(0.6, false)},
      {"restore_with_true_code_vs_original", ceiling.Summary(0.6, false)},
      {"wrong_key_restore_vs_original", wrong.Summary(0.6, true)},
      {"key_a_vs_key_b", diversity.Summary(0.6, true)},
      {"identity_check", IdentityCheckReport(check_distance, check_step.v, check_released)},
      {"same_person_consistency", consistency.Summary(0.6, false)},
      {"landmark_shift_px", {{"anonymized_vs_original", landmark_shift.Summary(5.0, false)},
                             {"reconstruction_vs_original", landmark_shift_rec.Summary(5.0, false)}}},
      {"still_detected", {{"detector", "face-api SSD MobileNet v1, score >= 0.5, IoU > 0.5 with the original box"},
                          {"faces", found.v.size()},
                          {"fraction", found.v.empty() ? nlohmann::json() : nlohmann::json(mean(found.v))}}},  // photos only
      {"pseudonym_nearest_real", nearest_real.Summary(0.6, true)},
      {"real_nearest_real", real_nn.Summary(0.6, true)},
      {"reconstruction", {{"psnr_db_mean", mean(psnr)}, {"ssim_mean", mean(ssim)}}},
      {"detail_vs_original", {{"measure", "mean squared Laplacian of the grey face (central 5/8), renders' mean / originals' mean"},
                              {"reconstruction", detail_ratio(detail_rec)},
                              {"anonymized", detail_ratio(detail_anon)}}},
      {"reidentification_rank1", reid}};
  if (second.ok() && !fr_anon_d.v.empty()) {
    report["faceres"] = {{"threshold_equal_error", fr_threshold},
                         {"equal_error_rate", fr_eer},
                         {"same_face_variants", fr_same_d.Summary(fr_threshold, false)},
                         {"different_faces", fr_diff_d.Summary(fr_threshold, true)},
                         {"anonymized_vs_original", fr_anon_d.Summary(fr_threshold, true)},
                         {"keyed_restore_vs_original", fr_rest_d.Summary(fr_threshold, false)},
                         {"wrong_key_restore_vs_original", fr_wrong_d.Summary(fr_threshold, true)},
                         {"restore_with_true_code_vs_original", fr_ceil_d.Summary(fr_threshold, false)},
                         {"reconstruction_vs_original", fr_recon_d.Summary(fr_threshold, false)}};
  } else {
    report["faceres"] = {{"missing", second_missing.empty() ? "too few faces" : second_missing}};
  }
  if (sheet && !sheet_rows.empty()) {
    cv::Mat grid;
    cv::vconcat(sheet_rows, grid);
    std::vector<uchar> png;
    cv::imencode(".png", grid, png);
    if (Status st = keys::WriteFileAtomic(*sheet, std::string(png.begin(), png.end()), false, 0644); !st.ok()) return Fail(st);
    report["sheet"] = *sheet;
  }
  if (json) {
    PrintJson(report);
    return 0;
  }
  auto line = [&](const char* name, const nlohmann::json& d) {
    const bool above = d.contains("fraction_above");
    std::printf("%-34s mean %.3f  p5 %.3f  median %.3f  p95 %.3f  %s %.2f: %5.1f %%\n", name, d["mean"].get<double>(),
                d["p5"].get<double>(), d["median"].get<double>(), d["p95"].get<double>(), above ? ">" : "<",
                d["threshold"].get<double>(), 100.0 * d[above ? "fraction_above" : "fraction_below"].get<double>());
  };
  std::printf("%zu faces from %s (identity gain %.3g)\n", faces->size(), report["source"].get<std::string>().c_str(), *gain);
  line("anonymized vs original", report["anonymized_vs_original"]);
  line("flow code vs original (no render)", report["flow_codes_vs_original"]);
  line("rendered identity vs its pseudonym", report["anonymized_vs_pseudonym"]);
  std::printf("read back = original + s (pseudonym - original) + r: s mean %.3f (1: carried fully), |r| mean %.3f\n",
              report["read_back_share_of_pseudonym"]["mean"].get<double>(), report["read_back_residual"]["mean"].get<double>());
  line("inverse flow of read-back vs original", report["inverse_flow_of_read_back_vs_original"]);
  line("keyed restore vs original", report["keyed_restore_vs_original"]);
  line("restore with the true code (ceiling)", report["restore_with_true_code_vs_original"]);
  std::printf("pseudonyms read back by: %s\n", report["models"]["read_back_by"].get<std::string>().c_str());
  line("wrong-key restore vs original", report["wrong_key_restore_vs_original"]);
  {
    const auto& c = report["identity_check"];
    std::printf("pipeline identity check (> %.2f): released at the generator's gain %.1f %%, after a stronger push "
                "%.1f %%, pixelated %.1f %%; released faces mean %.3f, p5 %.3f\n",
                c["distance"].get<double>(), 100.0 * c["released_at_generator_gain"].get<double>(),
                100.0 * c["released_after_push"].get<double>(), 100.0 * c["pixelated"].get<double>(),
                c["released"]["mean"].get<double>(), c["released"]["p5"].get<double>());
  }
  line("key A vs key B", report["key_a_vs_key_b"]);
  line("same person, other photo", report["same_person_consistency"]);
  line("landmark shift px, anonymized", report["landmark_shift_px"]["anonymized_vs_original"]);
  line("landmark shift px, G(E(x), id(x))", report["landmark_shift_px"]["reconstruction_vs_original"]);
  line("pseudonym to nearest other real", report["pseudonym_nearest_real"]);
  line("real to nearest other real", report["real_nearest_real"]);
  if (!found.v.empty()) {
    std::printf("anonymized face pasted into its photo, still detected (SSD): %.1f %% of %zu\n",
                100.0 * report["still_detected"]["fraction"].get<double>(), found.v.size());
  }
  std::printf("reconstruction G(E(x), id(x)): PSNR %.2f dB, SSIM %.3f\n", mean(psnr), mean(ssim));
  std::printf("fine detail (squared Laplacian) of renders / originals: reconstruction %.3f, anonymized %.3f\n",
              report["detail_vs_original"]["reconstruction"].get<double>(),
              report["detail_vs_original"]["anonymized"].get<double>());
  if (report["faceres"].contains("missing")) {
    std::printf("second recognizer (FaceRes): not measured: %s\n", report["faceres"]["missing"].get<std::string>().c_str());
  } else {
    const auto& f = report["faceres"];
    std::printf("second recognizer (human FaceRes, never used by Veil): same/different threshold %.3f "
                "(equal error %.1f %% on this set)\n",
                f["threshold_equal_error"].get<double>(), 100.0 * f["equal_error_rate"].get<double>());
    line("  same face, other variant", f["same_face_variants"]);
    line("  two different faces", f["different_faces"]);
    line("  anonymized vs original", f["anonymized_vs_original"]);
    line("  keyed restore vs original", f["keyed_restore_vs_original"]);
    line("  wrong-key restore vs original", f["wrong_key_restore_vs_original"]);
    line("  true-code restore vs original", f["restore_with_true_code_vs_original"]);
    line("  reconstruction vs original", f["reconstruction_vs_original"]);
  }
  std::printf("re-identified (rank 1 among %zu originals; chance %.1f %%): anonymized face-api %.1f %%",
              all_real.size(), 100.0 * reid["chance"].get<double>(), 100.0 * reid["face_api"]["anonymized"].get<double>());
  if (reid.contains("faceres")) std::printf(", FaceRes %.1f %%", 100.0 * reid["faceres"]["anonymized"].get<double>());
  std::printf("; restored face-api %.1f %%", 100.0 * reid["face_api"]["restored"].get<double>());
  if (reid.contains("faceres")) {
    std::printf(", FaceRes %.1f %% (with the true code %.1f %%, G's plain reconstruction %.1f %%)",
                100.0 * reid["faceres"]["restored"].get<double>(),
                100.0 * reid["faceres"]["restored_with_true_code"].get<double>(),
                100.0 * reid["faceres"]["reconstruction"].get<double>());
  }
  std::printf("\n");
  if (const auto& a = reid["informed_attacker"]; !a["own_key_pairs"].is_null()) {
    std::printf("informed attacker (knows the models; linear guess of the original learned on the other half; "
                "rank 1 among %zu; chance %.1f %%): plain nearest %.1f %%, learned on its own key's pairs %.1f %%, "
                "on pairs under the victims' key %.1f %%\n  (the victims' key: one key for every face, as in "
                "deployment scope; faces as rendered at the generator's gain, before the pipeline's check)\n",
                a["gallery"].get<size_t>(), 100.0 * a["chance"].get<double>(), 100.0 * a["plain_nearest"].get<double>(),
                100.0 * a["own_key_pairs"].get<double>(), 100.0 * a["victim_key_pairs"].get<double>());
  }
  if (sheet) std::printf("contact sheet (original | key A | key B | restored | wrong key): %s\n", sheet->c_str());
  return 0;
}

}  // namespace

int RunEval(int argc, char** argv) { return Eval(argc, argv); }

}  // namespace veil::cli
