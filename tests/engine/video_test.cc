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
#include "veil/keys/fs.h"
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

namespace {

std::vector<cv::Mat> DecodeFrames(const std::string& path) {
  std::vector<cv::Mat> frames;
  cv::VideoCapture cap(path);
  cv::Mat f;
  while (cap.read(f)) frames.push_back(f.clone());
  return frames;
}

std::unique_ptr<Pipeline> SealingPipeline() {
  PipelineParams p;
  p.models_dir = testing::ModelsDir().string();
  p.detector = DetectorKind::kTiny;
  p.payloads = PayloadLocation::kInline;
  auto pipeline = Pipeline::Create(p);
  REQUIRE(pipeline.ok());
  return std::move(pipeline.value());
}

std::string Bytes(const std::string& path) {
  auto b = keys::ReadFile(path, 1u << 30);
  REQUIRE(b.ok());
  return *b;
}

}  // namespace

TEST_CASE("a lossless .mkv video restores from its sealed payloads to the original frames bit for bit") {
  testing::TestStore s('w');
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 4);
  const std::string out = (ws.dir / "anonymized.mkv").string(), back = (ws.dir / "restored.mkv").string();
  auto pipeline = SealingPipeline();
  auto m = AnonymizeVideo(*pipeline, s.Key(), clip, out);
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  REQUIRE(m->faces.size() == 12);
  for (const auto& f : m->faces) CHECK(!f.sealed_payload.empty());
  const auto original = DecodeFrames(clip);
  const auto anonymized = DecodeFrames(out);
  REQUIRE(original.size() == 4);
  REQUIRE(anonymized.size() == 4);
  CHECK(cv::norm(original[0], anonymized[0], cv::NORM_INF) > 0);  // the faces are gone

  auto r = RestoreVideoFromPayloads(out, *m, s.Grant(Bytes(out)), back);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->frames == 4);
  CHECK(r->faces_restored == 12);
  const auto restored = DecodeFrames(back);
  REQUIRE(restored.size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK(cv::norm(original[i], restored[i], cv::NORM_INF) == 0);
  }
  // Same input and key: the same video bytes and manifest.
  auto again = AnonymizeVideo(*SealingPipeline(), s.Key(), clip, (ws.dir / "again.mkv").string());
  REQUIRE(again.ok());
  CHECK(SerializeManifest(*again) == SerializeManifest(*m));
}

TEST_CASE("video restore refuses an edited video, a moved or tampered payload and a wrong key, and writes nothing") {
  testing::TestStore s('x');
  testing::TestStore other('y');
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 3);
  const std::string out = (ws.dir / "anonymized.mkv").string();
  auto m = AnonymizeVideo(*SealingPipeline(), s.Key(), clip, out);
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  const auto grant = s.Grant(Bytes(out));
  const std::string target = (ws.dir / "restored.mkv").string();

  SUBCASE("a frame edited after anonymization") {
    auto frames = DecodeFrames(out);
    frames[1].at<cv::Vec3b>(5, 5)[0] ^= 1;
    const std::string edited = (ws.dir / "edited.mkv").string();
    cv::VideoWriter w(edited, cv::VideoWriter::fourcc('F', 'F', 'V', '1'), 10, frames[0].size());
    for (const auto& f : frames) w.write(f);
    w.release();
    CHECK(RestoreVideoFromPayloads(edited, *m, grant, target).status().code() == StatusCode::kDataLoss);
  }
  SUBCASE("a payload moved to another frame") {
    Manifest moved = *m;
    moved.faces[0].frame = 1;
    CHECK(RestoreVideoFromPayloads(out, moved, grant, target).status().code() == StatusCode::kUnauthenticated);
  }
  SUBCASE("two faces' payloads exchanged") {
    Manifest swapped = *m;
    std::swap(swapped.faces[0].sealed_payload, swapped.faces[1].sealed_payload);
    CHECK(RestoreVideoFromPayloads(out, swapped, grant, target).status().code() == StatusCode::kUnauthenticated);
  }
  SUBCASE("a payload altered") {
    Manifest tampered = *m;
    tampered.faces[2].sealed_payload[tampered.faces[2].sealed_payload.size() / 2] ^= 0x20;
    CHECK(RestoreVideoFromPayloads(out, tampered, grant, target).status().code() == StatusCode::kUnauthenticated);
  }
  SUBCASE("another key store's key") {
    CHECK(RestoreVideoFromPayloads(out, *m, other.Grant(Bytes(out)), target).status().code() ==
          StatusCode::kUnauthenticated);
  }
  SUBCASE("an image's manifest") {
    Manifest image = *m;
    image.frames = 0;
    CHECK(RestoreVideoFromPayloads(out, image, grant, target).status().code() == StatusCode::kInvalidArgument);
  }
  CHECK_FALSE(fs::exists(target));
  for (const auto& e : fs::directory_iterator(ws.dir)) CHECK(e.path().string().find(".tmp.") == std::string::npos);
}
