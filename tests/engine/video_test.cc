// Videos through the pipeline: every frame anonymized, the manifest in order, nothing half-written.
#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "matroska_ids.h"
#include "test_support.h"
#include "veil/engine/manifest.h"
#include "veil/engine/payload_container.h"
#include "veil/engine/pipeline.h"
#include "veil/keys/aead.h"
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

// `frames` copies of `frame` written to `path` (FFV1 .mkv unless told otherwise).
void WriteStill(const std::string& path, const cv::Mat& frame, int frames,
                int fourcc = cv::VideoWriter::fourcc('F', 'F', 'V', '1'), int api = cv::CAP_ANY) {
  cv::VideoWriter w(path, api, fourcc, 10, frame.size());
  REQUIRE(w.isOpened());
  for (int i = 0; i < frames; ++i) w.write(frame);
}

// The first demo photo scaled to `size`.
cv::Mat DemoFrame(cv::Size size) {
  cv::Mat photo;
  cv::resize(testing::DemoImage("sample1.jpg"), photo, size, 0, 0, cv::INTER_AREA);
  return photo;
}

std::unique_ptr<Pipeline> MakePipeline(PayloadLocation payloads = PayloadLocation::kInline) {
  PipelineParams p;
  p.payloads = payloads;
  p.models_dir = testing::ModelsDir().string();
  p.detector = DetectorKind::kTiny;
  p.scope = keys::ScopeKind::kStream;
  p.scope_id = "clip";
  auto pipeline = Pipeline::Create(p);
  REQUIRE(pipeline.ok());
  return std::move(pipeline.value());
}

// A live source's time: `read_at[i]` when frame i is read (the time moves on once each frame is
// done, seen through on_frame), plus `write_cost` per clock reading, so that writing a frame (read
// before and after) seems to take that long.
struct FakeClock {
  std::vector<double> read_at;
  double write_cost = 0;
  size_t frames = 0;
  double now = 0, extra = 0;
  explicit FakeClock(std::vector<double> times) : read_at(std::move(times)), now(read_at.at(0)) {}
  StreamOptions Options() {
    StreamOptions o;
    o.clock = [this] { return now + (extra += write_cost); };
    o.on_frame = [this](const FrameOutput&) {
      ++frames;
      if (frames < read_at.size()) now = read_at[frames];
      extra = 0;
      return true;
    };
    return o;
  }
};

// No temporary file or folder (a video, container or sidecar being written) is left below `dir`.
void CheckNoTemporaryFiles(const fs::path& dir) {
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    CHECK(e.path().string().find(".tmp.") == std::string::npos);
    CHECK(e.path().string().find(".veil-video-") == std::string::npos);
  }
}

}  // namespace

TEST_CASE("every frame of a video is anonymized and the manifest lists each face with its frame") {
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 8);
  auto pipeline = MakePipeline();
  const std::string out = (ws.dir / "out.avi").string();
  int64_t last_progress = 0;
  VideoOptions options;
  options.progress = [&](const VideoProgress& p) { last_progress = p.frame; };
  auto m = AnonymizeVideo(*pipeline, ws.Key(), clip, out, options);
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
  CheckNoTemporaryFiles(ws.dir);
}

TEST_CASE("a video's name is a file, never an FFmpeg protocol: concat:, subfile and pipe: names read the file itself") {
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 2);
  int64_t frames = 0;
  REQUIRE(VideoFramesSha256(clip, &frames).ok());
  REQUIRE(frames == 2);
  // Relative names, as a shell glob gives them, from inside the folder.
  struct Cwd {
    fs::path before = fs::current_path();
    ~Cwd() { fs::current_path(before); }
  } cwd;
  fs::current_path(ws.dir);
  fs::copy_file(clip, ws.dir / "subfile,,start,0,end,0,,:copy.avi");
  for (const std::string name : {"concat:clip.avi|clip.avi", "pipe:0.avi"}) {
    CAPTURE(name);
    { std::ofstream(name) << ""; }  // an empty file: FFmpeg read it as a protocol and decoded 4 frames
    CHECK(VideoFramesSha256(name, &frames).status().code() == StatusCode::kInvalidArgument);
  }
  auto copy = VideoFramesSha256("subfile,,start,0,end,0,,:copy.avi", &frames);  // FFmpeg read "copy.avi" from 0 to 0
  REQUIRE_MESSAGE(copy.ok(), copy.status().ToString());
  CHECK(frames == 2);
  CHECK(FfmpegFileName("concat:a.mkv|b.mkv") == (fs::current_path() / "concat:a.mkv|b.mkv").string());
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

TEST_CASE("a lossless .mkv video restores from its payload container to the original frames bit for bit") {
  testing::TestStore s('w');
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 4);
  const std::string out = (ws.dir / "anonymized.mkv").string(), back = (ws.dir / "restored.mkv").string();
  auto pipeline = SealingPipeline();
  auto m = AnonymizeVideo(*pipeline, s.Key(), clip, out);
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  REQUIRE(m->faces.size() == 12);
  for (const auto& f : m->faces) {
    CHECK(f.payload_location == PayloadLocation::kSidecar);
    CHECK(f.sealed_payload.empty());  // streamed into the container, not held in the manifest
  }
  CHECK(m->payload_container.records == 12);
  CHECK(m->payload_container.size == fs::file_size(VideoPayloadPath(out)));
  CHECK_FALSE(m->manifest_seal.empty());
  const auto original = DecodeFrames(clip);
  const auto anonymized = DecodeFrames(out);
  REQUIRE(original.size() == 4);
  REQUIRE(anonymized.size() == 4);
  CHECK(cv::norm(original[0], anonymized[0], cv::NORM_INF) > 0);  // the faces are gone

  auto r = RestoreVideoFromPayloads(out, *m, s.Grant(Bytes(out)), VideoPayloadPath(out), back);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->frames == 4);
  CHECK(r->faces_restored == 12);
  CHECK(fs::status(back).permissions() == (fs::perms::owner_read | fs::perms::owner_write));
  const auto restored = DecodeFrames(back);
  REQUIRE(restored.size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK(cv::norm(original[i], restored[i], cv::NORM_INF) == 0);
  }
  // Same input and key, container kept elsewhere (as the key store keeps it): the same manifest
  // and container bytes, under the name the caller chose, and nothing beside the video.
  const fs::path kept = ws.dir / "kept";
  fs::create_directories(kept);
  VideoOptions elsewhere;
  elsewhere.payloads.folder = kept.string();
  elsewhere.payloads.name = [](const std::string& id) { return keys::ToHex(id) + ".veilpay"; };
  const std::string again_out = (ws.dir / "again.mkv").string();
  auto again = AnonymizeVideo(*SealingPipeline(), s.Key(), clip, again_out, elsewhere);
  REQUIRE_MESSAGE(again.ok(), again.status().ToString());
  CHECK(SerializeManifest(*again) == SerializeManifest(*m));
  const std::string kept_container = (kept / (keys::ToHex(m->manifest_id) + ".veilpay")).string();
  CHECK(Bytes(kept_container) == Bytes(VideoPayloadPath(out)));
  CHECK_FALSE(fs::exists(VideoPayloadPath(again_out)));
  CHECK(Bytes(again_out) == Bytes(out));  // the same video bytes too: a request names the file's digest
}

