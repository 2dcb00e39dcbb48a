// veil anonymize: replace every face in photos (files or whole folders), with a manifest and, by
// default, the sealed originals for an authorized exact restore.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "batch_workers.h"
#include "cli.h"
#include "commands.h"
#include "output.h"
#include "replace_options.h"
#include "stop_signal.h"
#include "store_options.h"
#include "video_outputs.h"
#include "veil/engine/image_io.h"
#include "veil/engine/pipeline.h"
#include "veil/engine/video.h"
#include "veil/keys/fs.h"

namespace veil::cli {
namespace {

namespace fs = std::filesystem;
using engine::ManifestPlacement;
using engine::PayloadLocation;

const char* kUsage =
    "usage: veil anonymize INPUT... -o OUT [OPTIONS]\n"
    "  INPUT        image or video files, or folders (recursive; the output tree mirrors them; files\n"
    "               there that are not photos or videos Veil reads, .heic or .gif, are left out and\n"
    "               named in a warning and in --json's not_read; nothing else to do is exit 11)\n"
    "  -o OUT       output file (one input file) or folder; Veil's outputs already there (of that very\n"
    "               photo or video under this key) are skipped, so a killed batch resumes; any other\n"
    "               file there is refused (exit 10); inputs are never overwritten. In folders, a linked\n"
    "               photo or video is written where the link stands; a link to a folder is refused\n"
    "  --replace pixelate|blur|solid|synthesized   how faces are replaced (default pixelate;\n"
    "                       synthesized: a keyed pseudonym face from Veil's identity models; while the\n"
    "                       shipped models miss the privacy targets it needs --experimental)\n"
    "  --min-face N         faces under N px on the shorter side are pixelated (default 24)\n"
    "  --verify-distance D  synthesized faces are read back before release; one within D of the original\n"
    "                       (face-api distance) is pushed further, else pixelated (default 0.65; 0: off)\n"
    "  --max-turn T         synthesized faces turned further than T from frontal are pixelated: the\n"
    "                       generator draws faces seen from the front (0.5 frontal, ~0.1 / 0.9 profile;\n"
    "                       default 0.3; 0.5: off)\n"
    "  --detector ssd|tiny  (default ssd)\n"
    "  --upright-only       photos: look for faces only as the pixels stand (4x faster detection); by\n"
    "                       default faces lying on their side or upside down are found too, as are all\n"
    "                       the faces of a photo stored sideways without an orientation tag. Videos\n"
    "                       are always looked at as they stand\n"
    "  --format auto|png|jpg|webp|bmp|tif  output format (auto: the one OUT names for one input file;\n"
    "                                      in folders JPEG and PNG stay, others become PNG)\n"
    "  --manifest embed|sidecar            manifest in the image (PNG/JPEG) or in OUT.veil (default embed)\n"
    "  --payload inline|store|none         sealed originals in the manifest (videos: OUT.veilpay), only\n"
    "                                      in the key store's folder, or not kept (default inline)\n"
    "  --keyring NAME       key for the payloads and pseudonyms (default: default)\n"
    "  --scope deployment|stream|image|face  pseudonym scope (default image); --scope-id ID for streams\n"
    "  --jobs N|auto        files anonymized in parallel (default auto: one per two cores, two on two, as\n"
    "                       many as the free memory holds at 0.8 GB each; the output bytes do not depend on it)\n"
    "  --json               a JSON report on stdout;  --quiet  no progress bar\n"
    "Ctrl-C or SIGTERM stops cleanly: photos in progress are finished, a video in progress is abandoned\n"
    "(nothing of it is left), no new file starts; exit code 13. The same command again resumes.\n"
    "common options: --store DIR, --key-file F | --passphrase-file F | $VEIL_PASSPHRASE, --actor NAME\n"
    "The written images carry no metadata: EXIF (orientation applied first), GPS, XMP, IPTC and comments\n"
    "are dropped by re-encoding. Videos (.mp4 .mov .m4v .webm -> .mp4, .avi -> Motion-JPEG .avi,\n"
    ".mkv -> lossless FFV1 .mkv) are written without audio, with the manifest in OUT.veil and the sealed\n"
    "originals streamed into a payload container (OUT.veilpay, or the key store's copy); restoring a .mkv\n"
    "output gives back the original frames bit for bit.\n";

const std::set<std::string> kImageExt = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"};
const std::set<std::string> kVideoExt = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm"};

struct Job {
  fs::path input;
  fs::path output;
};

struct Plan {
  std::vector<Job> jobs;
  // Files in the input folders that are neither photos nor videos Veil reads (.heic, .gif, .xmp
  // sidecars, ...): left out of the output tree, and reported so that nobody takes the tree for all
  // of the folder, or a .heic photo for anonymized.
  std::vector<fs::path> not_read;
};

// `named`: OUT as the user spelled it for one input file; with --format auto an image format it
// names is kept (a folder's files keep JPEG and PNG and become PNG otherwise).
fs::path OutputPath(const fs::path& out, const std::string& format, bool named = false) {
  std::string ext = Lower(out.extension().string());
  std::string want;
  if (kVideoExt.count(ext)) want = ext == ".avi" || ext == ".mkv" ? ext : ".mp4";
  else if (format == "auto" && named && kImageExt.count(ext)) want = ext;
  else if (format == "auto") want = (ext == ".jpg" || ext == ".jpeg" || ext == ".png") ? ext : ".png";
  else want = "." + format;
  fs::path p = out;
  if (ext != want) p.replace_extension(want);
  return p;
}

StatusOr<Plan> PlanJobs(const std::vector<std::string>& inputs, const fs::path& out, const std::string& format) {
  Plan plan;
  std::vector<Job>& jobs = plan.jobs;
  std::error_code ec;
  const bool single_file = inputs.size() == 1 && fs::is_regular_file(inputs[0], ec) && !fs::is_directory(out, ec) &&
                           !out.extension().empty();
  const fs::path out_abs = fs::weakly_canonical(out, ec);
  for (const auto& in : inputs) {
    fs::path ip(in);
    if (!fs::exists(ip, ec)) return NotFoundError("no such file or folder: " + in);
    if (fs::is_directory(ip, ec)) {
      // A folder that cannot be listed whole (an unreadable subfolder) stops the batch: a silently
      // partial batch would leave faces unanonymized with exit code 0.
      std::vector<fs::path> files;
      // The folder's own name heads the mirrored tree, however it was spelled ("photos", "photos/", ".").
      const fs::path ip_abs = fs::weakly_canonical(ip, ec);
      const fs::path name = ip_abs.filename();
      // `-o photos` for the folder photos would put the tree at photos/photos, inside the input,
      // where a second run could not tell it from a subfolder of originals: refused.
      if (ip_abs == out_abs) {
        return InvalidArgumentError("-o " + out.string() + " is the input folder " + in +
                                    " itself; write the tree elsewhere (for example -o " + (fs::path(in) / "anonymized").string() + ")");
      }
      // `-o` the folder's parent would mirror the tree onto the input folder itself.
      if (fs::weakly_canonical(out_abs / name, ec) == ip_abs) {
        return InvalidArgumentError("-o " + out.string() + " would write the tree of " + in + " into " + in +
                                    " itself; write it elsewhere");
      }
      auto it = fs::recursive_directory_iterator(ip, ec);
      if (ec) return IoError("cannot list " + in + ": " + ec.message());
      for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
        // Links: a linked photo or video is anonymized where the link stands in the tree; a linked
        // folder is refused (it would be skipped: its faces left as they are, with exit code 0).
        std::error_code entry_ec;
        const bool link = it->is_symlink(entry_ec);
        const bool dir = it->is_directory(entry_ec);
        if (dir && link) {
          return InvalidArgumentError(it->path().string() + " is a link to a folder, which Veil does not follow "
                                      "inside an input folder; give that folder as an input of its own");
        }
        if (dir) {
          std::error_code canon_ec;
          if (fs::weakly_canonical(it->path(), canon_ec) == out_abs) it.disable_recursion_pending();  // never our own output
          continue;
        }
        const std::string ext = Lower(it->path().extension().string());
        const bool readable = kImageExt.count(ext) || kVideoExt.count(ext);
        entry_ec.clear();
        if (it->is_regular_file(entry_ec)) {
          // Veil's own manifests and payload containers (an earlier output tree inside the input)
          // are not left-out photos.
          if (readable) files.push_back(it->path());
          else if (ext != ".veil" && ext != ".veilpay") plan.not_read.push_back(it->path());
        } else if (entry_ec && readable) {  // a broken or looping link, an unreadable entry
          return IoError("cannot read " + it->path().string() + ": " + entry_ec.message());
        }
      }
      // A failed step ends the iteration (it becomes the end iterator) with `ec` set.
      if (ec) return IoError("cannot list all of " + in + ": " + ec.message());
      std::sort(files.begin(), files.end());
      // The path below the folder as listed (a link keeps its own name and place in the tree).
      for (const auto& f : files) jobs.push_back({f, OutputPath(out / name / f.lexically_relative(ip), format)});
    } else if (single_file) {
      // A video becomes a video and a photo a photo: `restore` and `inspect` tell them apart by name.
      const bool video_in = kVideoExt.count(Lower(ip.extension().string())) > 0;
      const std::string out_ext = Lower(out.extension().string());
      if (video_in != (kVideoExt.count(out_ext) > 0)) {
        return InvalidArgumentError("-o " + out.string() + ": a " + (video_in ? "video" : "photo") + " is written to a " +
                                    (video_in ? "video file (.mp4, .avi, .mkv)" : "photo file (.png, .jpg, ...)"));
      }
      // The file is written under the name given: a name Veil cannot write, or one that names
      // another format than --format, is refused rather than silently renamed.
      if (!video_in && !kImageExt.count(out_ext)) {
        return InvalidArgumentError("-o " + out.string() + ": Veil writes photos as .png, .jpg, .webp, .bmp or .tif");
      }
      auto canonical = [](const std::string& ext) { return ext == ".jpeg" ? ".jpg" : ext == ".tiff" ? ".tif" : ext; };
      if (!video_in && format != "auto" && canonical(out_ext) != canonical("." + format)) {
        return InvalidArgumentError("-o " + out.string() + " names another format than --format " + format);
      }
      jobs.push_back({ip, video_in ? OutputPath(out, format, /*named=*/true) : out});
    } else {
      jobs.push_back({ip, OutputPath(out / ip.filename(), format)});
    }
  }
  std::map<fs::path, fs::path> writer;  // output -> the input that writes it
  for (const auto& j : jobs) {
    const fs::path o = fs::weakly_canonical(j.output, ec);
    if (fs::weakly_canonical(j.input, ec) == o) {
      return InvalidArgumentError("output " + j.output.string() + " would overwrite its input");
    }
    auto [it, fresh] = writer.emplace(o, j.input);
    if (!fresh) {
      return InvalidArgumentError(it->second.string() + " and " + j.input.string() + " would both be written to " +
                                  j.output.string());
    }
  }
  // Once each, however many inputs reach it (`photos photos/2023`).
  std::map<fs::path, fs::path> not_read;
  for (const auto& f : plan.not_read) not_read.emplace(fs::weakly_canonical(f, ec), f);
  plan.not_read.clear();
  for (const auto& [canonical, f] : not_read) plan.not_read.push_back(f);
  std::sort(plan.not_read.begin(), plan.not_read.end());
  return plan;
}

// One line on the files left out: how many, of which kinds, the first few by name.
std::string NotReadWarning(const std::vector<fs::path>& files) {
  std::map<std::string, size_t> kinds;
  for (const auto& f : files) ++kinds[f.extension().empty() ? "no extension" : Lower(f.extension().string())];
  std::string kinds_text, names;
  for (const auto& [kind, n] : kinds) kinds_text += (kinds_text.empty() ? "" : ", ") + std::to_string(n) + " " + kind;
  for (size_t i = 0; i < files.size() && i < 3; ++i) names += (i ? ", " : "") + files[i].string();
  return std::to_string(files.size()) + " file(s) in the input folders are not photos or videos Veil reads (" + kinds_text +
         ") and are not in the output: " + names + (files.size() > 3 ? ", ..." : "") +
         "; convert photos and videos among them (.heic, .gif, ...) to a format Veil reads";
}

class ProgressBar {
 public:
  ProgressBar(size_t total, bool enabled) : total_(total), enabled_(enabled && isatty(2)) {}
  // A worker starts on a file that was not done before: the rate is timed from the first.
  void Working() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_) started_ = Clock::now();
  }
  // `finished` files of the total, `worked` of them anonymized or failed (not skipped as done
  // before): the rate and the time left count those, so that a resumed batch, whose first files go
  // by in an instant, does not promise to end at once.
  void Update(size_t finished, size_t worked) {
    if (!enabled_) return;
    std::optional<Clock::time_point> started;
    {
      std::lock_guard<std::mutex> lock(mu_);
      started = started_;
    }
    const double secs = started ? std::chrono::duration<double>(Clock::now() - *started).count() : 0;
    const double rate = secs > 0 ? static_cast<double>(worked) / secs : 0;
    if (rate > 0) {
      const double eta = static_cast<double>(total_ - finished) / rate;
      std::fprintf(stderr, "\r[%zu/%zu] %.2f files/s, ETA %ds   ", finished, total_, rate, static_cast<int>(eta));
    } else {
      std::fprintf(stderr, "\r[%zu/%zu]                       ", finished, total_);
    }
    if (finished == total_) std::fprintf(stderr, "\n");
  }

 private:
  using Clock = std::chrono::steady_clock;
  size_t total_;
  bool enabled_;
  std::mutex mu_;
  std::optional<Clock::time_point> started_;
};

