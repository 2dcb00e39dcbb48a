#include "veil/engine/video.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>

#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "matroska_ids.h"
#include "payloads.h"
#include "veil/engine/payload_container.h"
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

constexpr double kDefaultFps = 25;

// Frames larger than this are refused (a hostile header could announce anything).
bool UsableFrameSize(cv::Size size) {
  return size.width > 0 && size.height > 0 && static_cast<int64_t>(size.width) * size.height <= 50'000'000;
}

// The bytes an unprivileged process may still write on the file system of `folder`; -1 when unknown.
int64_t FreeBytes(const std::string& folder) {
  struct statvfs fs;
  if (::statvfs(folder.c_str(), &fs) != 0) return -1;
  const long double bytes = static_cast<long double>(fs.f_bavail) * fs.f_frsize;
  return bytes > 9e18L ? int64_t{9'000'000'000'000'000'000} : static_cast<int64_t>(bytes);
}

Status FsyncFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open " + path);
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status::Ok() : IoError("cannot fsync " + path);
}

struct Source {
  cv::VideoCapture cap;
  double fps = 25;
  int64_t total = 0;  // 0 when the container does not say
  cv::Size size;
};

// The frame rate a video is written at. OpenCV passes a rate to FFmpeg as the fraction n / 10^k
// nearest to it within 0.001, and FFmpeg's MPEG-4 encoder refuses n > 65535: the average rate of
// a 120 fps phone clip, 119.883 (119883 / 1000), could not be written to .mp4. Such a rate is
// rounded to the finest fraction that fits (119.88), whatever the container, so that all three
// carry the same rate; others are kept as they are. No number, or none in 0.01-1000: the default.
double WritableFps(double fps) {
  if (!std::isfinite(fps) || fps < 0.01 || fps > 1000) return kDefaultFps;
  constexpr double kMaxNumerator = 65535;
  double base = 1;
  double n = std::floor(fps + 0.5);
  while (std::abs(n / base - fps) > 0.001) {  // OpenCV's own search (cap_ffmpeg_impl.hpp)
    base *= 10;
    n = std::floor(fps * base + 0.5);
  }
  if (n <= kMaxNumerator) return fps;
  base = 1;
  while (std::floor(fps * base * 10 + 0.5) <= kMaxNumerator) base *= 10;
  return std::floor(fps * base + 0.5) / base;
}

StatusOr<Source> OpenSource(const std::string& input) {
  if (!keys::PathExists(input)) return NotFoundError("no such file: " + input);
  Source s;
  s.cap = OpenVideoFile(input);
  if (!s.cap.isOpened()) return InvalidArgumentError(input + " is not a readable video");
  s.fps = WritableFps(s.cap.get(cv::CAP_PROP_FPS));  // the rate it is written at, and timed by
  s.total = static_cast<int64_t>(std::max(0.0, s.cap.get(cv::CAP_PROP_FRAME_COUNT)));
  s.size = cv::Size(static_cast<int>(s.cap.get(cv::CAP_PROP_FRAME_WIDTH)), static_cast<int>(s.cap.get(cv::CAP_PROP_FRAME_HEIGHT)));
  if (!UsableFrameSize(s.size)) return InvalidArgumentError(input + " has no usable frame size");
  return s;
}

// The video writers (FFmpeg through OpenCV) drop the last column or row of an odd frame size
// without a word; the restore could then never match the frames to the manifest.
Status CheckEvenFrameSize(cv::Size size, const std::string& label) {
  if (size.width % 2 == 0 && size.height % 2 == 0) return Status::Ok();
  return UnsupportedError(label + " has an odd frame size (" + std::to_string(size.width) + "x" + std::to_string(size.height) +
                            "), which video encoders cannot keep; crop it to an even size first (for example ffmpeg -vf "
                            "\"crop=trunc(iw/2)*2:trunc(ih/2)*2\")");
}

Status UnwritableVideoName(const std::string& output) {
  return InvalidArgumentError("cannot write a video named '" + output + "': use .mkv (lossless), .mp4 or .avi");
}

// The frames of a video this process has just written. One that does not read back was not
// written whole (a disk that filled: the writer reports nothing): an I/O error, not a bad input.
StatusOr<std::string> WrittenFramesSha256(const std::string& temp, int64_t* frames, const std::function<bool()>& cancelled) {
  StatusOr<std::string> digest = VideoFramesSha256(temp, frames, cancelled);
  if (!digest.ok() && digest.status().code() == StatusCode::kInvalidArgument) {
    return IoError("the video written to " + temp + " does not read back (disk full?)");
  }
  return digest;
}

}  // namespace

bool IsWritableVideoPath(const std::string& path) {
  const std::string e = LowerExt(path);
  return e == ".mkv" || e == ".avi" || e == ".mp4";
}

bool IsVideoPath(const std::string& path) {
  static const char* kExt[] = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm"};
  const std::string e = LowerExt(path);
  return std::find_if(std::begin(kExt), std::end(kExt), [&](const char* x) { return e == x; }) != std::end(kExt);
}