TEST_CASE("two videos that decode to the same frames keep their payload containers apart") {
  testing::TestStore s('u');
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 2);
  const std::string twin = (ws.dir / "twin.avi").string();
  fs::copy_file(clip, twin);
  { std::ofstream(twin, std::ios::app | std::ios::binary) << "trailing bytes no decoder reads"; }
  REQUIRE(DecodeFrames(twin).size() == 2);
  const fs::path kept = ws.dir / "kept";
  fs::create_directories(kept);
  VideoOptions elsewhere;  // as the key store keeps them: named by the manifest id
  elsewhere.payloads.folder = kept.string();
  elsewhere.payloads.name = [](const std::string& id) { return keys::ToHex(id) + ".veilpay"; };
  auto a = AnonymizeVideo(*SealingPipeline(), s.Key(), clip, (ws.dir / "a.mkv").string(), elsewhere);
  auto b = AnonymizeVideo(*SealingPipeline(), s.Key(), twin, (ws.dir / "b.mkv").string(), elsewhere);
  REQUIRE_MESSAGE(a.ok(), a.status().ToString());
  REQUIRE_MESSAGE(b.ok(), b.status().ToString());
  CHECK(a->output_pixels_sha256 == b->output_pixels_sha256);
  CHECK(a->manifest_id != b->manifest_id);
  for (const Manifest* m : {&*a, &*b}) {
    const std::string container = (kept / (keys::ToHex(m->manifest_id) + ".veilpay")).string();
    CHECK(keys::FileHolds(container, m->payload_container.sha256, m->payload_container.size));
  }
}

TEST_CASE("a video anonymized without payloads gets the same manifest on every run") {
  testing::TestStore s('n');
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 2);
  auto first = AnonymizeVideo(*MakePipeline(PayloadLocation::kNone), s.Key(), clip, (ws.dir / "a.mkv").string());
  auto second = AnonymizeVideo(*MakePipeline(PayloadLocation::kNone), s.Key(), clip, (ws.dir / "b.mkv").string());
  REQUIRE_MESSAGE(first.ok(), first.status().ToString());
  REQUIRE_MESSAGE(second.ok(), second.status().ToString());
  CHECK(SerializeManifest(*first) == SerializeManifest(*second));
  CHECK_FALSE(fs::exists(VideoPayloadPath((ws.dir / "a.mkv").string())));
  for (const auto& f : first->faces) CHECK(f.payload_location == PayloadLocation::kNone);
  // Sealed as a photo's manifest is, though no original is kept: restore finds nothing to restore,
  // and a record changed since is altered.
  CHECK_FALSE(first->manifest_seal.empty());
  CHECK_FALSE(first->key_check.empty());
  const std::string a = (ws.dir / "a.mkv").string(), target = (ws.dir / "restored.mkv").string();
  auto nothing = RestoreVideoFromPayloads(a, *first, s.Grant(Bytes(a)), VideoPayloadPath(a), target);
  CHECK(nothing.status().code() == StatusCode::kFailedPrecondition);
  Manifest edited = *first;
  REQUIRE_FALSE(edited.faces.empty());
  edited.faces[0].box.x += 1;
  auto altered = RestoreVideoFromPayloads(a, edited, s.Grant(Bytes(a)), VideoPayloadPath(a), target);
  CHECK(altered.status().code() == StatusCode::kDataLoss);
  CHECK_FALSE(fs::exists(target));
}

TEST_CASE("a video that changes while it is anonymized (still being copied) is refused with nothing written") {
  testing::TestStore s('c');
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 3);
  const std::string out = (ws.dir / "out.mkv").string();
  VideoOptions options;
  options.progress = [&](const VideoProgress& p) {
    if (p.frame == 1) std::ofstream(clip, std::ios::app | std::ios::binary) << "more bytes arriving";
  };
  auto m = AnonymizeVideo(*MakePipeline(), s.Key(), clip, out, options);
  CHECK(m.status().code() == StatusCode::kIoError);
  CHECK(m.status().message().find("changed while it was read") != std::string::npos);
  CHECK_FALSE(fs::exists(out));
  CHECK_FALSE(fs::exists(VideoPayloadPath(out)));
  CheckNoTemporaryFiles(ws.dir);
  REQUIRE(AnonymizeVideo(*MakePipeline(), s.Key(), clip, out).ok());  // complete now
}