// The manifest with its sealed payloads, kept only in the key store's folder (--payload store).
// Its id names the input and the output pixels: the file there is this very output's (a re-run's,
// the same bytes) or another's, which is never replaced (that output would lose its originals).
Status KeepInStore(const StoreOptions& opts, const std::string& manifest_id, const std::string& store_manifest_bytes) {
  std::error_code ec;
  fs::path dir = StorePayloadFolder(opts);
  fs::create_directories(dir, ec);
  Status st = keys::WriteNewFileOrSame((dir / (keys::ToHex(manifest_id) + ".veil")).string(), store_manifest_bytes, 0600);
  return st.ok() ? st : st.WithContext("keeping the payloads in the key store");
}

// Whether a manifest of this input and key was made with this run's scope and payload option:
// an output made with --payload none is no resume of a run that keeps the originals.
bool MadeWithTheseOptions(const engine::Manifest& m, const engine::PipelineParams& params, bool video) {
  if (m.faces.empty()) return true;  // no face: the same output whatever the options
  if (m.scope != params.scope || (params.scope == keys::ScopeKind::kStream && m.scope_id != params.scope_id)) return false;
  const engine::PayloadLocation want = params.payloads == engine::PayloadLocation::kInline && video
                                           ? engine::PayloadLocation::kSidecar  // a video's container beside it
                                           : params.payloads;
  // A face with an empty region has no original to keep, in any run.
  return std::all_of(m.faces.begin(), m.faces.end(), [&](const engine::FaceRecord& f) {
    return f.payload_location == want || (f.payload_location == engine::PayloadLocation::kNone && f.region.area() == 0);
  });
}

