// veil camera: anonymize a live camera (V4L2) or a video file as a stream, with a preview window
// when a display exists, and/or written to a file (headless).
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <opencv2/highgui.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "cli.h"
#include "commands.h"
#include "replace_options.h"
#include "stop_signal.h"
#include "store_options.h"
#include "video_outputs.h"
#include "veil/engine/pipeline.h"
#include "veil/engine/runtime.h"
#include "veil/engine/video.h"
#include "veil/keys/fs.h"

namespace veil::cli {
namespace {

const char* kUsage =
    "usage: veil camera [--device N | --input VIDEO] [-o OUT.avi] [--payload inline|store|none]\n"
    "         [--frames N] [--no-preview]\n"
    "         [--replace pixelate|blur|solid] [--detector tiny|ssd] [--keyring NAME] [--scope-id ID]\n"
    "         [--detect-every N] [--detector-size 416] [--verify-distance 0.65] [--max-turn 0.3]\n"
    "  Reads /dev/videoN (default 0) or a video file frame by frame with the fast detector (on every\n"
    "  N-th frame at --detector-size pixels; faces are tracked by their landmarks in between. N defaults\n"
    "  to 3 for a preview only and to 1 when writing -o: a face entering the picture is then replaced\n"
    "  from its first frame, while a preview may show it for up to N-1 frames), and shows\n"
    "  the anonymized stream in a window when $DISPLAY (or $WAYLAND_DISPLAY) names a display (q, Esc\n"
    "  or the window's close button stops; a display that cannot open a window leaves a recording\n"
    "  headless), and/or writes it to OUT\n"
    "  (Motion-JPEG .avi, lossless FFV1 .mkv, or .mp4) with its manifest (OUT.veil) and the sealed\n"
    "  originals (--payload inline: OUT.veilpay, the default | store | none), restorable like any\n"
    "  video Veil wrote. Without a display, -o is required. Ctrl-C or SIGTERM ends the stream like q:\n"
    "  the recording so far appears under OUT (until then it is a temporary file, which a second\n"
    "  Ctrl-C, killing at once, leaves behind). Pseudonyms use the stream scope, a new one per run\n"
    "  unless --scope-id names one (the same id gives a person the same pseudonym across runs); a tracked face's\n"
    "  pseudonym is read back before release each time it is drawn, not every frame (--verify-distance,\n"
    "  as in veil anonymize); frames where a face is turned too far for the generator (--max-turn, as in\n"
    "  veil anonymize) pixelate it and are left out of its identity code. A device's recording keeps\n"
    "  real time: while the pipeline works on a frame, the one before it stays in the recording (written\n"
    "  again for each frame interval, with face records and sealed originals of its own; the manifest's\n"
    "  held_frames lists these copies), so it plays as fast as it happened (a hold is cut to a second,\n"
    "  and time is left out rather than held where copies are too dear to write, as veil bench shows for\n"
    "  1280x720 .mkv; the manifest says how much); a file plays frame for frame. --frames counts frames read.\n"
    "common options: --store DIR, --key-file F | --passphrase-file F | $VEIL_PASSPHRASE, --actor NAME\n";

// A display to preview on: $DISPLAY or $WAYLAND_DISPLAY set to something.
bool DisplayNamed() {
  for (const char* name : {"DISPLAY", "WAYLAND_DISPLAY"}) {
    const char* v = std::getenv(name);
    if (v != nullptr && *v != '\0') return true;
  }
  return false;
}

// Whether a preview window opens on the named display. OpenCV's Qt backend aborts the process
// when the display is not there, so a child process tries first (silenced; given 5 s).
bool WindowOpens() {
  const pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) ::dup2(null, 1), ::dup2(null, 2);
    try {
      cv::namedWindow("veil display check");
      cv::destroyAllWindows();
    } catch (...) {
      ::_exit(1);
    }
    ::_exit(0);
  }
  int status = 0;
  for (int waited_ms = 0;; waited_ms += 20) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (r < 0 && errno != EINTR) return false;
    if (waited_ms >= 5000) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return false;
    }
    ::usleep(20 * 1000);
  }
}