std::string VideoPayloadPath(const std::string& output) { return output + ".veilpay"; }

void ToBgr(cv::Mat& frame) {
  if (frame.type() == CV_8UC1) cv::cvtColor(frame, frame, cv::COLOR_GRAY2BGR);
  else if (frame.type() == CV_8UC4) cv::cvtColor(frame, frame, cv::COLOR_BGRA2BGR);
}

std::string FfmpegFileName(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  return ec ? std::string() : absolute.string();  // not normalized: "link/.." is the kernel's to resolve
}

cv::VideoCapture OpenVideoFile(const std::string& path) {
  InitRuntimeOnce();  // FFmpeg's own log lines off
  cv::VideoCapture cap;
  const std::string name = FfmpegFileName(path);
  if (!name.empty()) cap.open(name, cv::CAP_FFMPEG);
  return cap;
}

StatusOr<std::string> VideoFramesSha256(const std::string& path, int64_t* frames, const std::function<bool()>& cancelled) {
  *frames = 0;
  cv::VideoCapture cap = OpenVideoFile(path);
  if (!cap.isOpened()) return InvalidArgumentError(path + " is not a readable video");
  // The size the container announces, before a frame is decoded; then each frame's, as the first's.
  const cv::Size announced(static_cast<int>(cap.get(cv::CAP_PROP_FRAME_WIDTH)), static_cast<int>(cap.get(cv::CAP_PROP_FRAME_HEIGHT)));
  if (!UsableFrameSize(announced)) return InvalidArgumentError(path + " has no usable frame size");
  std::string digests;
  cv::Mat f;
  cv::Size size;
  while (cap.read(f)) {
    if (cancelled && cancelled()) return CancelledError("stopped while checking the written video; nothing was written");
    if (size.empty()) size = f.size();
    if (f.size() != size || !UsableFrameSize(size)) return InvalidArgumentError(path + " has frames of no usable or changing size");
    digests += PixelsSha256(f);
    ++*frames;
  }
  return keys::Sha256(digests);
}

namespace {

// A video file's manifest id: from the input file's SHA-256 and the output frames' digest, keyed (the
// same input and key give the same manifest). `manifest_key`: internal::ManifestKey.
std::string VideoManifestId(const keys::SecretBytes& manifest_key, const std::string& input_digest,
                            const std::string& output_pixels_sha256) {
  return internal::DeriveManifestId(manifest_key, "veil-video-manifest-id-v2", input_digest, output_pixels_sha256);
}

// What differs between a video file and a live stream around the shared frame loop.
struct FrameLoop {
  std::string label;         // the source, for messages
  bool live = false;         // a live stream (camera): it cannot be read again
  std::string input_digest;  // of a file: its container and manifest ids derive from it
  cv::Size size;             // of a file (checked for every frame); a live stream's first frame sets it
  double fps = kDefaultFps;
  int64_t total = 0;         // frames, when known
  // A live stream: polled before each frame, true ends the stream normally (what was recorded is
  // kept); on_frame sees each anonymized frame, false ends it too.
  std::function<bool()> end;
  std::function<bool(const FrameOutput&)> on_frame;
  std::function<double()> clock;  // a live device: frames are held to keep real time
  std::function<int64_t(const std::string&)> free_bytes;  // a live stream: ends before its disk is full
  StreamEnding* ended = nullptr;  // a live stream: why it ended
  std::function<Status()> unchanged;  // a file: still the file that was hashed (checked before anything is committed)
};

// A file's identity and state: which file (device, inode), its size and its last change.
struct FileState {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  struct timespec mtime {};
  bool operator==(const FileState& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec;
  }
};

std::optional<FileState> StateOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileState{st.st_dev, st.st_ino, st.st_size, st.st_mtim};
}

// The last frame written, kept to be written again while a live recording holds it.
struct HeldImage {
  cv::Mat image;
  std::vector<FaceRecord> faces;   // as recorded, their index and frame to be replaced
  std::vector<std::string> pngs;   // each face's original region (PNG), empty where none is kept
  uint32_t first_frame = 0;        // its output frame number
};