TEST_CASE("a 120 fps phone clip's frame rate, which MPEG-4 cannot carry as it is, is written rounded to 1/100") {
  // OpenCV hands FFmpeg 119.883 as 119883 / 1000, over the MPEG-4 encoder's 65535: .mp4 failed.
  testing::TestStore s('f');
  Workspace ws;
  const std::string clip = (ws.dir / "hfr.avi").string();
  {
    cv::VideoWriter w(clip, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 119.8833, cv::Size(320, 240));
    REQUIRE(w.isOpened());
    for (int i = 0; i < 3; ++i) w.write(DemoFrame(cv::Size(320, 240)));
  }
  REQUIRE(cv::VideoCapture(clip).get(cv::CAP_PROP_FPS) > 119.882);
  for (const char* name : {"out.mp4", "out.mkv", "out.avi"}) {
    CAPTURE(name);
    const std::string out = (ws.dir / name).string();
    auto m = AnonymizeVideo(*MakePipeline(), s.Key(), clip, out);
    REQUIRE_MESSAGE(m.ok(), m.status().ToString());
    CHECK(m->frames == 3);
    CHECK(std::abs(cv::VideoCapture(out).get(cv::CAP_PROP_FPS) - 119.88) < 1e-3);  // not 119.883
  }
  // Ordinary rates are kept as they are.
  const std::string ntsc = (ws.dir / "ntsc.avi").string();
  {
    cv::VideoWriter w(ntsc, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 29.97, cv::Size(320, 240));
    for (int i = 0; i < 2; ++i) w.write(DemoFrame(cv::Size(320, 240)));
  }
  REQUIRE(AnonymizeVideo(*MakePipeline(), s.Key(), ntsc, (ws.dir / "ntsc.mp4").string()).ok());
  CHECK(cv::VideoCapture((ws.dir / "ntsc.mp4").string()).get(cv::CAP_PROP_FPS) == doctest::Approx(29.97).epsilon(1e-5));
}

TEST_CASE("a video is written only under a name that holds what Veil writes (.mkv, .mp4, .avi)") {
  testing::TestStore s('w');
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 2);
  for (const char* name : {"out.webm", "out.mov", "out"}) {
    CAPTURE(name);
    const std::string out = (ws.dir / name).string();
    CHECK(AnonymizeVideo(*MakePipeline(), s.Key(), clip, out).status().code() == StatusCode::kInvalidArgument);
    VideoFileWriter w(out, 25);
    CHECK(w.Write(DemoFrame(cv::Size(64, 48))).code() == StatusCode::kInvalidArgument);
    CHECK_FALSE(fs::exists(out));
  }
  CheckNoTemporaryFiles(ws.dir);
  CHECK(IsWritableVideoPath("a/B.MKV"));
  CHECK_FALSE(IsWritableVideoPath("a.m4v"));
}

TEST_CASE("a video's manifest names its input file and key: another file of the same frames or another key is not its input") {
  testing::TestStore s('i');
  testing::TestStore other('j');
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 2);
  const std::string twin = (ws.dir / "twin.avi").string();  // the same frames, other bytes
  fs::copy_file(clip, twin);
  { std::ofstream(twin, std::ios::app | std::ios::binary) << "trailing bytes no decoder reads"; }
  auto m = AnonymizeVideo(*MakePipeline(), s.Key(), clip, (ws.dir / "a.mkv").string());
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  auto is_for = [&](const Manifest& manifest, const std::string& input, const keys::KeyHandle& key) {
    auto r = VideoManifestIsFor(manifest, input, key);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    return *r;
  };
  CHECK(is_for(*m, clip, s.Key()));
  CHECK_FALSE(is_for(*m, twin, s.Key()));
  CHECK_FALSE(is_for(*m, clip, other.Key()));
  Manifest still = *m;  // an image's manifest (no frames) is never a video's
  still.frames = 0;
  CHECK_FALSE(is_for(still, clip, s.Key()));
  CHECK_FALSE(VideoManifestIsFor(*m, (ws.dir / "missing.avi").string(), s.Key()).ok());
}

TEST_CASE("a video cut short is refused as truncated, not anonymized in part") {
  testing::TestStore s('t');
  Workspace ws;
  const std::string whole = (ws.dir / "whole.mkv").string();
  WriteStill(whole, DemoFrame(cv::Size(640, 480)), 20);
  std::string bytes = Bytes(whole);
  const std::string cut = (ws.dir / "cut.mkv").string();
  { std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2); }
  const std::string out = (ws.dir / "anonymized.mkv").string();
  auto m = AnonymizeVideo(*MakePipeline(), s.Key(), cut, out);
  if (cv::VideoCapture(cut).get(cv::CAP_PROP_FRAME_COUNT) < 20) {
    MESSAGE("this FFmpeg does not tell the frame count of a cut .mkv; skipped");
    return;
  }
  REQUIRE_FALSE(m.ok());
  CHECK(m.status().code() == StatusCode::kDataLoss);
  CHECK_MESSAGE(m.status().message().find("truncated") != std::string::npos, m.status().message());
  CHECK_FALSE(fs::exists(out));
  CheckNoTemporaryFiles(ws.dir);
}

TEST_CASE("a video of odd width or height is refused before anything is written") {
  testing::TestStore s('o');
  Workspace ws;
  const std::string odd = (ws.dir / "odd.avi").string();
  // OpenCV's own MJPEG writer keeps odd sizes (FFmpeg's drops the last column and row).
  WriteStill(odd, DemoFrame(cv::Size(641, 481)), 2, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), cv::CAP_OPENCV_MJPEG);
  REQUIRE(cv::VideoCapture(odd).get(cv::CAP_PROP_FRAME_WIDTH) == 641);
  const std::string out = (ws.dir / "anonymized.mkv").string();
  auto m = AnonymizeVideo(*SealingPipeline(), s.Key(), odd, out);
  CHECK(m.status().code() == StatusCode::kUnsupported);
  CHECK(m.status().message().find("odd frame size") != std::string::npos);
  CHECK_FALSE(fs::exists(out));
  CHECK_FALSE(fs::exists(VideoPayloadPath(out)));
}

namespace {

// Rewrites a payload container after `edit` changes its records (a forger without the key).
void RewriteContainer(const std::string& from, const std::string& to,
                      const std::function<void(std::vector<PayloadRecord>&)>& edit) {
  auto reader = PayloadContainerReader::OpenFile(from);
  REQUIRE(reader.ok());
  std::vector<PayloadRecord> records;
  for (;;) {
    auto next = reader->Next();
    REQUIRE(next.ok());
    if (!next->has_value()) break;
    records.push_back(std::move(**next));
  }
  edit(records);
  auto writer = PayloadContainerWriter::Create(to, reader->Ref().container_id);
  REQUIRE(writer.ok());
  for (const auto& r : records) REQUIRE(writer->Append(r).ok());
  REQUIRE(writer->Commit(to, true).ok());
}

}  // namespace

