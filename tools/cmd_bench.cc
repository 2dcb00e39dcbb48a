// veil bench: speed and memory of what users run: the camera path (per stage), batch photos and
// exact restores. Numbers only; nothing here asserts a speed.
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "batch_workers.h"
#include "cli.h"
#include "commands.h"
#include "output.h"
#include "veil/engine/face_detector.h"
#include "veil/engine/image_io.h"
#include "veil/engine/pipeline.h"
#include "veil/engine/runtime.h"
#include "veil/engine/video.h"
#include "veil/keys/key_store.h"
#include "veil/keys/principal_key.h"

namespace veil::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const char* kUsage =
    "usage: veil bench [--images DIR] [--iters 30] [--replace synthesized|pixelate|blur|solid]\n"
    "                  [--detect-every 3] [--detector-size 416] [--upright-only] [--json]\n"
    "  Camera path (tiny detector, one face, stream scope) at 640x480 and 1280x720: ms per stage\n"
    "  (mean over --iters consecutive frames after the face's identity has settled) and frames/s, as\n"
    "  a `veil camera` preview runs it, with the method the face got (the bench's key is random, and\n"
    "  the identity check may pixelate the face under it, which skips the render: run it again);\n"
    "  batch photos per second (SSD at every quarter turn, or as the pixels stand with --upright-only;\n"
    "  the same --replace, PNG out, sealed payloads); exact restores per second; peak memory; then\n"
    "  batch photos per second as `veil anonymize` runs them (--jobs auto).\n"
    "  Also the time to write one frame of a recording (.mkv, .avi, .mp4) at both sizes: what each\n"
    "  copy of a held frame costs a device recording that keeps real time.\n"
    "  DIR holds test photos (default: the face-api demo photos). Uses a throw-away key store.\n";