// A live device's real time, in frame intervals (1/fps) since the first frame was read.
class FrameClock {
 public:
  FrameClock(std::function<double()> clock, double fps) : clock_(std::move(clock)), fps_(fps) {}
  bool running() const { return static_cast<bool>(clock_); }
  double Now() const { return clock_ ? clock_() : 0; }
  // What writing a frame took (encoding and sealing), averaged: copies are written only while they
  // are cheap, i.e. a second's worth of them takes at most half a second. Otherwise (a large
  // lossless frame on a slow machine) copies would take the time of captures, and their own
  // writing would make the lag grow; the time is then left out instead, and counted.
  void Wrote(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return;
    write_s_ = writes_++ == 0 ? seconds : 0.8 * write_s_ + 0.2 * seconds;
  }
  // At each frame's read, `written` frames written so far: how many copies of the last frame are
  // due before this one. At most a second's worth: the rest of a longer hold (the process was
  // stopped) is left out, and counted (last_cut).
  int64_t CopiesDue(int64_t written) {
    last_cut_ = 0;
    if (!clock_) return 0;
    const double now = clock_();
    if (!started_) {
      started_ = true;
      if (!std::isfinite(now)) clock_ = nullptr;  // a broken clock holds nothing
      t0_ = now;
      return 0;
    }
    if (!std::isfinite(now)) return 0;
    const double elapsed = std::clamp(now - t0_, 0.0, 1e9);
    const int64_t due = std::llround(elapsed * fps_) - cut_total_ - written;
    if (due <= 0) return 0;
    const int64_t most = write_s_ * fps_ <= 0.5 ? static_cast<int64_t>(std::ceil(fps_)) : 0;
    last_cut_ = std::max<int64_t>(0, due - most);
    cut_total_ += last_cut_;
    return std::min(due, most);
  }
  int64_t last_cut() const { return last_cut_; }

 private:
  std::function<double()> clock_;
  double fps_;
  bool started_ = false;
  double t0_ = 0;
  double write_s_ = 0;
  int64_t writes_ = 0;
  int64_t cut_total_ = 0, last_cut_ = 0;
};

// A live recording ends before a file system it writes to is full (a full disk would lose all of
// it): each folder must keep kMinFreeBytes plus twice what it lost since the last check.
class DiskGuard {
 public:
  DiskGuard(std::vector<std::string> folders, std::function<int64_t(const std::string&)> free_bytes)
      : folders_(std::move(folders)), before_(folders_.size(), -1), free_bytes_(std::move(free_bytes)) {}
  bool active() const { return !folders_.empty() && free_bytes_; }
  // The free bytes of a folder that is short of room; nullopt while all have room (or cannot tell).
  std::optional<int64_t> Short() {
    for (size_t i = 0; i < folders_.size(); ++i) {
      const int64_t now = free_bytes_(folders_[i]);
      if (now < 0) continue;
      const long double used = before_[i] >= 0 ? std::max<long double>(0, static_cast<long double>(before_[i]) - now) : 0;
      before_[i] = now;
      if (static_cast<long double>(now) < kMinFreeBytes + 2 * used) return now;
    }
    return std::nullopt;
  }

 private:
  std::vector<std::string> folders_;
  std::vector<int64_t> before_;
  std::function<int64_t(const std::string&)> free_bytes_;
};