TEST_CASE("video restore refuses an edited video as edited, a swapped, cut or altered container as altered, a wrong key as such, and writes nothing") {
  testing::TestStore s('x');
  testing::TestStore other('y');
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 3);
  const std::string out = (ws.dir / "anonymized.mkv").string();
  auto m = AnonymizeVideo(*SealingPipeline(), s.Key(), clip, out);
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  REQUIRE(m->faces.size() >= 3);
  const auto grant = s.Grant(Bytes(out));
  const std::string container = VideoPayloadPath(out);
  const std::string forged = (ws.dir / "forged.veilpay").string();
  const std::string target = (ws.dir / "restored.mkv").string();
  auto restore = [&](const std::string& video, const Manifest& manifest, const std::string& payloads) {
    return RestoreVideoFromPayloads(video, manifest, grant, payloads, target).status().code();
  };

  SUBCASE("a frame edited after anonymization") {
    auto frames = DecodeFrames(out);
    frames[1].at<cv::Vec3b>(5, 5)[0] ^= 1;
    const std::string edited = (ws.dir / "edited.mkv").string();
    cv::VideoWriter w(edited, cv::VideoWriter::fourcc('F', 'F', 'V', '1'), 10, frames[0].size());
    for (const auto& f : frames) w.write(f);
    w.release();
    CHECK(restore(edited, *m, container) == StatusCode::kEdited);
  }
  SUBCASE("a face moved to another frame in the manifest") {
    Manifest moved = *m;
    moved.faces[0].frame = 1;
    CHECK(restore(out, moved, container) == StatusCode::kDataLoss);
  }
  SUBCASE("a face's region changed in the manifest") {
    Manifest shifted = *m;
    shifted.faces[1].region.x += 1;
    CHECK(restore(out, shifted, container) == StatusCode::kDataLoss);
  }
  SUBCASE("a face's box or method reason changed in the manifest") {
    Manifest edited = *m;
    edited.faces[2].box.x += 0.5f;
    CHECK(restore(out, edited, container) == StatusCode::kDataLoss);
    edited = *m;
    edited.faces[0].method_reason = "nothing to see";
    CHECK(restore(out, edited, container) == StatusCode::kDataLoss);
  }
  SUBCASE("the manifest's container reference altered") {
    Manifest altered = *m;
    altered.payload_container.records -= 1;
    CHECK(restore(out, altered, container) == StatusCode::kDataLoss);
  }
  SUBCASE("what the manifest says edited so that no original seems kept, or the video an image: altered, not another refusal") {
    Manifest none = *m;  // "anonymized with --payload none?" would hide the edit
    for (auto& f : none.faces) f.payload_location = PayloadLocation::kNone;
    CHECK(restore(out, none, container) == StatusCode::kDataLoss);
    Manifest image = *m;
    image.frames = 0;
    CHECK(restore(out, image, container) == StatusCode::kDataLoss);
    Manifest unsealed = *m;  // the seal taken away with the container reference kept...
    unsealed.manifest_seal.clear();
    CHECK(restore(out, unsealed, container) == StatusCode::kDataLoss);
    Manifest no_container = *m;  // ...or the container reference taken away with the seal kept
    no_container.payload_container = {};
    CHECK(restore(out, no_container, container) == StatusCode::kDataLoss);
  }
  SUBCASE("two records' payloads exchanged") {
    RewriteContainer(container, forged, [](std::vector<PayloadRecord>& r) { std::swap(r[0].sealed, r[1].sealed); });
    CHECK(restore(out, *m, forged) == StatusCode::kDataLoss);
  }
  SUBCASE("the last record cut off") {
    RewriteContainer(container, forged, [](std::vector<PayloadRecord>& r) { r.pop_back(); });
    CHECK(restore(out, *m, forged) == StatusCode::kDataLoss);
  }
  SUBCASE("a byte of a payload altered") {
    std::string bytes = Bytes(container);
    bytes[bytes.size() - 40] ^= 0x20;
    REQUIRE(keys::WriteFileAtomic(forged, bytes, true).ok());
    CHECK(restore(out, *m, forged) == StatusCode::kDataLoss);
  }
  SUBCASE("the container truncated mid-record") {
    std::string bytes = Bytes(container);
    REQUIRE(keys::WriteFileAtomic(forged, bytes.substr(0, bytes.size() - 7), true).ok());
    CHECK(restore(out, *m, forged) == StatusCode::kDataLoss);
  }
  SUBCASE("another video's container") {
    fs::create_directories(ws.dir / "two");
    const std::string clip2 = MakeClip(ws.dir / "two", 2);
    const std::string out2 = (ws.dir / "two" / "anonymized.mkv").string();
    REQUIRE(AnonymizeVideo(*SealingPipeline(), s.Key(), clip2, out2).ok());
    CHECK(restore(out, *m, VideoPayloadPath(out2)) == StatusCode::kDataLoss);
  }
  SUBCASE("no container") {
    CHECK(restore(out, *m, forged) == StatusCode::kNotFound);
  }
  SUBCASE("a container whose format version was altered: altered, not from a newer Veil (the seal names other bytes)") {
    std::string bytes = Bytes(container);
    REQUIRE(bytes.compare(0, 8, "VEILPAY\n") == 0);
    REQUIRE(bytes.substr(12, 2) == std::string("\x08\x01", 2));  // the header's format_version, 1
    bytes[13] = 2;
    REQUIRE(keys::WriteFileAtomic(forged, bytes, true).ok());
    CHECK(restore(out, *m, forged) == StatusCode::kDataLoss);
  }
  SUBCASE("a FIFO or a folder where the container should be: refused at once, never waited on (the file is opened once, so no swap between a check and the open)") {
    REQUIRE(::mkfifo(forged.c_str(), 0600) == 0);
    CHECK(restore(out, *m, forged) == StatusCode::kNotFound);
    fs::remove(forged);
    fs::create_directory(forged);
    CHECK(restore(out, *m, forged) == StatusCode::kNotFound);
    fs::remove(forged);
  }
  SUBCASE("another key store's key") {
    auto wrong = RestoreVideoFromPayloads(out, *m, other.Grant(Bytes(out)), container, target);
    CHECK(wrong.status().code() == StatusCode::kUnauthenticated);
    CHECK(wrong.status().message().find("wrong key") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(target));
  CheckNoTemporaryFiles(ws.dir);
}

