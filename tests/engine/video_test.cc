// Videos through the pipeline: every frame anonymized, the manifest in order, nothing half-written.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "test_support.h"
#include "veil/engine/manifest.h"
#include "veil/engine/video.h"
#include "veil/keys/key_store.h"

using namespace veil;
using namespace veil::engine;
namespace fs = std::filesystem;

namespace {

struct Workspace {
  fs::path dir;
  std::unique_ptr<keys::KeyStore> store;
  Workspace() {
    std::string d = (fs::temp_directory_path() / "veil-video-XXXXXX").string();
    REQUIRE(::mkdtemp(d.data()) != nullptr);
    dir = d;
    std::string k(32, 'v');
    auto s = keys::KeyStore::Create((dir / "store").string(), keys::Credential::FromRawKey(keys::SecretBytes::Copy(k.data(), 32)),
                                    {1, 8192}, "test", "default", 1);
    REQUIRE(s.ok());
    store = std::move(s.value());
  }
  ~Workspace() {
    store.reset();
    fs::remove_all(dir);
  }
  keys::KeyHandle Key() {
    auto k = store->KeyForNewWork("default", "test");
    REQUIRE(k.ok());
    return std::move(k.value());
  }
};

// A short clip: a demo photo, scaled down, panning a few pixels per frame.
std::string MakeClip(const fs::path& dir, int frames) {
  cv::Mat photo;
  cv::resize(testing::DemoImage("sample1.jpg"), photo, cv::Size(720, 480), 0, 0, cv::INTER_AREA);
  const std::string path = (dir / "clip.avi").string();
  cv::VideoWriter w(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10, cv::Size(640, 480));
  REQUIRE(w.isOpened());
  for (int i = 0; i < frames; ++i) w.write(photo(cv::Rect(i * 6, 0, 640, 480)).clone());
  w.release();
  return path;
}

std::unique_ptr<Pipeline> MakePipeline() {
  PipelineParams p;
  p.models_dir = testing::ModelsDir().string();
  p.detector = DetectorKind::kTiny;
  p.scope = keys::ScopeKind::kStream;
  p.scope_id = "clip";
  auto pipeline = Pipeline::Create(p);
  REQUIRE(pipeline.ok());
  return std::move(pipeline.value());
}

}  // namespace

TEST_CASE("every frame of a video is anonymized and the manifest lists each face with its frame") {
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 8);
  auto pipeline = MakePipeline();
  const std::string out = (ws.dir / "out.avi").string();
  int64_t last_progress = 0;
  auto m = AnonymizeVideo(*pipeline, ws.Key(), clip, out, [&](const VideoProgress& p) { last_progress = p.frame; });
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  CHECK(m->frames == 8);
  CHECK(last_progress == 8);
  CHECK(m->scope == keys::ScopeKind::kStream);
  // The same three people are replaced in every frame (a face the detector misses in one frame is
  // held where it was last seen, and the manifest says so).
  std::vector<int> per_frame(8, 0);
  for (const auto& f : m->faces) per_frame.at(f.frame)++;
  for (int n : per_frame) CHECK(n == 3);
  int held = 0;
  for (const auto& f : m->faces) held += f.method_reason.find("held") != std::string::npos;
  MESSAGE("faces held over a missed detection: " << held << " of " << m->faces.size());
  // The output decodes to 8 frames whose face regions differ from the input's.
  cv::VideoCapture in(clip), anon(out);
  cv::Mat a, b;
  int changed = 0, frames = 0;
  while (in.read(a) && anon.read(b)) {
    for (const auto& f : m->faces) {
      if (f.frame == static_cast<uint32_t>(frames) && cv::norm(a(f.region), b(f.region), cv::NORM_L1) / f.region.area() > 5) ++changed;
    }
    ++frames;
  }
  CHECK(frames == 8);
  CHECK(changed == 24);
  // The manifest round trips.
  auto back = ParseManifest(SerializeManifest(*m));
  REQUIRE(back.ok());
  CHECK(back->faces.size() == m->faces.size());
  CHECK(back->faces.back().frame == 7);
}

TEST_CASE("a video is never written over an existing file, and a non-video is refused cleanly") {
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 2);
  auto pipeline = MakePipeline();
  CHECK(AnonymizeVideo(*pipeline, ws.Key(), clip, clip).status().code() == StatusCode::kAlreadyExists);
  const std::string junk = (ws.dir / "junk.mp4").string();
  { std::ofstream(junk) << "this is not a video"; }
  CHECK_FALSE(AnonymizeVideo(*pipeline, ws.Key(), junk, (ws.dir / "o.mp4").string()).ok());
  CHECK_FALSE(fs::exists(ws.dir / "o.mp4"));
  for (const auto& e : fs::directory_iterator(ws.dir)) CHECK(e.path().string().find(".tmp.") == std::string::npos);
}