template <typename F>
double MedianMs(int iters, F&& f) {
  f();  // warm-up
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    auto t0 = Clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// A frame of `size` around the first face of `photo` (so that it holds one face).
StatusOr<cv::Mat> OneFaceFrame(engine::FaceDetector& ssd, const cv::Mat& photo, cv::Size size) {
  VEIL_ASSIGN_OR_RETURN(std::vector<engine::Face> faces, ssd.Detect(photo));
  if (faces.empty()) return NotFoundError("no face in the benchmark photo");
  const cv::Rect2f b = faces[0].box;
  const float aspect = static_cast<float>(size.width) / size.height;
  float h = std::min(b.height * 3.0f, static_cast<float>(photo.rows));
  float w = std::min(h * aspect, static_cast<float>(photo.cols));
  h = w / aspect;
  float x = std::clamp(b.x + b.width / 2 - w / 2, 0.0f, photo.cols - w);
  float y = std::clamp(b.y + b.height / 2 - h / 2, 0.0f, photo.rows - h);
  cv::Mat frame;
  cv::resize(photo(cv::Rect(cv::Point(static_cast<int>(x), static_cast<int>(y)), cv::Size(static_cast<int>(w), static_cast<int>(h)))),
             frame, size, 0, 0, cv::INTER_AREA);
  return frame;
}

struct TempStore {
  std::string dir;
  std::unique_ptr<keys::KeyStore> store;
  keys::PrincipalKey a = keys::PrincipalKey::Generate("a");
  ~TempStore() {
    store.reset();
    if (!dir.empty()) fs::remove_all(dir);
  }
};

Status MakeStore(TempStore* t) {
  t->dir = (fs::temp_directory_path() / "veil-bench-XXXXXX").string();
  if (!::mkdtemp(t->dir.data())) return IoError("cannot make a temporary folder");
  VEIL_ASSIGN_OR_RETURN(t->store, keys::KeyStore::Create(t->dir + "/store", keys::Credential::FromRawKey(keys::SecretBytes::Random(32)),
                                                         {1, 8192}, "bench", "default", 1));
  VEIL_RETURN_IF_ERROR(t->store->AddPrincipal("a", keys::Role::kApprover, t->a.public_key()));
  return t->store->AddPrincipal("op", keys::Role::kOperator, keys::PrincipalKey::Generate("op").public_key());
}

int Bench(int argc, char** argv) {
  Args args(argc, argv, {"--json", "--upright-only", "--help"});
  if (args.Flag("--help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const bool json = args.Flag("--json");
  const bool upright_only = args.Flag("--upright-only");
  auto iters = args.GetInt("--iters", 30, 1, 10000);
  auto detect_every = args.GetInt("--detect-every", 3, 1, 30);
  auto detector_size = args.GetInt("--detector-size", 416, 32, 2048);
  auto method = engine::ParseReplaceMethod(args.GetOr("--replace", "synthesized"));
  const std::string images = args.GetOr("--images", (fs::path(engine::DefaultModelsDir()) / ".." / "demo").string());
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  for (const auto* v : {&iters, &detect_every, &detector_size})
    if (!v->ok()) return Fail(v->status());
  if (!method.ok()) return Fail(method.status());

  std::vector<cv::Mat> photos;
  std::vector<fs::path> paths;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(images, ec)) {
    auto ext = e.path().extension().string();
    if (ext == ".jpg" || ext == ".png") paths.push_back(e.path());
  }
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    auto img = engine::ReadImage(p.string());
    if (img.ok()) photos.push_back(*img);
  }
  if (photos.empty()) return Fail(NotFoundError("no .jpg or .png photos in " + images));

  TempStore t;
  if (Status st = MakeStore(&t); !st.ok()) return Fail(st);
  auto key = t.store->KeyForNewWork("default", "bench");
  if (!key.ok()) return Fail(key.status());

  engine::FaceDetectorParams ssd_params, tiny_params;
  tiny_params.kind = engine::DetectorKind::kTiny;
  tiny_params.tiny_input_size = static_cast<int>(*detector_size);
  auto ssd = engine::FaceDetector::Create(ssd_params);
  auto tiny = engine::FaceDetector::Create(tiny_params);
  if (!ssd.ok()) return Fail(ssd.status());
  if (!tiny.ok()) return Fail(tiny.status());
  engine::PipelineParams camera_params;
  camera_params.detector = engine::DetectorKind::kTiny;
  camera_params.tiny_input_size = static_cast<int>(*detector_size);
  camera_params.detect_every = static_cast<int>(*detect_every);
  camera_params.method = *method;
  camera_params.scope = keys::ScopeKind::kStream;
  camera_params.scope_id = "bench";
  auto camera = engine::Pipeline::Create(camera_params);
  engine::PipelineParams batch_params;
  batch_params.method = *method;
  batch_params.quarter_turns = !upright_only;
  auto batch = engine::Pipeline::Create(batch_params);
  if (!camera.ok()) return Fail(camera.status());
  if (!batch.ok()) return Fail(batch.status());

  nlohmann::json report = {{"threads", engine::RuntimeThreads()}, {"photos", photos.size()}};
  for (cv::Size size : {cv::Size(640, 480), cv::Size(1280, 720)}) {
    StatusOr<cv::Mat> frame = NotFoundError("no face in any benchmark photo");
    for (const auto& p : photos) {  // the first photo whose frame shows exactly one face
      frame = OneFaceFrame(**ssd, p, size);
      if (!frame.ok()) continue;
      auto in_frame = (*tiny)->Detect(*frame);
      if (in_frame.ok() && in_frame->size() == 1) break;
      frame = NotFoundError("no benchmark photo gives a frame with exactly one face");
    }
    if (!frame.ok()) return Fail(frame.status());
    // A stream of the same frame: detection on every detect_every-th frame, tracking in between.
    (*camera)->ResetStream();
    engine::StageTimes sum;
    int faces = 0;
    std::string methods;  // how the face was replaced: the identity check may pixelate it under this key
    // Warm-up: a face's identity code settles over its first 5 detections (pipeline.h), then the
    // recognizer is no longer run for it; the steady state is what a camera shows after a second.
    const int warm_up = 5 * static_cast<int>(*detect_every) + 1;
    for (int i = 0; i < *iters + warm_up; ++i) {
      auto out = (*camera)->AnonymizeFrame(*frame, *key);
      if (!out.ok()) return Fail(out.status());
      if (i < warm_up) continue;
      faces = static_cast<int>(out->faces.size());
      methods.clear();
      for (const auto& f : out->faces) methods += (methods.empty() ? "" : ", ") + std::string(engine::ReplaceMethodName(f.method));
      sum.detect_ms += out->times.detect_ms;
      sum.track_ms += out->times.track_ms;
      sum.identity_ms += out->times.identity_ms;
      sum.render_ms += out->times.render_ms;
      sum.blend_ms += out->times.blend_ms;
      sum.total_ms += out->times.total_ms;
    }
    const double n = *iters;
    const std::string name = std::to_string(size.width) + "x" + std::to_string(size.height);
    report["camera"][name] = {{"faces", faces},
                              {"methods", methods},
                              {"detect_ms", sum.detect_ms / n},
                              {"track_ms", sum.track_ms / n},
                              {"identity_ms", sum.identity_ms / n},
                              {"render_ms", sum.render_ms / n},
                              {"blend_ms", sum.blend_ms / n},
                              {"total_ms", sum.total_ms / n},
                              {"fps", 1000.0 * n / sum.total_ms},
                              {"detector_alone_ms", MedianMs(5, [&] { (void)(*tiny)->Detect(*frame); })}};
    // Writing one frame of a recording, per container: what each copy of a held frame costs (plus
    // a seal per face), so a device recording keeps real time while this stays under the camera's
    // frame interval (33 ms at 30 fps).
    for (const char* ext : {"mkv", "avi", "mp4"}) {
      engine::VideoFileWriter writer(t.dir + "/bench-" + name + "." + ext, 30);  // removed unwritten
      Status written;
      const double ms = MedianMs(static_cast<int>(*iters), [&] {
        if (written.ok()) written = writer.Write(*frame);
      });
      if (!written.ok()) return Fail(written);
      report["camera"][name]["record_write_ms"][ext] = ms;
    }
  }
  report["camera_settings"] = {{"replace", engine::ReplaceMethodName(*method)},
                               {"detect_every", *detect_every},
                               {"detector_size", *detector_size}};

  // Batch photos: each photo once per round, PNG with sealed payloads; then exact restores.
  std::vector<engine::AnonymizeOutput> outputs;
  auto t0 = Clock::now();
  for (const auto& p : photos) {
    auto out = (*batch)->AnonymizeImage(p, *key, ".png");
    if (!out.ok()) return Fail(out.status());
    outputs.push_back(std::move(*out));
  }
  double batch_s = std::chrono::duration<double>(Clock::now() - t0).count();
  keys::RestoreRequestSpec spec{"default", 0, {}, "bench", "bench", "op", 1'900'000'000 + 3600};
  for (const auto& o : outputs) spec.targets.push_back(keys::Sha256(o.image_bytes));
  auto request = t.store->CreateRequest(spec, 1'900'000'000);
  if (!request.ok()) return Fail(request.status());
  request->Approve(t.a, 1'900'000'000);
  auto grant = t.store->AuthorizeRestore(*request, 1'900'000'000);
  if (!grant.ok()) return Fail(grant.status());
  size_t restored_faces = 0;
  auto t1 = Clock::now();
  for (const auto& o : outputs) {
    std::vector<uchar> buf(o.image_bytes.begin(), o.image_bytes.end());
    cv::Mat decoded = cv::imdecode(buf, cv::IMREAD_COLOR);
    auto r = engine::RestoreFromPayloads(decoded, o.manifest, *grant);
    if (!r.ok()) return Fail(r.status());
    restored_faces += static_cast<size_t>(r->faces_restored);
  }
  double restore_s = std::chrono::duration<double>(Clock::now() - t1).count();
  size_t faces = 0;
  for (const auto& o : outputs) faces += o.manifest.faces.size();
  report["batch"] = {{"photos_per_s", photos.size() / batch_s}, {"faces", faces}, {"seconds", batch_s},
                     {"quarter_turns", batch_params.quarter_turns}};
  report["restore"] = {{"images_per_s", outputs.size() / restore_s}, {"faces", restored_faces}, {"seconds", restore_s}};
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  report["peak_rss_mb"] = u.ru_maxrss / 1024.0;

  // The same batch as `veil anonymize` runs it by default (--jobs auto): workers with their own
  // pipelines take the next photo in turn.
  auto workers = ParseJobs("auto");
  if (!workers.ok()) return Fail(workers.status());
  auto made = MakeWorkerPipelines(std::move(batch.value()), batch_params, std::min(*workers, photos.size()));
  if (!made.ok()) return Fail(made.status());
  std::vector<std::unique_ptr<engine::Pipeline>>& pool = *made;
  std::atomic<size_t> next{0};
  std::vector<Status> failures(pool.size());
  auto t2 = Clock::now();
  {
    std::vector<std::thread> threads;
    for (size_t w = 0; w < pool.size(); ++w) {
      threads.emplace_back([&, w] {
        for (size_t i = next++; i < photos.size() && failures[w].ok(); i = next++) {
          auto out = pool[w]->AnonymizeImage(photos[i], *key, ".png");
          if (!out.ok()) failures[w] = out.status();
        }
      });
    }
    for (auto& th : threads) th.join();
  }
  const double pool_s = std::chrono::duration<double>(Clock::now() - t2).count();
  for (const auto& st : failures) {
    if (!st.ok()) return Fail(st);
  }
  getrusage(RUSAGE_SELF, &u);
  report["batch_workers"] = {{"workers", pool.size()}, {"threads_each", engine::RuntimeThreads()},
                             {"photos_per_s", photos.size() / pool_s}, {"seconds", pool_s},
                             {"peak_rss_mb", u.ru_maxrss / 1024.0}};

  if (json) {
    PrintJson(report);
    return 0;
  }
  std::printf("threads: %d; camera path: --replace %s, detector input %lld, detection every %lld frame(s)\n",
              report["threads"].get<int>(), engine::ReplaceMethodName(*method), static_cast<long long>(*detector_size),
              static_cast<long long>(*detect_every));
  for (const auto& [name, c] : report["camera"].items()) {
    std::printf("camera %-9s %d face(s) (%s), ms per frame: detect %.1f, track %.1f, identity %.1f, render %.1f, "
                "blend %.1f; total %.1f = %.1f fps (detector alone %.1f ms)\n",
                name.c_str(), c["faces"].get<int>(), c["methods"].get<std::string>().c_str(), c["detect_ms"].get<double>(), c["track_ms"].get<double>(),
                c["identity_ms"].get<double>(), c["render_ms"].get<double>(), c["blend_ms"].get<double>(),
                c["total_ms"].get<double>(), c["fps"].get<double>(), c["detector_alone_ms"].get<double>());
    const auto& w = c["record_write_ms"];
    std::printf("  recording %s, ms to write one frame: .mkv %.1f, .avi %.1f, .mp4 %.1f\n", name.c_str(), w["mkv"].get<double>(),
                w["avi"].get<double>(), w["mp4"].get<double>());
  }
  std::printf("batch photos: %.2f photos/s (%zu photos, %zu faces, SSD %s, --replace %s, PNG, sealed payloads)\n",
              report["batch"]["photos_per_s"].get<double>(), photos.size(), faces,
              batch_params.quarter_turns ? "at every quarter turn" : "upright only", engine::ReplaceMethodName(*method));
  std::printf("exact restores: %.2f images/s (%zu faces)\n", report["restore"]["images_per_s"].get<double>(), restored_faces);
  std::printf("peak memory: %.0f MB\n", report["peak_rss_mb"].get<double>());
  const auto& bw = report["batch_workers"];
  std::printf("batch photos, --jobs auto: %.2f photos/s (%zu workers x %d threads; peak memory then %.0f MB)\n",
              bw["photos_per_s"].get<double>(), bw["workers"].get<size_t>(), bw["threads_each"].get<int>(),
              bw["peak_rss_mb"].get<double>());
  return 0;
}

}  // namespace

int RunBench(int argc, char** argv) { return Bench(argc, argv); }

}  // namespace veil::cli