TEST_CASE("a video anonymized before payload containers (originals inside its manifest) still restores bit for bit") {
  testing::TestStore s('u');
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 2);
  const std::string out = (ws.dir / "anonymized.mkv").string(), back = (ws.dir / "restored.mkv").string();
  auto made = AnonymizeVideo(*SealingPipeline(), s.Key(), clip, out);
  REQUIRE(made.ok());
  // The manifest as Veil wrote it then: each original region sealed inside it, bound to the
  // manifest id, the output hash, the region and the frame; no container, no video seal.
  Manifest legacy = *made;
  legacy.payload_container = {};
  legacy.manifest_seal.clear();
  legacy.key_check.clear();
  const auto original = DecodeFrames(clip);
  const keys::KeyHandle key = s.Key();
  for (auto& f : legacy.faces) {
    std::vector<uchar> png;
    REQUIRE(cv::imencode(".png", original[f.frame](f.region), png));
    auto sealed = keys::SealPayload(key, keys::ScopeKind::kFace, keys::ToHex(legacy.manifest_id) + "#" + std::to_string(f.index),
                                    std::string(png.begin(), png.end()), PayloadAssociatedData(legacy, f.index), true);
    REQUIRE(sealed.ok());
    f.sealed_payload = *sealed;
    f.payload_location = PayloadLocation::kInline;
  }
  auto r = RestoreVideoFromPayloads(out, legacy, s.Grant(Bytes(out)), "", back);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->faces_restored == static_cast<int>(legacy.faces.size()));
  const auto restored = DecodeFrames(back);
  REQUIRE(restored.size() == 2);
  for (size_t i = 0; i < 2; ++i) CHECK(cv::norm(original[i], restored[i], cv::NORM_INF) == 0);
  // Its payloads stay bound to their frames.
  Manifest moved = legacy;
  moved.faces[0].frame = 1;
  CHECK(RestoreVideoFromPayloads(out, moved, s.Grant(Bytes(out)), "", (ws.dir / "moved.mkv").string()).status().code() ==
        StatusCode::kUnauthenticated);
}

TEST_CASE("a failed video job leaves neither the video nor its payload container") {
  testing::TestStore s('z');
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 2);
  const std::string out = (ws.dir / "anonymized.mkv").string();
  VideoOptions options;
  options.before_commit = [](const Manifest&) { return IoError("the sidecar could not be written"); };
  auto m = AnonymizeVideo(*SealingPipeline(), s.Key(), clip, out, options);
  CHECK(m.status().code() == StatusCode::kIoError);
  CHECK_FALSE(fs::exists(out));
  CHECK_FALSE(fs::exists(VideoPayloadPath(out)));
  // A container already there is never replaced.
  { std::ofstream(VideoPayloadPath(out)) << "someone's file"; }
  CHECK(AnonymizeVideo(*SealingPipeline(), s.Key(), clip, out).status().code() == StatusCode::kAlreadyExists);
  CHECK(Bytes(VideoPayloadPath(out)) == "someone's file");
  CHECK_FALSE(fs::exists(out));
  CheckNoTemporaryFiles(ws.dir);
}

TEST_CASE("a video job stopped by its caller leaves nothing behind and the same job then runs to the end") {
  testing::TestStore s('c');
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 4);
  const std::string out = (ws.dir / "anonymized.mkv").string();
  VideoOptions options;
  int64_t seen = 0;
  options.progress = [&](const VideoProgress& p) { seen = p.frame; };
  options.cancelled = [&] { return seen >= 2; };  // as a signal arriving after the second frame
  auto m = AnonymizeVideo(*SealingPipeline(), s.Key(), clip, out, options);
  CHECK(m.status().code() == StatusCode::kCancelled);
  CHECK(seen == 2);
  CHECK_FALSE(fs::exists(out));
  CHECK_FALSE(fs::exists(VideoPayloadPath(out)));
  CheckNoTemporaryFiles(ws.dir);
  auto again = AnonymizeVideo(*SealingPipeline(), s.Key(), clip, out);
  REQUIRE_MESSAGE(again.ok(), again.status().ToString());
  CHECK(again->frames == 4);
}

TEST_CASE("a video job stopped after its payload container appeared runs again over its own identical leftover") {
  testing::TestStore s('l');
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 2);
  const std::string out = (ws.dir / "anonymized.mkv").string();
  auto first = AnonymizeVideo(*SealingPipeline(), s.Key(), clip, out);
  REQUIRE_MESSAGE(first.ok(), first.status().ToString());
  const std::string container = Bytes(VideoPayloadPath(out));
  fs::remove(out);  // the state a job killed between its container and its video leaves
  auto again = AnonymizeVideo(*SealingPipeline(), s.Key(), clip, out);
  REQUIRE_MESSAGE(again.ok(), again.status().ToString());
  CHECK(SerializeManifest(*again) == SerializeManifest(*first));
  CHECK(Bytes(VideoPayloadPath(out)) == container);
  // A failure after that leaves the leftover alone: it was not this call's to remove.
  fs::remove(out);
  VideoOptions failing;
  failing.before_commit = [](const Manifest&) { return IoError("the sidecar could not be written"); };
  CHECK(AnonymizeVideo(*SealingPipeline(), s.Key(), clip, out, failing).status().code() == StatusCode::kIoError);
  CHECK(Bytes(VideoPayloadPath(out)) == container);
}