StatusOr<Manifest> AnonymizeFrames(Pipeline& pipeline, const keys::KeyHandle& key, cv::VideoCapture& cap,
                                   const FrameLoop& loop, const std::string& output, const VideoOptions& options) {
  VideoFileWriter out(output, loop.fps);
  Manifest m;
  m.models = pipeline.models();
  m.keyring = key.keyring();
  m.key_version = key.version();
  m.scope = pipeline.params().scope;
  m.scope_id = pipeline.params().scope_id;
  keys::SecretBytes manifest_key = internal::ManifestKey(key);

  // The original regions are sealed as their frames come and streamed into a payload container:
  // beside the video it travels with it, as the sidecar does; the key store's copy is private.
  const PayloadLocation where = pipeline.params().payloads;
  const bool keep = where != PayloadLocation::kNone;
  const VideoPayloadTarget& target = options.payloads;
  const bool beside = target.folder.empty();
  std::optional<PayloadContainerWriter> container;
  // A file's ids are deterministic (the same input and key give the same container and manifest
  // bytes); a live stream cannot be repeated: a random nonce makes its ids its own, so two
  // recordings of the same pixels never share a manifest id or a name in the key store.
  const bool live = loop.live;
  const std::string nonce = live ? std::string(keys::SecretBytes::Random(16).view(keys::SecretAccess::Get())) : "";
  std::string container_id;
  if (keep) {
    container_id = live ? nonce
                        : std::string(keys::ExpandSecret(manifest_key, "veil-video-container-id-v1:" + keys::ToHex(loop.input_digest), 16)
                                          .view(keys::SecretAccess::Get()));
    const std::string near = beside ? VideoPayloadPath(output) : (std::filesystem::path(target.folder) / ".veilpay").string();
    VEIL_ASSIGN_OR_RETURN(PayloadContainerWriter w, PayloadContainerWriter::Create(near, container_id, beside ? 0644 : 0600));
    container.emplace(std::move(w));
  }
  cv::Mat frame;
  cv::Size size = loop.size;
  uint32_t index = 0;
  pipeline.ResetStream();
  int64_t n = 0;        // frames read
  int64_t written = 0;  // frames written (more than read where a live recording held frames)
  FrameClock clock(loop.clock, loop.fps);
  // Writes one output frame: `image` with its faces, recorded under the next face indices and this
  // frame's number, their originals (`pngs`, empty where none is kept) sealed into the container.
  auto write_frame = [&](const cv::Mat& image, const std::vector<FaceRecord>& faces, const std::vector<std::string>& pngs) -> Status {
    const double started = clock.Now();
    for (size_t i = 0; i < faces.size(); ++i) {
      FaceRecord f = faces[i];
      f.index = index++;
      f.frame = static_cast<uint32_t>(written);
      if (!pngs[i].empty()) {
        VEIL_ASSIGN_OR_RETURN(std::string sealed, internal::SealVideoPayload(container_id, f, key, pngs[i]));
        VEIL_RETURN_IF_ERROR(container->Append({f.index, f.frame, std::move(sealed)}));
        f.payload_location = where == PayloadLocation::kKeyStore ? PayloadLocation::kKeyStore : PayloadLocation::kSidecar;
      }
      m.faces.push_back(std::move(f));
    }
    VEIL_RETURN_IF_ERROR(out.Write(image));
    ++written;
    if (clock.running()) clock.Wrote(clock.Now() - started);
    return Status::Ok();
  };
  // The manifest must stay under kMaxManifestBytes: checked every 1,024 frames and, sooner, before
  // its face records can have filled half the room left at the last check (a crowd adds records
  // fast). A file that would exceed it fails early; a live stream ends there normally (what was
  // recorded is kept).
  const size_t manifest_budget = kMaxManifestBytes - kMaxManifestBytes / 16;
  const size_t records_budget = kMaxManifestFaces - kMaxManifestFaces / 16;  // faces, and held frames
  size_t check_at_faces = 4096;
  auto manifest_full = [&]() -> StatusOr<bool> {
    const size_t bytes = SerializeManifest(m).size();
    if (bytes > manifest_budget || m.faces.size() > records_budget || m.held_frames.size() > records_budget) {
      if (live) return true;
      return ResourceExhaustedError("the manifest of " + loop.label + " would exceed " + std::to_string(kMaxManifestBytes >> 20) +
                                    " MiB or " + std::to_string(kMaxManifestFaces) + " face records: split the video");
    }
    const size_t per_face = bytes / std::max<size_t>(m.faces.size(), 1) + 1;
    check_at_faces = std::min(records_budget + 1, m.faces.size() + std::max<size_t>(64, (manifest_budget - bytes) / (2 * per_face)));
    return false;
  };
  auto end_live = [&](StreamEnd reason, const std::string& detail) {
    if (loop.ended) *loop.ended = {reason, detail};
  };
  auto end_full = [&] { end_live(StreamEnd::kManifestFull, "its manifest is full (" + std::to_string(m.faces.size()) + " face records)"); };
  if (live) end_live(StreamEnd::kSourceEnded, "the source ended");
  HeldImage held;  // with a clock: the last frame written
  std::vector<std::string> disk_folders;  // of the video and of the payload container
  if (live) {
    const std::string video_dir = std::filesystem::path(output).parent_path().string();
    disk_folders.push_back(video_dir.empty() ? "." : video_dir);
    if (keep && !beside) disk_folders.push_back(target.folder);
  }
  DiskGuard disk(disk_folders, loop.free_bytes);
  int64_t disk_checked_at = -1;  // frames written at the last check
  bool disk_full = false;
  // Every 32 frames written (a burst of copies included): true when the disk is nearly full.
  auto disk_short = [&]() -> bool {
    if (!disk.active() || (disk_checked_at >= 0 && written - disk_checked_at < 32)) return false;
    disk_checked_at = written;
    const auto left = disk.Short();
    if (left) end_live(StreamEnd::kDiskFull, "the disk it is written to is nearly full (" + std::to_string(*left >> 20) + " MiB free)");
    disk_full = left.has_value();
    return disk_full;
  };
  while (true) {
    if (loop.end && loop.end()) {
      end_live(StreamEnd::kStopped, "stopped");
      break;
    }
    if (options.cancelled && options.cancelled()) {
      return CancelledError("stopped at frame " + std::to_string(n) + " of " + loop.label + "; nothing was written");
    }
    if (n > 0 && (n % 1024 == 0 || m.faces.size() >= check_at_faces)) {
      VEIL_ASSIGN_OR_RETURN(bool full, manifest_full());
      if (full) {
        end_full();
        break;
      }
    }
    if (disk_short()) {
      if (written == 0) return IoError("the disk to record " + loop.label + " on is nearly full; nothing was recorded");
      break;
    }
    if (!cap.read(frame)) break;
    const int64_t copies_due = clock.CopiesDue(written);
    ToBgr(frame);
    if (n == 0 && live) {
      size = frame.size();
      if (!UsableFrameSize(size)) return InvalidArgumentError(loop.label + " has no usable frame size");
      VEIL_RETURN_IF_ERROR(CheckEvenFrameSize(size, loop.label));
    }
    if (frame.size() != size || frame.type() != CV_8UC3) {
      // A recording cannot be repeated: a live source whose frames change (a camera reconfigured,
      // an empty frame) ends the recording there, keeping what was recorded.
      if (live && n > 0) {
        end_live(StreamEnd::kFrameChanged, "frame " + std::to_string(n) + " changed size or type");
        break;
      }
      if (loop.unchanged) VEIL_RETURN_IF_ERROR(loop.unchanged());  // a file still being written: said as such
      return DataLossError("frame " + std::to_string(n) + " of " + loop.label + " changes size or type");
    }
    // Real time: the last frame stays in the recording until this one came, written again for each
    // frame interval meanwhile.
    bool manifest_is_full = false;
    if (copies_due > 0 || clock.last_cut() > 0) {
      m.held_frames.push_back({held.first_frame, 0, static_cast<uint32_t>(std::min<int64_t>(clock.last_cut(), UINT32_MAX))});
    }
    for (int64_t copy = 0; copy < copies_due; ++copy) {
      if (m.faces.size() + held.faces.size() >= check_at_faces) {
        VEIL_ASSIGN_OR_RETURN(manifest_is_full, manifest_full());
        if (manifest_is_full) {
          end_full();
          break;
        }
      }
      if (disk_short()) break;
      VEIL_RETURN_IF_ERROR(write_frame(held.image, held.faces, held.pngs));
      ++m.held_frames.back().copies;
    }
    if (manifest_is_full || disk_full) {
      if (!m.held_frames.empty() && m.held_frames.back().copies == 0 && m.held_frames.back().cut == 0) m.held_frames.pop_back();
      break;
    }
    auto anonymized = pipeline.AnonymizeFrame(frame, key);
    if (!anonymized.ok()) return anonymized.status().WithContext("frame " + std::to_string(n));
    if (n == 0) m.scope_id = anonymized->scope_id;
    std::vector<std::string> pngs(anonymized->faces.size());
    if (keep) {
      for (size_t i = 0; i < pngs.size(); ++i) {
        VEIL_ASSIGN_OR_RETURN(pngs[i], internal::RegionPng(frame, anonymized->faces[i].region));
      }
    }
    const auto first_frame = static_cast<uint32_t>(written);
    VEIL_RETURN_IF_ERROR(write_frame(anonymized->image, anonymized->faces, pngs));
    if (clock.running()) held = {anonymized->image.clone(), anonymized->faces, std::move(pngs), first_frame};
    ++n;
    if (options.progress) options.progress({n, loop.total});
    if (loop.on_frame && !loop.on_frame(*anonymized)) {
      end_live(StreamEnd::kStopped, "stopped");
      break;
    }
  }
  VEIL_RETURN_IF_ERROR(out.Close());
  // A file still being written (copied) ends early or oddly: said as such, before the refusals below.
  if (loop.unchanged) VEIL_RETURN_IF_ERROR(loop.unchanged());
  if (n == 0) return InvalidArgumentError(loop.label + " has no decodable frames");
  // A file that ends well before the frames its container declares is cut short or damaged:
  // anonymizing the frames that decode would pass a partial video off as the whole. Containers
  // without a frame count let OpenCV estimate it from duration and frame rate, which a variable
  // frame rate can overstate: only a shortfall beyond a tenth (and two frames) is refused.
  if (!live && loop.total > 0 && n + 2 + loop.total / 10 < loop.total) {
    return DataLossError(loop.label + " ends after " + std::to_string(n) + " of the about " + std::to_string(loop.total) +
                         " frames it declares: the file is truncated or damaged");
  }
  m.width = static_cast<uint32_t>(size.width);
  m.height = static_cast<uint32_t>(size.height);
  int64_t decoded = 0;
  VEIL_ASSIGN_OR_RETURN(m.output_pixels_sha256, WrittenFramesSha256(out.temp_path(), &decoded, options.cancelled));
  if (decoded != written) {
    return IoError("the written video has " + std::to_string(decoded) + " of " + std::to_string(written) + " frames");
  }
  m.frames = static_cast<uint32_t>(written);
  if (loop.unchanged) VEIL_RETURN_IF_ERROR(loop.unchanged());  // again, after the read-back
  // From the output (and a live stream's nonce): the same input and key give the same manifest.
  m.manifest_id =
      live ? std::string(keys::ExpandSecret(manifest_key,
                                            "veil-stream-manifest-id-v1:" + keys::ToHex(nonce) + ":" + keys::ToHex(m.output_pixels_sha256), 16)
                             .view(keys::SecretAccess::Get()))
           : VideoManifestId(manifest_key, loop.input_digest, m.output_pixels_sha256);
  if (SerializeManifest(m).size() > kMaxManifestBytes || m.faces.size() > kMaxManifestFaces || m.held_frames.size() > kMaxManifestFaces) {
    return ResourceExhaustedError("the manifest of " + loop.label + " would exceed " + std::to_string(kMaxManifestBytes >> 20) +
                                  " MiB or " + std::to_string(kMaxManifestFaces) + " face records: split the video");
  }
  // The container first, then the sidecar (before_commit), the video last: its presence marks the job as done.
  std::string container_path;
  bool container_made = false;  // by this call (and so removed again if the job fails after all)
  // Sealed with or without kept originals, as a photo's manifest is: the key holder can tell every
  // record as written.
  if (keep) m.payload_container = container->Ref();
  m.key_check = key.KeyCheck(m.manifest_id);
  VEIL_ASSIGN_OR_RETURN(m.manifest_seal, internal::SealManifest(m, key));
  if (keep) {
    container_path = beside ? VideoPayloadPath(output) : (std::filesystem::path(target.folder) / target.name(m.manifest_id)).string();
    Status st = container->Commit(container_path, /*replace=*/false);
    if (st.code() == StatusCode::kAlreadyExists &&
        keys::FileHolds(container_path, m.payload_container.sha256, m.payload_container.size)) {
      st = Status::Ok();  // an identical earlier run's, stopped before its video appeared
    } else if (st.ok()) {
      container_made = true;
    }
    VEIL_RETURN_IF_ERROR(st);
  }
  Status st = options.before_commit ? options.before_commit(m) : Status::Ok();
  if (st.ok()) st = out.Commit();
  if (!st.ok()) {
    // Once the video stands under its name (only the folder's fsync failed), its container is what
    // restores it: never removed then.
    if (container_made && !out.committed()) ::unlink(container_path.c_str());
    return st;
  }
  return m;
}

}  // namespace

