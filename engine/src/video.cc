#include "veil/engine/video.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <random>

#include <opencv2/videoio.hpp>

#include "veil/engine/runtime.h"
#include "veil/keys/fs.h"
#include "veil/keys/secret.h"

namespace veil::engine {
namespace {

std::string LowerExt(const std::string& path) {
  std::string e = std::filesystem::path(path).extension().string();
  for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

// SHA-256 over every frame of a video, as decoded here.
StatusOr<std::string> FramesSha256(const std::string& path, int64_t* frames) {
  cv::VideoCapture cap(path);
  if (!cap.isOpened()) return IoError("cannot reopen the written video " + path);
  std::string digests;
  cv::Mat f;
  *frames = 0;
  while (cap.read(f)) {
    digests += PixelsSha256(f);
    ++*frames;
  }
  return keys::Sha256(digests);
}

Status FsyncFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open " + path);
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status::Ok() : IoError("cannot fsync " + path);
}

}  // namespace

bool IsVideoPath(const std::string& path) {
  static const char* kExt[] = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm"};
  const std::string e = LowerExt(path);
  return std::find_if(std::begin(kExt), std::end(kExt), [&](const char* x) { return e == x; }) != std::end(kExt);
}

StatusOr<Manifest> AnonymizeVideo(Pipeline& pipeline, const keys::KeyHandle& key, const std::string& input,
                                  const std::string& output, const std::function<void(const VideoProgress&)>& progress) {
  if (keys::PathExists(output)) return AlreadyExistsError(output + " exists; not overwriting it");
  if (!keys::PathExists(input)) return NotFoundError("no such file: " + input);
  InitRuntimeOnce();
  cv::VideoCapture cap(input);
  if (!cap.isOpened()) return InvalidArgumentError(input + " is not a readable video");
  const double fps = cap.get(cv::CAP_PROP_FPS) > 0 ? cap.get(cv::CAP_PROP_FPS) : 25.0;
  const int64_t total = static_cast<int64_t>(std::max(0.0, cap.get(cv::CAP_PROP_FRAME_COUNT)));
  const int width = static_cast<int>(cap.get(cv::CAP_PROP_FRAME_WIDTH));
  const int height = static_cast<int>(cap.get(cv::CAP_PROP_FRAME_HEIGHT));
  if (width <= 0 || height <= 0 || static_cast<int64_t>(width) * height > 50'000'000) {
    return InvalidArgumentError(input + " has no usable frame size");
  }
  const bool avi = LowerExt(output) == ".avi";
  const std::string tmp = output + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(std::random_device{}()) +
                          (avi ? ".avi" : ".mp4");
  cv::VideoWriter writer(tmp, avi ? cv::VideoWriter::fourcc('M', 'J', 'P', 'G') : cv::VideoWriter::fourcc('m', 'p', '4', 'v'),
                         fps, cv::Size(width, height));
  if (!writer.isOpened()) return IoError("cannot write a video to " + tmp + " (codec unavailable?)");

  Manifest m;
  m.models = pipeline.models();
  m.keyring = key.keyring();
  m.key_version = key.version();
  m.scope = pipeline.params().scope;
  m.scope_id = pipeline.params().scope_id;
  m.width = static_cast<uint32_t>(width);
  m.height = static_cast<uint32_t>(height);
  Status status;
  cv::Mat frame;
  uint32_t index = 0;
  pipeline.ResetStream();
  int64_t n = 0;
  while (status.ok() && cap.read(frame)) {
    if (frame.cols != width || frame.rows != height || frame.type() != CV_8UC3) {
      status = DataLossError("frame " + std::to_string(n) + " of " + input + " changes size or type");
      break;
    }
    auto out = pipeline.AnonymizeFrame(frame, key);
    if (!out.ok()) {
      status = out.status().WithContext("frame " + std::to_string(n));
      break;
    }
    if (n == 0) m.scope_id = out->scope_id;
    for (auto& f : out->faces) {
      f.index = index++;
      f.frame = static_cast<uint32_t>(n);
      m.faces.push_back(std::move(f));
    }
    writer.write(out->image);
    ++n;
    if (progress) progress({n, total});
  }
  writer.release();
  if (status.ok() && n == 0) status = InvalidArgumentError(input + " has no decodable frames");
  int64_t written = 0;
  if (status.ok()) {
    auto digest = FramesSha256(tmp, &written);
    if (!digest.ok()) status = digest.status();
    else if (written != n) status = IoError("the written video has " + std::to_string(written) + " of " + std::to_string(n) + " frames");
    else m.output_pixels_sha256 = *digest;
  }
  if (status.ok()) status = FsyncFile(tmp);
  if (status.ok() && ::link(tmp.c_str(), output.c_str()) != 0) status = AlreadyExistsError("cannot create " + output);
  ::unlink(tmp.c_str());
  VEIL_RETURN_IF_ERROR(status);
  auto parent = std::filesystem::path(output).parent_path();
  VEIL_RETURN_IF_ERROR(keys::FsyncDir(parent.empty() ? "." : parent.string()));
  m.frames = static_cast<uint32_t>(n);
  // Deterministic id from the output: the same input and key give the same manifest.
  keys::SecretBytes manifest_key = key.DeriveSubkey(keys::KeyPurpose::kManifest, keys::ScopeKind::kDeployment, "");
  m.manifest_id = std::string(keys::ExpandSecret(manifest_key, "veil-video-manifest-id-v1:" + keys::ToHex(m.output_pixels_sha256), 16)
                                  .view(keys::SecretAccess::Get()));
  return m;
}

}  // namespace veil::engine