TEST_CASE("a video restore stopped by its caller writes nothing") {
  testing::TestStore s('r');
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 3);
  const std::string out = (ws.dir / "anonymized.mkv").string(), back = (ws.dir / "restored.mkv").string();
  auto m = AnonymizeVideo(*SealingPipeline(), s.Key(), clip, out);
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  VideoRestoreOptions options;
  int64_t seen = 0;
  bool committed = false;
  options.progress = [&](const VideoProgress& p) { seen = p.frame; };
  options.cancelled = [&] { return seen >= 1; };
  options.before_commit = [&](const VideoRestoreOutput&) {
    committed = true;
    return Status::Ok();
  };
  auto r = RestoreVideoFromPayloads(out, *m, s.Grant(Bytes(out)), VideoPayloadPath(out), back, options);
  CHECK(r.status().code() == StatusCode::kCancelled);
  CHECK_FALSE(committed);
  CHECK_FALSE(fs::exists(back));
  CheckNoTemporaryFiles(ws.dir);
}

TEST_CASE("a video file writer shows nothing under its name until Commit and never replaces a file") {
  Workspace ws;
  const std::string path = (ws.dir / "rec.mkv").string();
  cv::Mat frame(48, 64, CV_8UC3, cv::Scalar(10, 20, 30));
  {
    VideoFileWriter abandoned(path, 25);
    REQUIRE(abandoned.Write(frame).ok());
    CHECK(fs::exists(abandoned.temp_path()));
    CHECK_FALSE(fs::exists(path));
    // The file being written sits in a folder only its owner can enter, whatever its own mode.
    const auto folder = fs::path(abandoned.temp_path()).parent_path();
    CHECK(folder.parent_path() == ws.dir);
    CHECK((fs::status(folder).permissions() & (fs::perms::group_all | fs::perms::others_all)) == fs::perms::none);
  }
  CheckNoTemporaryFiles(ws.dir);
  {
    VideoFileWriter empty(path, 25);
    CHECK(empty.Commit().code() == StatusCode::kFailedPrecondition);
  }
  VideoFileWriter w(path, 25);
  REQUIRE(w.Write(frame).ok());
  CHECK(w.Write(cv::Mat(10, 10, CV_8UC3)).code() == StatusCode::kInvalidArgument);
  REQUIRE(w.Write(frame).ok());
  REQUIRE(w.Commit().ok());
  const auto frames = DecodeFrames(path);
  REQUIRE(frames.size() == 2);
  CHECK(cv::norm(frames[1], frame, cv::NORM_INF) == 0);  // FFV1: lossless
  VideoFileWriter second(path, 25);
  REQUIRE(second.Write(frame).ok());
  CHECK(second.Commit().code() == StatusCode::kAlreadyExists);
}

TEST_CASE("a live stream is recorded with its manifest and payload container and restores bit for bit") {
  testing::TestStore s('s');
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 5);
  const std::string out = (ws.dir / "recording.mkv").string(), back = (ws.dir / "restored.mkv").string();
  cv::VideoCapture camera(clip);  // stands in for a device: RecordStream only reads frames
  REQUIRE(camera.isOpened());
  StreamOptions options;
  int64_t shown = 0;
  options.on_frame = [&](const FrameOutput& f) {
    CHECK_FALSE(f.image.empty());
    ++shown;
    return true;
  };
  options.end = [&] { return shown >= 3; };  // a stop key after three frames
  StreamEnding ended;
  options.ended = &ended;
  auto m = RecordStream(*SealingPipeline(), s.Key(), camera, out, options);
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  CHECK(ended.reason == StreamEnd::kStopped);
  CHECK(m->held_frames.empty());  // no clock: every frame written once
  CHECK(m->frames == 3);
  CHECK(m->faces.size() == 9);
  CHECK(m->payload_container.records == 9);
  REQUIRE(fs::exists(VideoPayloadPath(out)));
  auto r = RestoreVideoFromPayloads(out, *m, s.Grant(Bytes(out)), VideoPayloadPath(out), back);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->faces_restored == 9);
  const auto original = DecodeFrames(clip), restored = DecodeFrames(back);
  REQUIRE(restored.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(cv::norm(original[i], restored[i], cv::NORM_INF) == 0);
  // A live stream cannot be repeated: a second recording of the very same pixels gets its own
  // container and manifest ids (its originals never take the first one's name in the key store).
  cv::VideoCapture again(clip);
  shown = 0;
  auto m2 = RecordStream(*SealingPipeline(), s.Key(), again, (ws.dir / "second.mkv").string(), options);
  REQUIRE(m2.ok());
  CHECK(m2->output_pixels_sha256 == m->output_pixels_sha256);
  CHECK(m2->payload_container.container_id != m->payload_container.container_id);
  CHECK(m2->manifest_id != m->manifest_id);
}

TEST_CASE("a live stream whose frames change size ends there and keeps what was recorded; one that runs out says so") {
  testing::TestStore s('z');
  Workspace ws;
  // An image sequence stands in for a camera reconfigured mid-stream: three frames, then a smaller one.
  const cv::Mat frame = DemoFrame(cv::Size(640, 480));
  for (int i = 0; i < 4; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "frame%03d.png", i);
    cv::Mat f = i < 3 ? frame : DemoFrame(cv::Size(320, 240));
    REQUIRE(cv::imwrite((ws.dir / name).string(), f));
  }
  cv::VideoCapture camera((ws.dir / "frame%03d.png").string(), cv::CAP_IMAGES);
  REQUIRE(camera.isOpened());
  StreamOptions options;
  StreamEnding ended;
  options.ended = &ended;
  const std::string out = (ws.dir / "recording.mkv").string();
  auto m = RecordStream(*SealingPipeline(), s.Key(), camera, out, options);
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  CHECK(m->frames == 3);
  CHECK(ended.reason == StreamEnd::kFrameChanged);
  CHECK(ended.detail == "frame 3 changed size or type");
  CHECK(DecodeFrames(out).size() == 3);
  CHECK(fs::exists(VideoPayloadPath(out)));
  // A file read to its end as a stream: the source ended (a camera that stops delivering frames).
  cv::VideoCapture file(MakeClip(ws.dir, 2));
  ended = {};
  auto m2 = RecordStream(*MakePipeline(), s.Key(), file, (ws.dir / "second.mkv").string(), options);
  REQUIRE_MESSAGE(m2.ok(), m2.status().ToString());
  CHECK(m2->frames == 2);
  CHECK(ended.reason == StreamEnd::kSourceEnded);
  CheckNoTemporaryFiles(ws.dir);
}