StatusOr<Manifest> AnonymizeVideo(Pipeline& pipeline, const keys::KeyHandle& key, const std::string& input,
                                  const std::string& output, const VideoOptions& options) {
  if (!IsWritableVideoPath(output)) return UnwritableVideoName(output);
  if (keys::PathExists(output)) return AlreadyExistsError(output + " exists; not overwriting it");
  // The manifest names the input by its hash, read apart from the frames: a file that changes
  // meanwhile (still being copied, or replaced) would be named by bytes that were never decoded.
  // Its state is taken before it is opened and compared before anything is committed.
  const std::optional<FileState> before = StateOf(input);
  VEIL_ASSIGN_OR_RETURN(Source src, OpenSource(input));
  FrameLoop loop;
  loop.label = input;
  loop.size = src.size;
  loop.fps = src.fps;
  loop.total = src.total;
  VEIL_RETURN_IF_ERROR(CheckEvenFrameSize(src.size, input));
  VEIL_ASSIGN_OR_RETURN(loop.input_digest, keys::Sha256File(input));
  loop.unchanged = [input, before]() -> Status {
    if (before && StateOf(input) == before) return Status::Ok();
    return IoError(input + " changed while it was read (still being copied?); nothing was written: run again when it is complete");
  };
  return AnonymizeFrames(pipeline, key, src.cap, loop, output, options);
}