Status OtherOptionsError(const std::string& out, const engine::Manifest& m) {
  const bool kept = std::any_of(m.faces.begin(), m.faces.end(),
                                [](const engine::FaceRecord& f) { return f.payload_location != engine::PayloadLocation::kNone; });
  return AlreadyExistsError(out + " exists: Veil's output of this input under this key, but made with other options (scope " +
                            keys::ScopeKindName(m.scope) + (kept ? "" : ", no originals kept") +
                            "); not overwriting it: choose another -o");
}

// A resumed batch skips a job whose output exists and is Veil's (its manifest embedded or beside
// it, describing its pixels, made of this very input with this key and with this run's scope and
// payload option); anything else under that name is refused, never counted as done or replaced.
StatusOr<bool> AlreadyDone(const Job& job, const keys::KeyHandle& key, const engine::PipelineParams& params) {
  const std::string out = job.output.string();
  if (!keys::PathExists(out)) return false;
  // A sidecar counts only when it describes these very pixels or frames.
  auto sidecar = keys::ReadFile(out + ".veil", engine::kMaxManifestBytes);
  auto manifest = sidecar.ok() ? engine::ParseManifest(*sidecar) : StatusOr<engine::Manifest>(sidecar.status());
  if (engine::IsVideoPath(out)) {
    if (manifest.ok()) {
      // Of this input with this key? (the input file's hash against the manifest's id: cheap)
      VEIL_ASSIGN_OR_RETURN(bool for_input, engine::VideoManifestIsFor(*manifest, job.input.string(), key));
      if (!for_input) {
        return AlreadyExistsError(out + " exists and is not Veil's output of this version of " + job.input.string() +
                                  " under this key; not overwriting it");
      }
      // Decoded once more: a resumed batch re-reads each finished video, still far cheaper than
      // anonymizing it again.
      int64_t frames = 0;
      auto sha = engine::VideoFramesSha256(out, &frames, StopRequested);
      if (!sha.ok() && sha.status().code() == StatusCode::kCancelled) return sha.status();
      if (sha.ok() && *sha == manifest->output_pixels_sha256) {
        return MadeWithTheseOptions(*manifest, params, /*video=*/true) ? StatusOr<bool>(true) : OtherOptionsError(out, *manifest);
      }
      if (!sha.ok()) return AlreadyExistsError(out + " exists and cannot be checked (" + sha.status().message() + "); not overwriting it");
      return AlreadyExistsError(out + " exists, but its frames are not those its manifest (" + out +
                                ".veil) describes: edited, cut short or replaced; not overwriting it");
    }
  } else {
    auto bytes = keys::ReadFile(out, 256u << 20);
    if (bytes.ok()) {
      if (auto embedded = engine::ExtractManifest(*bytes); embedded.ok()) manifest = engine::ParseManifest(*embedded);
    }
    engine::ImageLimits quiet;
    quiet.silence_decoder_stderr = true;
    auto image = bytes.ok() ? engine::DecodeImage(*bytes, quiet) : StatusOr<cv::Mat>(bytes.status());
    if (manifest.ok() && image.ok() && manifest->output_pixels_sha256 == engine::PixelsSha256(*image)) {
      // Veil's finished output; of this input? (the input as anonymizing reads it, oriented)
      VEIL_ASSIGN_OR_RETURN(cv::Mat input, engine::ReadImage(job.input.string(), quiet));
      if (engine::ImageManifestIsFor(*manifest, input, key)) {
        return MadeWithTheseOptions(*manifest, params, /*video=*/false) ? StatusOr<bool>(true) : OtherOptionsError(out, *manifest);
      }
      return AlreadyExistsError(out + " exists and was made from another version of " + job.input.string() +
                                " or with another key; not overwriting it");
    }
    if (manifest.ok() && image.ok()) {
      return AlreadyExistsError(out + " exists, but its pixels are not those its manifest describes (edited since); not overwriting it");
    }
  }
  return AlreadyExistsError(out + " exists and is not Veil's output (no manifest); not overwriting it");
}