TEST_CASE("a live recording with a clock holds each frame until the next is read, so it plays in real time, and restores bit for bit") {
  testing::TestStore s('h');
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 5);  // 10 fps: a frame interval is 0.1 s
  const std::string out = (ws.dir / "recording.mkv").string(), back = (ws.dir / "restored.mkv").string();
  cv::VideoCapture camera(clip);
  REQUIRE(camera.isOpened());
  // When each frame is read: on time, then 0.22 s late (one interval missed), early, then two missed.
  // The fake time moves only between frames: writing costs nothing here.
  FakeClock clock({50.0, 50.1, 50.32, 50.38, 50.71});
  StreamOptions options = clock.Options();
  StreamEnding ended;
  options.ended = &ended;
  auto m = RecordStream(*SealingPipeline(), s.Key(), camera, out, options);
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  CHECK(ended.reason == StreamEnd::kSourceEnded);
  CHECK(clock.frames == 5);
  // Output frames: 0 1 1' 2 3 3' 3'' 4 (a prime marks a copy held while the next frame was worked on).
  CHECK(m->frames == 8);
  REQUIRE(m->held_frames.size() == 2);
  CHECK((m->held_frames[0].frame == 1 && m->held_frames[0].copies == 1));
  CHECK((m->held_frames[1].frame == 4 && m->held_frames[1].copies == 2));
  // Every copy has face records of its own (the clip shows three faces per frame), sealed apart.
  CHECK(m->faces.size() == 24);
  CHECK(m->payload_container.records == 24);
  for (uint32_t frame = 0; frame < 8; ++frame) {
    CHECK(std::count_if(m->faces.begin(), m->faces.end(), [&](const FaceRecord& f) { return f.frame == frame; }) == 3);
  }
  const auto written = DecodeFrames(out);
  REQUIRE(written.size() == 8);
  CHECK(cv::norm(written[1], written[2], cv::NORM_INF) == 0);
  CHECK(cv::norm(written[4], written[6], cv::NORM_INF) == 0);
  CHECK(cv::norm(written[2], written[3], cv::NORM_INF) > 0);
  // The held frames travel in the manifest and are sealed with it.
  auto parsed = ParseManifest(SerializeManifest(*m));
  REQUIRE(parsed.ok());
  REQUIRE(parsed->held_frames.size() == 2);
  CHECK(parsed->held_frames[1].copies == 2);
  const auto grant = s.Grant(Bytes(out));
  Manifest unheld = *m;
  unheld.held_frames.pop_back();
  CHECK(RestoreVideoFromPayloads(out, unheld, grant, VideoPayloadPath(out), back).status().code() == StatusCode::kDataLoss);
  auto r = RestoreVideoFromPayloads(out, *m, grant, VideoPayloadPath(out), back);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->faces_restored == 24);
  const auto original = DecodeFrames(clip), restored = DecodeFrames(back);
  REQUIRE(restored.size() == 8);
  const int source_of[8] = {0, 1, 1, 2, 3, 3, 3, 4};
  for (size_t i = 0; i < 8; ++i) CHECK(cv::norm(original[source_of[i]], restored[i], cv::NORM_INF) == 0);
}

TEST_CASE("a live recording cuts a hold longer than a second to one second and its manifest says how much it left out") {
  testing::TestStore s('g');
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 4);
  // 10 fps: the third frame comes 2.42 s after the second (a stopped process): 10 copies, 13
  // intervals left out.
  FakeClock clock({0.0, 0.1, 2.52, 2.62});
  StreamOptions options = clock.Options();
  cv::VideoCapture camera(clip);
  auto m = RecordStream(*MakePipeline(), s.Key(), camera, (ws.dir / "recording.mkv").string(), options);
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  CHECK(m->frames == 14);  // 0, 1, ten copies of 1, 2, 3 (on time after the cut)
  REQUIRE(m->held_frames.size() == 1);
  CHECK((m->held_frames[0].frame == 1 && m->held_frames[0].copies == 10 && m->held_frames[0].cut == 13));
  auto parsed = ParseManifest(SerializeManifest(*m));
  REQUIRE(parsed.ok());
  CHECK(parsed->held_frames[0].cut == 13);
  // A clock that is broken from the first frame holds nothing.
  FakeClock broken({std::nan(""), 5.0, 9.0, 12.0});
  cv::VideoCapture again(clip);
  m = RecordStream(*MakePipeline(), s.Key(), again, (ws.dir / "second.mkv").string(), broken.Options());
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  CHECK(m->frames == 4);
  CHECK(m->held_frames.empty());
}

TEST_CASE("a live recording whose frames are dear to write leaves time out instead of holding frames, and says how much") {
  testing::TestStore s('w');
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 4);
  // Every frame written takes 0.06 s of the fake time: at 10 fps a second of copies would take
  // 0.6 s to write, and writing them would take the time of the captures after them.
  FakeClock clock({0.0, 0.1, 0.4, 0.7});
  clock.write_cost = 0.06;
  cv::VideoCapture camera(clip);
  auto m = RecordStream(*MakePipeline(), s.Key(), camera, (ws.dir / "recording.mkv").string(), clock.Options());
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  CHECK(m->frames == 4);  // every capture, no copies
  uint64_t copies = 0, cut = 0;
  for (const auto& h : m->held_frames) copies += h.copies, cut += h.cut;
  CHECK(copies == 0);
  CHECK(cut == 4);  // the last frame is read 7 intervals after the first: of slots 0..7, four are captures
  auto parsed = ParseManifest(SerializeManifest(*m));
  REQUIRE_MESSAGE(parsed.ok(), parsed.status().ToString());
  CHECK(parsed->held_frames.size() == m->held_frames.size());
}