StatusOr<bool> VideoManifestIsFor(const Manifest& manifest, const std::string& input, const keys::KeyHandle& key) {
  if (manifest.frames == 0) return false;
  VEIL_ASSIGN_OR_RETURN(std::string input_digest, keys::Sha256File(input));
  return manifest.manifest_id == VideoManifestId(internal::ManifestKey(key), input_digest, manifest.output_pixels_sha256);
}

StatusOr<Manifest> RecordStream(Pipeline& pipeline, const keys::KeyHandle& key, cv::VideoCapture& source,
                                const std::string& output, const StreamOptions& options) {
  if (!IsWritableVideoPath(output)) return UnwritableVideoName(output);
  if (keys::PathExists(output)) return AlreadyExistsError(output + " exists; not overwriting it");
  if (!source.isOpened()) return InvalidArgumentError("the stream is not open");
  InitRuntimeOnce();
  FrameLoop loop;
  loop.label = options.name.empty() ? "the stream" : options.name;
  loop.live = true;
  loop.fps = WritableFps(source.get(cv::CAP_PROP_FPS));
  loop.end = options.end;
  loop.on_frame = options.on_frame;
  // Frames are held only at a plausible frame rate (a bogus one would multiply every frame).
  if (loop.fps >= 1 && loop.fps <= 240) loop.clock = options.clock;
  loop.ended = options.ended;
  loop.free_bytes = options.free_bytes ? options.free_bytes : FreeBytes;
  return AnonymizeFrames(pipeline, key, source, loop, output, options.video);
}