Status ProcessVideo(engine::Pipeline& pipeline, const keys::KeyHandle& key, const Job& job, const StoreOptions& opts,
                    bool show_progress, engine::AnonymizeOutput* result) {
  std::error_code ec;
  fs::create_directories(job.output.parent_path().empty() ? fs::path(".") : job.output.parent_path(), ec);
  auto progress = [&](const engine::VideoProgress& p) {
    if (show_progress && p.frame % 10 == 0) {
      const auto stderr_lock = engine::HoldStderr();
      std::fprintf(stderr, "\r  %s: frame %lld/%lld   ", OneLine(job.input.filename().string()).c_str(), static_cast<long long>(p.frame),
                   static_cast<long long>(p.frames));
    }
  };
  engine::VideoOptions options;
  options.progress = progress;
  options.cancelled = StopRequested;
  VideoOutputs outputs(opts, pipeline.params().payloads, job.output.string(), options);
  auto m = engine::AnonymizeVideo(pipeline, key, job.input.string(), job.output.string(), options);
  if (show_progress) {
    const auto stderr_lock = engine::HoldStderr();
    std::fprintf(stderr, "\n");
  }
  if (!m.ok()) {
    outputs.CleanUp(m.status());
    return m.status();
  }
  result->manifest_bytes = outputs.manifest_bytes();
  result->manifest = std::move(*m);
  return Status::Ok();
}

