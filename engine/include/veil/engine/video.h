// Video files through the pipeline, frame by frame (OpenCV VideoCapture / VideoWriter).
//
// Audio is not carried over: OpenCV reads and writes pictures only, so the output is silent (a
// voice identifies people too; mux the original audio back yourself only if that is acceptable).
// The manifest goes to a sidecar ("<output>.veil"): per face its frame, box and method, and the
// SHA-256 over every decoded output frame. Unless PipelineParams::payloads is kNone, each face
// region of the original frames is sealed as its frame is anonymized and streamed into a payload
// container (proto/veil/proto/payload_container.proto; "<output>.veilpay", or wherever
// VideoPayloadTarget says, e.g. the key store's folder), so memory does not grow with the video's
// length; the manifest's video seal binds that container to the manifest and the output frames.
// `.mkv` is written losslessly (FFV1): restoring such a video gives back the original frames bit
// for bit. Other containers are lossy: their restored face regions are exact copies of the
// original's decoded pixels, the rest is the re-encoded frame.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "veil/engine/pipeline.h"

namespace cv {
class VideoCapture;
class VideoWriter;
}  // namespace cv

namespace veil::engine {

struct VideoProgress {
  int64_t frame = 0;
  int64_t frames = 0;  // 0 when the container does not say
};

// True for the extensions handled as video: .mp4 .m4v .mov .avi .mkv .webm
bool IsVideoPath(const std::string& path);

// True for the names Veil writes videos under, each holding what its name says: .mkv (lossless
// FFV1), .avi (Motion JPEG), .mp4 (MPEG-4). The writers refuse any other (InvalidArgument).
bool IsWritableVideoPath(const std::string& path);

// A decoded frame as the pipeline takes it: grey or BGRA (some cameras) to 8-bit BGR, in place.
void ToBgr(cv::Mat& frame);

// The payload container's default place: "<output>.veilpay".
std::string VideoPayloadPath(const std::string& output);

// `path` as FFmpeg must be given a file: absolute, so that no name ("concat:a.mkv|b.mkv",
// "subfile,,start,0,end,0,,:v.mkv", "pipe:0.mkv", "http:/x.mp4") is read as a protocol; empty when
// the working folder is gone.
std::string FfmpegFileName(const std::string& path);

// A video file opened for reading with FFmpeg (never another backend, an image sequence or a URL);
// not opened when it cannot be.
cv::VideoCapture OpenVideoFile(const std::string& path);

// SHA-256 over every frame of a video as decoded here (each frame's PixelsSha256, in order): what a
// video manifest's output_pixels_sha256 holds. `frames` gets the count; `cancelled` is polled
// between frames (Cancelled). InvalidArgument when the file does not open as a video, or its frames
// are over 50 megapixels or change size.
StatusOr<std::string> VideoFramesSha256(const std::string& path, int64_t* frames,
                                        const std::function<bool()>& cancelled = {});

// Where AnonymizeVideo puts the payload container.
struct VideoPayloadTarget {
  // Empty: VideoPayloadPath(output). Otherwise the container is written (through a temporary
  // file) into this folder, under name(manifest id), known once the video is done.
  std::string folder;
  // An existing file of that name is accepted only when it holds the same bytes (an identical
  // earlier run's); it is never replaced.
  std::function<std::string(const std::string& manifest_id)> name;
};

struct VideoOptions {
  VideoPayloadTarget payloads;
  std::function<void(const VideoProgress&)> progress;
  // Receives the final manifest after the payload container is in place and before the video
  // appears under `output` (a sidecar written there is never missing next to a finished video);
  // its error aborts the job.
  std::function<Status(const Manifest&)> before_commit;
  // Polled before each frame (from the calling thread; e.g. a flag set by a signal handler): true
  // stops the job with Cancelled, leaving nothing behind, as any failure does.
  std::function<bool()> cancelled;
};

// Anonymizes `input` into `output` (written to a temporary file in the same folder, then renamed;
// never replaces an existing file). .mkv is written as FFV1 (lossless), .avi as Motion-JPEG,
// everything else as MPEG-4 Part 2 in an .mp4 container. Returns the manifest (output hash,
// payload container reference and video seal). On failure neither the video nor a container
// created by this call remains. A payload container that already holds exactly the bytes this job
// writes (left by an identical run stopped before its video appeared) is kept and counts as
// written, so that run can simply be repeated.
StatusOr<Manifest> AnonymizeVideo(Pipeline& pipeline, const keys::KeyHandle& key, const std::string& input,
                                  const std::string& output, const VideoOptions& options = {});

// True when `manifest` is the one AnonymizeVideo wrote for the video file `input` with `key` (its id
// names the input file's SHA-256 and the output frames it describes; a live recording's never
// does): how a resumed batch tells its own finished video from one made of another input, or of
// an edited one, or with another key. Only the input file is read (hashed); the caller checks that
// the output's frames are those the manifest describes. An error when `input` cannot be read.
StatusOr<bool> VideoManifestIsFor(const Manifest& manifest, const std::string& input, const keys::KeyHandle& key);

// Why a live stream ended (StreamOptions::ended).
enum class StreamEnd {
  kStopped,        // `end` or `on_frame` said so
  kSourceEnded,    // no more frames: the end of a file, or a camera that stopped delivering
  kFrameChanged,   // a frame's size or type differs from the first's
  kManifestFull,   // the manifest neared kMaxManifestBytes
  kDiskFull,       // the recording's file system neared full (kMinFreeBytes)
};
struct StreamEnding {
  StreamEnd reason = StreamEnd::kSourceEnded;
  std::string detail;  // in words: "frame 3 changed size or type", "its manifest is full (N face records)"
};

// A live recording ends, keeping what it has, when the file system of its video or payload
// container has less than this free plus twice what it lost since the last check (every 32 frames
// written): a full disk would fail the recording as a whole when it is written.
inline constexpr int64_t kMinFreeBytes = int64_t{128} << 20;

// A live stream (a camera) recorded as AnonymizeVideo records a file: the same output, sidecar
// manifest and payload container, so an authorized restore works the same way.
struct StreamOptions {
  VideoOptions video;  // payloads, progress, before_commit; `cancelled` abandons the recording
  std::string name;    // the source, for messages ("/dev/video0")
  // Polled before each frame: true ends the stream normally and the recording so far is written
  // (a live source has no end of its own: a stop key, a signal, a frame budget).
  std::function<bool()> end;
  // Sees each anonymized frame after it is recorded (a preview window; its faces as the pipeline
  // gave them, without the manifest's index and frame); false ends the stream too.
  std::function<bool(const FrameOutput&)> on_frame;
  // A live device's time in seconds (monotonic, any origin), asked just after each frame is read.
  // Given (and the source's frame rate is within 1..240), the recording keeps real time however
  // slow the pipeline: a frame stays in the recording until the next one is read, i.e. it is
  // written again for every frame interval of the source (1/fps) that passes meanwhile. Each copy
  // is the same image (decoded identically from .mkv and .avi; an .mp4 re-encodes it) with face
  // records and sealed originals of its own, and the manifest lists the copies (held_frames), so a
  // copy is never taken for a capture. Time is left out instead of held, and the manifest says how
  // much (cut), beyond a second's hold (the process was stopped) and while copies are dear (a
  // second's worth would take over half a second to write, e.g. a large lossless frame on a slow
  // machine: they would take the time of captures). Without a clock (a file read as a stream)
  // every frame is written once.
  std::function<double()> clock;
  // The bytes free to this process on the file system holding a folder, -1 when unknown
  // (statvfs when empty; tests give their own).
  std::function<int64_t(const std::string& folder)> free_bytes;
  // When given, receives why the stream ended.
  StreamEnding* ended = nullptr;
};

// Records `source` until it ends (or `options.end` / `on_frame` end it) into `output`. A random
// nonce makes the payload container's id and the manifest id the recording's own (a live stream
// cannot be repeated: two recordings of the same pixels never share a name). The recording also
// ends, normally, when its manifest nears kMaxManifestBytes (about 500,000 face records) or
// kMaxManifestFaces face records or held frames, and at a
// frame whose size or type differs from the first's (what was recorded is kept). Grey or BGRA
// frames are recorded as BGR. Everything else is as for AnonymizeVideo.
StatusOr<Manifest> RecordStream(Pipeline& pipeline, const keys::KeyHandle& key, cv::VideoCapture& source,
                                const std::string& output, const StreamOptions& options);

struct VideoRestoreOutput {
  int64_t frames = 0;
  int faces_restored = 0;
  int faces_without_payload = 0;
};

struct VideoRestoreOptions {
  std::function<void(const VideoProgress&)> progress;
  // Runs after the restored video is verified, just before it appears under its name (the CLI
  // writes the audit record there); its error aborts the restore and nothing appears.
  std::function<Status(const VideoRestoreOutput&)> before_commit;
  // Polled before each frame: true stops the restore with Cancelled; nothing appears.
  std::function<bool()> cancelled;
};

// Puts the original face regions back into every frame of `input` (a video anonymized by Veil,
// described by `manifest`, its originals in the payload container at `payload_container`) and
// writes `output` (codec as for AnonymizeVideo; temporary file, then renamed; never replaces a
// file). The video seal is checked first (Unauthenticated for a wrong key, DataLoss for a swapped or
// altered manifest or container: told apart by the manifest's key check, as for images); frames and
// container records are then read side by side. Nothing appears under `output` unless every payload
// opens, the container is exactly the one the seal names (DataLoss otherwise) and the decoded
// frames are exactly those the manifest describes (Edited "edited after anonymization"
// otherwise). The written file (mode 0600) is read back before it appears under `output`: as many
// frames, and for .mkv the very pixels restored. `input` should be a private copy of what the
// restore request names (veil restore copies it while hashing it).
StatusOr<VideoRestoreOutput> RestoreVideoFromPayloads(const std::string& input, const Manifest& manifest,
                                                      const keys::RestoreGrant& grant,
                                                      const std::string& payload_container, const std::string& output,
                                                      const VideoRestoreOptions& options = {});

// A video written frame by frame to a temporary file in a private folder (0700) beside `output`
// (codec from the extension, as for AnonymizeVideo), so that no other user can open it while it is
// written, whatever FFmpeg's mode; it appears under `output` with `mode` only on Commit (fsync,
// link: never over an existing file). The destructor removes an uncommitted temporary file and its
// folder: a failed or stopped recording leaves nothing under a real name (a killed process leaves
// the private folder). The frame size is fixed by the first frame.
class VideoFileWriter {
 public:
  VideoFileWriter(std::string output, double fps, unsigned mode = 0644);
  ~VideoFileWriter();
  VideoFileWriter(const VideoFileWriter&) = delete;
  VideoFileWriter& operator=(const VideoFileWriter&) = delete;

  Status Write(const cv::Mat& frame);
  int64_t frames() const { return frames_; }
  // Closes the temporary file (to read it back before Commit); a .mkv then gets ids derived from
  // its content instead of FFmpeg's random ones, so the same frames give the same bytes.
  Status Close();
  const std::string& temp_path() const { return tmp_; }
  Status Commit();
  // True once the video stands under its name (Commit may still fail after that, when the folder's
  // fsync does).
  bool committed() const { return committed_; }

 private:
  std::string output_, suffix_;
  std::string dir_, tmp_;  // a private folder (0700) beside output_ and the file in it, from the first frame
  double fps_;
  unsigned mode_;
  int fourcc_ = 0;
  int64_t frames_ = 0;
  bool closed_ = false;
  bool committed_ = false;
  Status close_status_;
  cv::Size size_;
  std::unique_ptr<cv::VideoWriter> writer_;
};

}  // namespace veil::engine