StatusOr<VideoRestoreOutput> RestoreVideoFromPayloads(const std::string& input, const Manifest& manifest,
                                                      const keys::RestoreGrant& grant, const std::string& payload_container,
                                                      const std::string& output, const VideoRestoreOptions& options) {
  if (!IsWritableVideoPath(output)) return UnwritableVideoName(output);
  if (keys::PathExists(output)) return AlreadyExistsError(output + " exists; not overwriting it");
  const Status edited = EditedError("the video was edited after anonymization (its frames do not match its manifest)");
  const Status altered = DataLossError("the payload container does not belong to this manifest, or was altered");
  VideoRestoreOutput result;
  // Videos anonymized before payload containers keep their sealed originals in the manifest, and
  // have no seal; every other has one, which authenticates the manifest and names the container
  // (its hash). It is checked before anything the manifest says is relied on (an edited frame
  // count or payload location is reported as altered), and before any frame is decoded, so a wrong
  // key or a swapped container fails at once.
  const bool in_manifest = manifest.payload_container.container_id.empty();
  if (!in_manifest && manifest.manifest_seal.empty()) {
    return DataLossError("the manifest names a payload container but has no seal: its seal was taken away");
  }
  std::optional<keys::KeyHandle> key;
  if (!manifest.manifest_seal.empty()) {
    VEIL_ASSIGN_OR_RETURN(keys::KeyHandle k, internal::KeyForManifest(manifest, grant));
    VEIL_RETURN_IF_ERROR(internal::VerifyManifestSeal(manifest, k));
    key.emplace(std::move(k));
  }
  if (manifest.frames == 0) return InvalidArgumentError("the manifest describes an image, not a video");
  std::map<uint32_t, const FaceRecord*> kept;  // faces whose originals are kept, by index
  for (const auto& f : manifest.faces) {
    if (f.payload_location == PayloadLocation::kNone || (in_manifest && f.sealed_payload.empty())) {
      ++result.faces_without_payload;
    } else if (!kept.emplace(f.index, &f).second) {
      return DataLossError("the manifest lists face " + std::to_string(f.index) + " twice");
    }
  }
  if (kept.empty()) return FailedPreconditionError("the video's manifest holds no sealed originals (anonymized with --payload none?)");
  if (!key) {
    VEIL_ASSIGN_OR_RETURN(keys::KeyHandle k, internal::KeyForManifest(manifest, grant));
    key.emplace(std::move(k));
  }
  VEIL_ASSIGN_OR_RETURN(Source src, OpenSource(input));
  if (src.size != cv::Size(static_cast<int>(manifest.width), static_cast<int>(manifest.height))) return edited;
  std::optional<PayloadContainerReader> payloads;
  if (!in_manifest) {
    auto opened = PayloadContainerReader::OpenFile(payload_container);
    if (!opened.ok()) {
      // Missing, unreadable (permissions) or from a newer Veil: said as such; anything else was altered.
      // A newer format only when it is the very file the seal names (a damaged version byte is not).
      const StatusCode code = opened.status().code();
      const bool newer = code == StatusCode::kUnsupported &&
                         keys::FileHolds(payload_container, manifest.payload_container.sha256, manifest.payload_container.size);
      const bool plain = code == StatusCode::kNotFound || code == StatusCode::kIoError || newer;
      return plain ? opened.status() : altered;
    }
    if (opened->Ref().container_id != manifest.payload_container.container_id) return altered;
    payloads.emplace(std::move(*opened));
  }
  // The sealed originals in face order, from the container (a damaged one reads as altered: the
  // seal named another) or from the manifest.
  auto manifest_face = kept.begin();
  auto next_record = [&]() -> StatusOr<std::optional<PayloadRecord>> {
    if (in_manifest) {
      if (manifest_face == kept.end()) return std::optional<PayloadRecord>();
      const FaceRecord& f = *(manifest_face++)->second;
      return std::optional<PayloadRecord>(PayloadRecord{f.index, f.frame, f.sealed_payload});
    }
    auto r = payloads->Next();
    if (!r.ok()) return altered;
    return r;
  };
  // The seal verified (container videos), or the key check matched: a payload that does not open
  // was altered.
  const bool key_proven = !in_manifest || internal::KeyConfirmed(manifest, *key);
  auto open = [&](const FaceRecord& face, const PayloadRecord& record) {
    return in_manifest ? internal::OpenPayload(manifest, face, *key, key_proven)
                       : internal::OpenVideoPayload(manifest.payload_container.container_id, face, *key, record.sealed,
                                                    key_proven);
  };

  // The restored originals: readable by the owner only, as restored images are.
  VideoFileWriter out(output, src.fps, 0600);
  // One pass: frames and container records are read side by side (constant memory) and hashed as
  // they are read; nothing appears under `output` unless both are exactly what the manifest describes.
  VEIL_ASSIGN_OR_RETURN(std::optional<PayloadRecord> next, next_record());
  cv::Mat frame;
  std::string seen, written;  // per-frame digests: the frames read here, and those written
  int64_t n = 0;
  while (src.cap.read(frame)) {
    if (options.cancelled && options.cancelled()) return CancelledError("restore stopped at frame " + std::to_string(n) + "; nothing was written");
    if (n >= manifest.frames || frame.size() != src.size || frame.type() != CV_8UC3) return edited;
    seen += PixelsSha256(frame);
    for (; next && next->frame == n; ) {
      auto it = kept.find(next->face_index);
      if (it == kept.end() || it->second->frame != next->frame) return altered;
      const FaceRecord& face = *it->second;
      if ((face.region & cv::Rect(0, 0, src.size.width, src.size.height)) != face.region) {
        return DataLossError("face " + std::to_string(face.index) + " lies outside the video");
      }
      VEIL_ASSIGN_OR_RETURN(cv::Mat region, open(face, *next));
      region.copyTo(frame(face.region));
      kept.erase(it);
      ++result.faces_restored;
      VEIL_ASSIGN_OR_RETURN(next, next_record());
    }
    if (next && next->frame < n) return altered;  // records out of order
    written += PixelsSha256(frame);
    VEIL_RETURN_IF_ERROR(out.Write(frame));
    ++n;
    if (options.progress) options.progress({n, static_cast<int64_t>(manifest.frames)});
  }
  if (n != manifest.frames || keys::Sha256(seen) != manifest.output_pixels_sha256) return edited;
  if (next || !kept.empty()) return altered;
  if (payloads) {
    const PayloadContainerRef read = payloads->Ref();
    if (read.sha256 != manifest.payload_container.sha256 || read.size != manifest.payload_container.size ||
        read.records != manifest.payload_container.records) {
      return altered;
    }
  }
  result.frames = n;
  VEIL_RETURN_IF_ERROR(out.Close());
  int64_t back = 0;
  VEIL_ASSIGN_OR_RETURN(std::string back_digest, WrittenFramesSha256(out.temp_path(), &back, options.cancelled));
  if (back != n) return IoError("the restored video has " + std::to_string(back) + " of " + std::to_string(n) + " frames");
  if (LowerExt(output) == ".mkv" && back_digest != keys::Sha256(written)) {
    return IoError("the restored video does not decode to the restored frames");
  }
  if (options.before_commit) VEIL_RETURN_IF_ERROR(options.before_commit(result));
  VEIL_RETURN_IF_ERROR(out.Commit());
  return result;
}