Status ProcessOne(engine::Pipeline& pipeline, const keys::KeyHandle& key, const Job& job, const StoreOptions& opts,
                  engine::AnonymizeOutput* result) {
  engine::ImageLimits limits;
  limits.silence_decoder_stderr = true;
  VEIL_ASSIGN_OR_RETURN(cv::Mat image, engine::ReadImage(job.input.string(), limits));
  VEIL_ASSIGN_OR_RETURN(*result, pipeline.AnonymizeImage(image, key, job.output.extension().string()));
  std::error_code ec;
  fs::create_directories(job.output.parent_path().empty() ? fs::path(".") : job.output.parent_path(), ec);
  if (pipeline.params().payloads == PayloadLocation::kKeyStore) {
    VEIL_RETURN_IF_ERROR(KeepInStore(opts, result->manifest.manifest_id, result->store_manifest_bytes));
  }
  bool sidecar_created = false;
  if (pipeline.params().placement == ManifestPlacement::kSidecar) {
    // An identical sidecar is an earlier run's, stopped just before its image appeared.
    VEIL_RETURN_IF_ERROR(keys::WriteNewFileOrSame(job.output.string() + ".veil", result->manifest_bytes, 0644, &sidecar_created));
  }
  // The image last: its presence marks the job as done for a resumed batch.
  Status written = keys::WriteFileAtomic(job.output.string(), result->image_bytes, false, 0644);
  // A sidecar this call put there goes with its failed image (a re-run with other options would
  // find it in the way), unless the image took its name before the failure.
  if (!written.ok() && sidecar_created && !CommittedDespite(job.output.string(), written)) {
    ::unlink((job.output.string() + ".veil").c_str());
  }
  return written;
}