int Camera(int argc, char** argv) {
  Args args(argc, argv, {"--no-preview", "--help", "--experimental"});
  if (args.Flag("--help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  auto opts = ReadStoreOptions(args);
  const bool device_given = args.Get("--device").has_value();
  auto device = args.GetInt("--device", 0, 0, 63);
  auto input = args.Get("--input");
  auto out = args.Get("-o");
  auto max_frames = args.GetInt("--frames", 0, 0, 1LL << 40);
  const bool no_preview = args.Flag("--no-preview");
  auto replace = ReadReplaceOptions(args);
  const std::string detector = args.GetOr("--detector", "tiny");
  const std::string keyring = args.GetOr("--keyring", "default");
  // One pseudonym scope per recording unless told otherwise: a constant default would give a person
  // the same pseudonym in every camera session under the key, linking the sessions.
  const std::optional<std::string> scope_arg = args.Get("--scope-id");
  const std::string scope_id =
      scope_arg ? *scope_arg : "camera-" + keys::ToHex(std::string(keys::SecretBytes::Random(8).view(keys::SecretAccess::Get())));
  auto detect_every = args.GetInt("--detect-every", out ? 1 : 3, 1, 30);
  auto detector_size = args.GetInt("--detector-size", 416, 32, 2048);
  const std::string payload_where = args.GetOr("--payload", "inline");
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  if (!detect_every.ok()) return Fail(detect_every.status());
  if (!detector_size.ok()) return Fail(detector_size.status());
  if (*detector_size % 32 != 0) return Fail(InvalidArgumentError("--detector-size must be a multiple of 32"));
  if (!opts.status.ok()) return Fail(opts.status);
  if (!device.ok()) return Fail(device.status());
  if (!max_frames.ok()) return Fail(max_frames.status());
  if (!replace.ok()) return Fail(replace.status());
  if (detector != "ssd" && detector != "tiny") return Fail(InvalidArgumentError("--detector is ssd or tiny"));
  auto payloads = ParsePayloadOption(payload_where);
  if (!payloads.ok()) return Fail(payloads.status());
  const bool display = !no_preview && DisplayNamed();
  const bool preview = display && WindowOpens();
  const bool window_failed = display && !preview;  // a recording then goes on headless
  if (!preview && !out) {
    return Fail(InvalidArgumentError(window_failed ? "cannot open a preview window on this display: give -o OUT to write the stream"
                                                   : "no display to preview on: give -o OUT to write the stream"));
  }
  if (out && !engine::IsWritableVideoPath(*out)) {
    return Fail(InvalidArgumentError("-o " + *out + ": name the recording .mkv (lossless), .mp4 or .avi"));
  }
  if (out && keys::PathExists(*out)) return Fail(AlreadyExistsError(*out + " exists; not overwriting it"));
  if (device_given && input) return Fail(InvalidArgumentError("give --device or --input, not both"));
  if (out) {  // a recording cannot be repeated: its names are checked before anything starts
    engine::VideoOptions scratch;
    if (Status st = VideoOutputs(opts, *payloads, *out, scratch).CheckFree(); !st.ok()) return Fail(st);
  }
  // The source before the models and the key (whose release is logged): a start that cannot read
  // leaves no record. --input is a file (not a URL or a capture pipeline).
  if (input && !keys::PathExists(*input)) return Fail(NotFoundError(*input + ": no such file"));
  engine::InitRuntimeOnce();  // FFmpeg's own log lines off
  cv::VideoCapture cap = input ? engine::OpenVideoFile(*input) : cv::VideoCapture(static_cast<int>(*device), cv::CAP_V4L2);
  if (!cap.isOpened()) {
    return Fail(input ? InvalidArgumentError(*input + " is not a readable video")
                      : NotFoundError("no camera at /dev/video" + std::to_string(*device) + " (missing, or in use by another program)"));
  }

  engine::PipelineParams params;
  params.method = replace->method;
  params.detector = detector == "tiny" ? engine::DetectorKind::kTiny : engine::DetectorKind::kSsd;
  params.scope = keys::ScopeKind::kStream;
  params.scope_id = scope_id;
  params.detect_every = static_cast<int>(*detect_every);
  params.tiny_input_size = static_cast<int>(*detector_size);
  params.verify_distance = replace->verify_distance;
  params.max_turn = replace->max_turn;
  params.payloads = *payloads;
  auto pipeline = engine::Pipeline::Create(params);
  if (!pipeline.ok()) return Fail(pipeline.status());
  StatusOr<keys::KeyHandle> key = InternalError("no key");
  {
    auto store = OpenStore(opts, keys::KeyStore::Access::kReadWrite);
    if (!store.ok()) return Fail(store.status());
    key = (*store)->KeyForNewWork(keyring, "camera stream " + scope_id);
    if (!key.ok()) return Fail(key.status());
  }

  // The recording goes to a temporary file and appears under OUT, with its manifest and payload
  // container, when the stream ends: at the end of a file, after --frames, on q/Esc in the
  // preview, or on Ctrl-C / SIGTERM, which is how a headless recording is stopped.
  StopOnSignal stop_on_signal;
  int64_t frames = 0, faces = 0;
  const auto t0 = std::chrono::steady_clock::now();
  bool window_seen = false;  // the preview window reported itself visible
  auto show = [&](const engine::FrameOutput& anon) -> bool {  // false: q, Esc or the close button
    ++frames;
    faces += static_cast<int64_t>(anon.faces.size());
    if (!preview) return true;
    // The preview (never the written stream) shows the pipeline's time per frame.
    cv::Mat shown = anon.image.clone();
    char hud[96];
    std::snprintf(hud, sizeof(hud), "%.0f ms/frame (%.0f fps) %s", anon.times.total_ms,
                  anon.times.total_ms > 0 ? 1000.0 / anon.times.total_ms : 0.0, engine::ReplaceMethodName(replace->method));
    cv::putText(shown, hud, cv::Point(8, 20), cv::FONT_HERSHEY_SIMPLEX, 0.5, cv::Scalar(0, 255, 0), 1, cv::LINE_AA);
    const char* kWindow = "veil camera (q to stop)";
    cv::imshow(kWindow, shown);
    const int k = cv::waitKey(1);
    // The window's close button stops too (imshow would open the window again): the window is then
    // gone (an error asking for it) or no longer visible, once it was (a backend that cannot tell
    // answers -1 throughout).
    bool closed = false;
    try {
      const double visible = cv::getWindowProperty(kWindow, cv::WND_PROP_VISIBLE);
      if (visible >= 1) window_seen = true;
      closed = window_seen && visible < 1;
    } catch (const cv::Exception&) {
      closed = true;
    }
    return k != 'q' && k != 27 && !closed;
  };
  auto end = [&] { return StopRequested() || (*max_frames > 0 && frames >= *max_frames); };
  std::string manifest_id;
  uint32_t written = 0;      // frames in the recording
  uint64_t held = 0, cut = 0;  // of them copies that hold an earlier frame; frame intervals left out
  engine::StreamEnding ended;
  if (out) {
    engine::StreamOptions options;
    options.name = input ? *input : "/dev/video" + std::to_string(*device);
    options.end = end;
    options.on_frame = show;
    options.ended = &ended;
    if (!input) {  // a device's recording keeps real time however slow the pipeline
      options.clock = [] { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); };
    }
    VideoOutputs outputs(opts, params.payloads, *out, options.video);
    // Again, now that the models are loaded and the key released: a name taken meanwhile is found
    // before the recording, which cannot be repeated, rather than when it is written.
    if (Status st = outputs.CheckFree(); !st.ok()) return Fail(st);
    auto m = engine::RecordStream(**pipeline, *key, cap, *out, options);
    if (!m.ok()) {
      outputs.CleanUp(m.status());
      return Fail(m.status().code() == StatusCode::kInvalidArgument && frames == 0 && StopRequested()
                      ? CancelledError("stopped before the first frame; nothing was written")
                      : m.status());
    }
    manifest_id = keys::ToHex(m->manifest_id);
    written = m->frames;
    for (const auto& h : m->held_frames) held += h.copies, cut += h.cut;
  } else {
    const engine::StreamEnding stopped{engine::StreamEnd::kStopped, "stopped"};
    for (cv::Mat frame;;) {
      if (end()) {
        ended = stopped;
        break;
      }
      if (!cap.read(frame)) break;
      engine::ToBgr(frame);  // as recording does: a camera may deliver grey or BGRA
      auto anon = (*pipeline)->AnonymizeFrame(frame, *key);
      if (!anon.ok()) return Fail(anon.status());
      if (!show(*anon)) {
        ended = stopped;
        break;
      }
    }
  }
  // An unattended recorder must tell an unplugged camera from a requested stop.
  using engine::StreamEnd;
  if (!input && ended.reason != StreamEnd::kStopped) {
    std::fprintf(stderr, "veil: warning: the stream ended because %s, not by a stop%s\n",
                 ended.reason == StreamEnd::kSourceEnded ? ("/dev/video" + std::to_string(*device) + " stopped delivering frames").c_str()
                                                         : ended.detail.c_str(),
                 out ? "; what was recorded is kept" : "");
  } else if (input && ended.reason != StreamEnd::kStopped && ended.reason != StreamEnd::kSourceEnded) {
    std::fprintf(stderr, "veil: warning: the stream ended early because %s%s\n", ended.detail.c_str(),
                 out ? "; what was recorded is kept" : "");
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%lld frames, %lld faces replaced, %.1f frames/s", static_cast<long long>(frames),
              static_cast<long long>(faces), secs > 0 ? frames / secs : 0.0);
  if (out) {
    const std::string shown = OneLine(*out);
    std::printf(", written to %s (%u frames", shown.c_str(), written);
    if (held > 0) {
      std::printf(", %llu of them copies that hold a frame while the next was worked on, to keep real time",
                  static_cast<unsigned long long>(held));
    }
    if (cut > 0) {
      std::printf("; %llu frame intervals of real time left out (holds over a second, or copies too dear to write at "
                  "this size in this container: see veil bench)",
                  static_cast<unsigned long long>(cut));
    }
    std::printf("; manifest %s.veil, id %s)", shown.c_str(), manifest_id.c_str());
  }
  std::printf("%s%s\n", StopRequested() ? " (stopped by a signal)" : "",
              window_failed ? " (no preview: the display could not open a window)" : "");
  return 0;
}

}  // namespace

int RunCamera(int argc, char** argv) { return Camera(argc, argv); }

}  // namespace veil::cli