VideoFileWriter::VideoFileWriter(std::string output, double fps, unsigned mode)
    : output_(std::move(output)), fps_(WritableFps(fps)), mode_(mode) {
  const std::string ext = LowerExt(output_);
  const bool avi = ext == ".avi", mkv = ext == ".mkv";
  fourcc_ = avi   ? cv::VideoWriter::fourcc('M', 'J', 'P', 'G')
            : mkv ? cv::VideoWriter::fourcc('F', 'F', 'V', '1')
                  : cv::VideoWriter::fourcc('m', 'p', '4', 'v');
  suffix_ = avi ? ".avi" : mkv ? ".mkv" : ".mp4";
}

VideoFileWriter::~VideoFileWriter() {
  if (writer_ && !closed_) writer_->release();
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
  if (!dir_.empty()) ::rmdir(dir_.c_str());
}

Status VideoFileWriter::Write(const cv::Mat& frame) {
  if (!writer_) {
    if (!IsWritableVideoPath(output_)) return UnwritableVideoName(output_);
    if (frame.empty() || frame.type() != CV_8UC3) return InvalidArgumentError("a video frame must be 8-bit BGR");
    size_ = frame.size();
    // FFmpeg creates the file with the default mode: it is made inside a folder of its own (0700)
    // next to the output, so nobody else can open it before the chmod below.
    VEIL_ASSIGN_OR_RETURN(dir_, keys::MakePrivateFolderBeside(output_, ".veil-video-"));
    tmp_ = (std::filesystem::path(dir_) / ("video" + suffix_)).string();
    writer_ = std::make_unique<cv::VideoWriter>(FfmpegFileName(tmp_), cv::CAP_FFMPEG, fourcc_, fps_, size_);
    if (!writer_->isOpened()) return IoError("cannot write a video to " + tmp_ + " (codec unavailable?)");
    ::chmod(tmp_.c_str(), mode_);
  }
  if (!writer_->isOpened()) return FailedPreconditionError("the video " + tmp_ + " is closed");
  if (frame.size() != size_ || frame.type() != CV_8UC3) return InvalidArgumentError("a video frame changes size or type");
  writer_->write(frame);
  ++frames_;
  return Status::Ok();
}

Status VideoFileWriter::Close() {
  if (closed_) return close_status_;  // the first close's outcome: a failed one is never committed
  closed_ = true;
  if (!writer_) return close_status_;
  writer_->release();
  if (LowerExt(output_) == ".mkv") close_status_ = internal::MakeMatroskaIdsDeterministic(tmp_);
  return close_status_;
}

Status VideoFileWriter::Commit() {
  if (frames_ == 0) return FailedPreconditionError("no frames to write to " + output_);
  VEIL_RETURN_IF_ERROR(Close());
  VEIL_RETURN_IF_ERROR(FsyncFile(tmp_));
  VEIL_RETURN_IF_ERROR(keys::MoveNoReplace(tmp_, output_));
  committed_ = true;
  tmp_.clear();
  ::rmdir(dir_.c_str());
  dir_.clear();
  auto parent = std::filesystem::path(output_).parent_path();
  return keys::FsyncDir(parent.empty() ? "." : parent.string());
}

}  // namespace veil::engine