// Every output folder (or, where it is still to be made, its nearest existing ancestor) must be a
// folder this process can write into: an output on a read-only file system or in a folder it may
// not write fails here, before the key is released, rather than after every file was worked on.
Status CheckOutputsWritable(const std::vector<Job>& jobs) {
  std::set<fs::path> checked;
  for (const Job& job : jobs) {
    fs::path dir = job.output.parent_path();
    std::error_code ec;
    while (!dir.empty() && !fs::exists(dir, ec)) dir = dir.parent_path();
    if (dir.empty()) dir = ".";
    if (!checked.insert(dir).second) continue;
    if (!fs::is_directory(dir, ec)) return IoError("cannot write " + job.output.string() + ": " + dir.string() + " is not a folder");
    if (::access(dir.c_str(), W_OK | X_OK) != 0) {
      return IoError("cannot write into " + dir.string() + ": " + std::strerror(errno));
    }
  }
  return Status::Ok();
}

int Anonymize(int argc, char** argv) {
  Args args(argc, argv, {"--json", "--quiet", "--help", "--experimental", "--upright-only"});
  if (args.Flag("--help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  auto opts = ReadStoreOptions(args);
  auto out = args.Get("-o");
  if (!out) out = args.Get("--output");
  const bool json = args.Flag("--json"), quiet = args.Flag("--quiet");
  const std::string keyring = args.GetOr("--keyring", "default");
  const std::string format = Lower(args.GetOr("--format", "auto"));
  auto replace = ReadReplaceOptions(args);
  auto scope = keys::ParseScopeKind(args.GetOr("--scope", "image"));
  const std::string scope_id = args.GetOr("--scope-id", "");
  const std::string manifest_where = args.GetOr("--manifest", "embed");
  const std::string payload_where = args.GetOr("--payload", "inline");
  const std::string detector = args.GetOr("--detector", "ssd");
  auto min_face = args.GetInt("--min-face", 24, 0, 100000);
  const bool upright_only = args.Flag("--upright-only");
  auto workers = ParseJobs(args.GetOr("--jobs", "auto"));
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  if (!opts.status.ok()) return Fail(opts.status);
  if (args.positionals().empty()) return Fail(InvalidArgumentError("give at least one INPUT (see --help)"));
  if (!out) return Fail(InvalidArgumentError("-o OUT is required"));
  if (!replace.ok()) return Fail(replace.status());
  if (!scope.ok()) return Fail(scope.status());
  if (!min_face.ok()) return Fail(min_face.status());
  if (!workers.ok()) return Fail(workers.status());
  if (format != "auto" && !kImageExt.count("." + format)) return Fail(InvalidArgumentError("unknown --format " + format));
  if (manifest_where != "embed" && manifest_where != "sidecar") return Fail(InvalidArgumentError("--manifest is embed or sidecar"));
  auto payloads = ParsePayloadOption(payload_where);
  if (!payloads.ok()) return Fail(payloads.status());
  if (detector != "ssd" && detector != "tiny") return Fail(InvalidArgumentError("--detector is ssd or tiny"));
  if (*scope == keys::ScopeKind::kStream && scope_id.empty()) return Fail(InvalidArgumentError("--scope stream needs --scope-id"));

  auto plan = PlanJobs(args.positionals(), *out, format);
  if (!plan.ok()) return Fail(plan.status());
  const std::vector<Job>* const jobs = &plan->jobs;
  // Only files Veil cannot read (a phone's .heic folder), or none at all (an unmounted card): an
  // empty tree with exit code 0 would pass for done. Said before the key is released.
  if (jobs->empty()) {
    return Fail(UnsupportedError("nothing to anonymize: " + (plan->not_read.empty()
                                                                  ? std::string("the input folders hold no photos or videos")
                                                                  : NotReadWarning(plan->not_read))));
  }
  for (const Job& job : *jobs) {  // before any key is released
    const std::string ext = Lower(job.output.extension().string());
    if (manifest_where == "embed" && kImageExt.count(ext) && ext != ".png" && ext != ".jpg" && ext != ".jpeg") {
      return Fail(UnsupportedError("manifests embed only in PNG and JPEG images: give --manifest sidecar to write " +
                                   job.output.string()));
    }
  }

  if (Status st = CheckOutputsWritable(*jobs); !st.ok()) return Fail(st);
  if (!plan->not_read.empty() && !json) std::fprintf(stderr, "veil: warning: %s\n", OneLine(NotReadWarning(plan->not_read)).c_str());

  engine::PipelineParams params;
  params.method = replace->method;
  params.min_face_size = static_cast<int>(*min_face);
  params.verify_distance = replace->verify_distance;
  params.max_turn = replace->max_turn;
  params.detector = detector == "ssd" ? engine::DetectorKind::kSsd : engine::DetectorKind::kTiny;
  params.quarter_turns = !upright_only;
  params.scope = *scope;
  params.scope_id = scope_id;
  params.placement = manifest_where == "embed" ? ManifestPlacement::kEmbedded : ManifestPlacement::kSidecar;
  params.payloads = *payloads;
  auto pipeline = engine::Pipeline::Create(params);
  if (!pipeline.ok()) return Fail(pipeline.status());

  // The key is released (and the release logged) once; the store's lock is not held while we work.
  StatusOr<keys::KeyHandle> key = InternalError("no key");
  {
    auto store = OpenStore(opts, keys::KeyStore::Access::kReadWrite);
    if (!store.ok()) return Fail(store.status());
    key = (*store)->KeyForNewWork(keyring, "anonymize " + std::to_string(jobs->size()) + " input(s)");
    if (!key.ok()) return Fail(key.status());
  }

  // Files are independent: `--jobs N` workers, each with its own pipeline (detectors are not
  // thread safe), take the next file in turn. Each output depends on its input alone, so the
  // bytes do not depend on N.
  auto made = MakeWorkerPipelines(std::move(pipeline.value()), params, std::min(*workers, jobs->size()));
  if (!made.ok()) return Fail(made.status());
  std::vector<std::unique_ptr<engine::Pipeline>>& pipelines = *made;
  // Ctrl-C or SIGTERM: files being worked on are finished (a video is abandoned, leaving nothing),
  // no new one starts; the same command run again resumes.
  StopOnSignal stop_on_signal;
  ProgressBar bar(jobs->size(), !quiet && !json);
  std::vector<nlohmann::json> entries(jobs->size());
  std::vector<Status> statuses(jobs->size());
  std::atomic<size_t> next{0};
  std::mutex mu;
  size_t finished = 0, done = 0, skipped = 0, failed = 0, faces = 0;
  std::map<std::string, size_t> method_totals;  // faces per replacement method, over the files done
  auto work = [&](engine::Pipeline& pl) {
    for (size_t i = next++; i < jobs->size() && !StopRequested(); i = next++) {
      const Job& job = (*jobs)[i];
      nlohmann::json entry = {{"input", job.input.string()}, {"output", job.output.string()}};
      engine::AnonymizeOutput result;
      Status st;
      StatusOr<bool> done_before = AlreadyDone(job, *key, params);
      const bool skip = done_before.ok() && *done_before;
      if (!done_before.ok()) {
        st = done_before.status();
      } else if (!skip) {
        bar.Working();
        st = engine::IsVideoPath(job.input.string())
                 ? ProcessVideo(pl, *key, job, opts, !quiet && !json && isatty(2) && pipelines.size() == 1, &result)
                 : ProcessOne(pl, *key, job, opts, &result);
      }
      std::lock_guard<std::mutex> lock(mu);
      const auto stderr_lock = engine::HoldStderr();  // another worker's decode may be silencing it
      if (skip) {
        ++skipped;
        entry["status"] = "skipped (output exists)";
      } else if (st.ok()) {
        ++done;
        faces += result.manifest.faces.size();
        entry["status"] = "ok";
        entry["faces"] = result.manifest.faces.size();
        // How each face was replaced: small faces and faces that fail the identity check are not
        // synthesized (the manifest says why, per face).
        nlohmann::json methods = nlohmann::json::object();
        for (const auto& f : result.manifest.faces) {
          const std::string name = engine::ReplaceMethodName(f.method);
          methods[name] = methods.value(name, 0) + 1;
          method_totals[name] += 1;
        }
        entry["methods"] = methods;
        entry["manifest_id"] = keys::ToHex(result.manifest.manifest_id);
      } else if (st.code() == StatusCode::kCancelled) {
        entry["status"] = "not started (interrupted)";  // the abandoned video left nothing behind
      } else {
        ++failed;
        entry["status"] = "error";
        entry["error"] = st.ToString();
        // The file named once: most errors already name it.
        const std::string where = st.message().rfind(job.input.string() + ":", 0) == 0 ? "" : job.input.string() + ": ";
        if (!json) std::fprintf(stderr, "%sveil: %s\n", isatty(2) && !quiet ? "\n" : "", OneLine(where + st.ToString()).c_str());
      }
      statuses[i] = st;
      entries[i] = std::move(entry);
      bar.Update(++finished, done + failed);
    }
  };
  std::vector<std::thread> threads;
  for (size_t w = 1; w < pipelines.size(); ++w) threads.emplace_back(work, std::ref(*pipelines[w]));
  work(*pipelines[0]);
  for (auto& t : threads) t.join();
  nlohmann::json report = nlohmann::json::array();
  size_t not_started = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].is_null()) {
      entries[i] = {{"input", (*jobs)[i].input.string()}, {"output", (*jobs)[i].output.string()},
                    {"status", "not started (interrupted)"}};
    }
    if (entries[i]["status"] == "not started (interrupted)") ++not_started;
    report.push_back(std::move(entries[i]));
  }
  const bool interrupted = not_started > 0;  // a signal during the last file's final steps changed nothing
  Status first_error;  // the first failure in input order decides the exit code; then an interruption
  for (const auto& st : statuses) {
    if (!st.ok() && st.code() != StatusCode::kCancelled) {
      first_error = st;
      break;
    }
  }
  if (first_error.ok() && interrupted) {
    first_error = CancelledError("stopped by a signal: " + std::to_string(not_started) +
                                 " file(s) not done; run the same command again to resume");
  }
  nlohmann::json not_read = nlohmann::json::array();
  for (const auto& f : plan->not_read) not_read.push_back(f.string());
  if (json) {
    PrintJson({{"files", report}, {"anonymized", done}, {"skipped", skipped}, {"failed", failed}, {"faces", faces},
               {"methods", method_totals}, {"workers", pipelines.size()},
               {"interrupted", interrupted}, {"not_started", not_started}, {"not_read", not_read},
               {"key", {{"keyring", key->keyring()}, {"version", key->version()}}}});
  } else {
    std::string how;
    for (const auto& [name, n] : method_totals) how += (how.empty() ? " (" : ", ") + name + " " + std::to_string(n);
    if (!how.empty()) how += ")";
    const std::string left_out =
        plan->not_read.empty() ? "" : ", " + std::to_string(plan->not_read.size()) + " not read (not photos or videos Veil reads)";
    std::printf("anonymized %zu file(s), %zu face(s)%s; %zu skipped (already done), %zu failed%s%s; key %s v%u\n", done,
                faces, how.c_str(), skipped, failed, interrupted ? (", " + std::to_string(not_started) + " not started (interrupted)").c_str() : "",
                left_out.c_str(), key->keyring().c_str(), key->version());
    if (interrupted && first_error.code() == StatusCode::kCancelled) return Fail(first_error);
  }
  return first_error.ok() ? 0 : static_cast<int>(first_error.code());
}

}  // namespace

int RunAnonymize(int argc, char** argv) { return Anonymize(argc, argv); }

}  // namespace veil::cli