TEST_CASE("a live recording checks its disk every 32 frames written, copies of held frames included") {
  testing::TestStore s('b');
  Workspace ws;
  const std::string clip = MakeClip(ws.dir, 6);
  FakeClock clock({0.0, 0.1, 1.2, 2.3, 3.4, 3.5});  // three holds of ten copies
  StreamOptions options = clock.Options();
  std::vector<int64_t> free_mib = {1000, 300};  // at 0 and 32 frames written
  size_t asked = 0;
  options.free_bytes = [&](const std::string&) { return free_mib.at(asked++) << 20; };
  StreamEnding ended;
  options.ended = &ended;
  cv::VideoCapture camera(clip);
  auto m = RecordStream(*MakePipeline(), s.Key(), camera, (ws.dir / "recording.mkv").string(), options);
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  CHECK(ended.reason == StreamEnd::kDiskFull);
  CHECK(asked == 2);
  // Output frames 0, 1, 10 copies, 2 (12), 10 copies, 3 (23), then 8 of the 10 copies: the check at
  // 32 frames written came in the middle of the third hold.
  CHECK(m->frames == 32);
  REQUIRE(m->held_frames.size() == 3);
  CHECK((m->held_frames[2].frame == 23 && m->held_frames[2].copies == 8));
}

TEST_CASE("a live recording ends before its disk is full, keeping what it has, and does not start on a disk that is") {
  testing::TestStore s('d');
  Workspace ws;
  const std::string clip = (ws.dir / "still.mkv").string();
  WriteStill(clip, DemoFrame(cv::Size(640, 480)), 40);
  std::vector<std::string> asked;
  std::vector<int64_t> free_mib = {1000, 900, 200};  // at frames 0, 32, ...: 100 MiB taken, then 700 MiB
  StreamOptions options;
  options.free_bytes = [&](const std::string& folder) {
    asked.push_back(folder);
    return free_mib.at(asked.size() - 1) << 20;
  };
  StreamEnding ended;
  options.ended = &ended;
  cv::VideoCapture camera(clip);
  const std::string out = (ws.dir / "recording.mkv").string();
  auto m = RecordStream(*MakePipeline(), s.Key(), camera, out, options);
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  // 900 MiB left at frame 32 is plenty (128 MiB plus twice the 100 MiB the last 32 frames took).
  CHECK(ended.reason == StreamEnd::kSourceEnded);
  CHECK(m->frames == 40);
  CHECK(asked == std::vector<std::string>{ws.dir.string(), ws.dir.string()});
  // Now the last 32 frames took 700 MiB: 200 MiB left is too little for 32 more.
  free_mib = {1000, 300};
  asked.clear();
  cv::VideoCapture again(clip);
  const std::string out2 = (ws.dir / "second.mkv").string();
  m = RecordStream(*MakePipeline(), s.Key(), again, out2, options);
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  CHECK(ended.reason == StreamEnd::kDiskFull);
  CHECK(ended.detail == "the disk it is written to is nearly full (300 MiB free)");
  CHECK(m->frames == 32);
  CHECK(DecodeFrames(out2).size() == 32);
  // A disk nearly full before the first frame: nothing is recorded, nothing left behind.
  free_mib = {100};
  asked.clear();
  cv::VideoCapture third(clip);
  auto refused = RecordStream(*MakePipeline(), s.Key(), third, (ws.dir / "third.mkv").string(), options);
  CHECK(refused.status().code() == StatusCode::kIoError);
  CHECK_FALSE(fs::exists(ws.dir / "third.mkv"));
  CheckNoTemporaryFiles(ws.dir);
}

TEST_CASE("Matroska files of the same frames get the same bytes, still decode, and anything else is left alone") {
  Workspace ws;
  cv::Mat noise(480, 640, CV_8UC3);
  cv::randu(noise, 0, 256);  // incompressible: the file is larger than the header read at once
  std::vector<std::string> paths, bytes;
  for (const char* name : {"a.mkv", "b.mkv"}) {
    paths.push_back((ws.dir / name).string());
    WriteStill(paths.back(), noise, 4);
    bytes.push_back(Bytes(paths.back()));
  }
  REQUIRE(bytes[0].size() > (1u << 20));
  REQUIRE(bytes[0] != bytes[1]);  // FFmpeg's random segment and track ids
  for (const auto& p : paths) REQUIRE(internal::MakeMatroskaIdsDeterministic(p).ok());
  CHECK(Bytes(paths[0]) == Bytes(paths[1]));
  CHECK(Bytes(paths[0]).size() == bytes[0].size());
  // Its CRC-32s verify again (checked before any change), and a second pass changes nothing.
  const std::string once = Bytes(paths[0]);
  REQUIRE(internal::MakeMatroskaIdsDeterministic(paths[0]).ok());
  CHECK(Bytes(paths[0]) == once);
  const auto frames = DecodeFrames(paths[0]);
  REQUIRE(frames.size() == 4);
  CHECK(cv::norm(frames[3], noise, cv::NORM_INF) == 0);
  // Not Matroska, or a header altered: refused, the file untouched.
  const std::string avi = MakeClip(ws.dir, 1);
  const std::string avi_bytes = Bytes(avi);
  CHECK(internal::MakeMatroskaIdsDeterministic(avi).code() == StatusCode::kDataLoss);
  CHECK(Bytes(avi) == avi_bytes);
  std::string altered = once;
  altered[altered.find("Lavf")] = 'X';  // inside the segment info, under its CRC-32
  { std::ofstream(paths[1], std::ios::binary | std::ios::trunc) << altered; }
  CHECK(internal::MakeMatroskaIdsDeterministic(paths[1]).code() == StatusCode::kDataLoss);
  CHECK(Bytes(paths[1]) == altered);
  // Element headers that run past their parent, and a CRC-32 below a level-1 element's children.
  const std::string straddling("\x1a\x45\xdf\xa3\x80\x18\x53\x80\x67\xff\x15\x49\xa9\x66\x81\xbf\x84\x80\x1f\x43\xb6\x75", 22);
  const std::string nested("\x1a\x45\xdf\xa3\x80\x18\x53\x80\x67\xff\x16\x54\xae\x6b\x88\xae\x86\xbf\x84\x00\x00\x00\x00"
                           "\x1f\x43\xb6\x75\x80", 28);
  for (const std::string& hostile : {straddling, nested}) {
    { std::ofstream(paths[1], std::ios::binary | std::ios::trunc) << hostile; }
    CHECK(internal::MakeMatroskaIdsDeterministic(paths[1]).code() == StatusCode::kDataLoss);
    CHECK(Bytes(paths[1]) == hostile);
  }
}
