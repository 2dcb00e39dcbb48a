// veil restore: bring the original faces back, for an authorized request, from the sealed payloads.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include <unistd.h>

#include <opencv2/imgcodecs.hpp>

#include "cli.h"
#include "commands.h"
#include "manifest_lookup.h"
#include "output.h"
#include "stop_signal.h"
#include "store_options.h"
#include "veil/engine/image_io.h"
#include "veil/engine/pipeline.h"
#include "veil/engine/video.h"
#include "veil/keys/fs.h"
#include "veil/keys/restore_request.h"

namespace veil::cli {
namespace {

namespace fs = std::filesystem;

const char* kUsage =
    "usage: veil restore INPUT --request REQUEST -o OUT [--manifest FILE] [--payloads FILE] [--approximate]\n"
    "                    [--json]\n"
    "  Checks the request's approvals with the key store and logs the decision (granted or denied)\n"
    "  before any key is released; then puts every face's original pixels back from its sealed\n"
    "  payload (exact: a lossless OUT, .png .bmp or .tif, reproduces the original pixels bit for bit;\n"
    "  a lossy one such as .jpg is refused).\n"
    "  The request must name INPUT's SHA-256 as a target (veil request create --target-file INPUT).\n"
    "  The manifest is read from INPUT, else from --manifest FILE or INPUT.veil; payloads kept by the\n"
    "  key store are read from its folder.\n"
    "  --approximate: synthesized faces without a payload are re-rendered through the keyed inverse\n"
    "  flow: the person's identity in the pseudonym's pose, NOT the original pixels (no evidence);\n"
    "  OUT carries its own manifest saying so (restored_from: source manifest, request, approximate).\n"
    "  Videos (manifest in INPUT.veil) restore from their payload container only: INPUT.veilpay, the\n"
    "  key store's copy, or --payloads FILE. OUT .mkv is lossless (the original frames of a lossless\n"
    "  anonymized .mkv, bit for bit), .mp4/.avi re-encode lossily.\n"
    "common options: --store DIR, --key-file F | --passphrase-file F | $VEIL_PASSPHRASE, --actor NAME\n";

// Formats that give back the pixels they were given (WebP is written lossy by OpenCV's default).
bool LosslessImagePath(const std::string& path) {
  const std::string ext = Lower(fs::path(path).extension().string());
  return ext == ".png" || ext == ".bmp" || ext == ".tif" || ext == ".tiff";
}

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Whether the originals of some face were kept only on the key store's side (--payload store).
bool KeptInStore(const engine::Manifest& m) {
  for (const auto& f : m.faces) {
    if (f.payload_location == engine::PayloadLocation::kKeyStore) return true;
  }
  return false;
}

// OpenCV throws for a format it cannot write; these two answer false instead.
bool CanWriteImage(const std::string& path) {
  if (fs::path(path).extension().empty()) return false;
  try {
    return cv::haveImageWriter(path);
  } catch (const cv::Exception&) {
    return false;
  }
}

bool EncodeImage(const std::string& ext, const cv::Mat& image, std::vector<uchar>& buf) {
  try {
    return !ext.empty() && cv::imencode(ext, image, buf);
  } catch (const cv::Exception&) {
    return false;
  }
}

StatusOr<engine::Manifest> LoadManifest(const std::string& input, const std::string& bytes,
                                        const std::optional<std::string>& manifest_path, const StoreOptions& opts) {
  VEIL_ASSIGN_OR_RETURN(ManifestBytes found, FindManifestBytes(input, bytes, manifest_path));
  VEIL_ASSIGN_OR_RETURN(engine::Manifest m, engine::ParseManifest(found.raw));
  // A video's store copy is its payload container (videos from before containers: as images).
  if (!KeptInStore(m) || !m.payload_container.container_id.empty()) return m;
  // The payloads stayed with the key store: its copy must describe the same output.
  const std::string path = (fs::path(StorePayloadFolder(opts)) / (keys::ToHex(m.manifest_id) + ".veil")).string();
  auto stored_raw = keys::ReadFile(path, 64u << 20);
  if (!stored_raw.ok()) return stored_raw.status().WithContext("the key store holds no payloads for this image");
  VEIL_ASSIGN_OR_RETURN(engine::Manifest stored, engine::ParseManifest(*stored_raw));
  if (stored.manifest_id != m.manifest_id || stored.output_pixels_sha256 != m.output_pixels_sha256 ||
      stored.faces.size() != m.faces.size()) {
    return DataLossError("the key store's payloads belong to another output");
  }
  return stored;
}

// A private folder (0700) next to the output for the copy of a video being restored; removed with
// the object. The copy is what gets hashed, authorized and decoded: swapping the file named on the
// command line after the check changes nothing.
class PrivateCopy {
 public:
  static StatusOr<std::unique_ptr<PrivateCopy>> Make(const std::string& input, const std::string& out) {
    VEIL_ASSIGN_OR_RETURN(std::string dir, keys::MakePrivateFolderBeside(out, ".veil-restore-"));
    std::unique_ptr<PrivateCopy> c(new PrivateCopy(dir));
    c->path_ = (fs::path(dir) / ("input" + fs::path(input).extension().string())).string();
    VEIL_ASSIGN_OR_RETURN(c->digest_, keys::CopyFileSha256(input, c->path_, 0600));
    return c;
  }
  ~PrivateCopy() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  const std::string& path() const { return path_; }
  const std::string& digest() const { return digest_; }

 private:
  explicit PrivateCopy(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_, path_, digest_;
};

// The video branch of Restore, after authorization: the audit record is written (fail closed)
// after the restored video is verified and before it appears under its name.
template <typename LogFn, typename FailFn>
int RestoreVideo(const std::string& input, const std::string& copy, const std::string& container, const std::string& out,
                 const engine::Manifest& manifest, const keys::RestoreGrant& grant, bool json, LogFn log_outcome,
                 FailFn fail_logged) {
  const bool show = !json && isatty(2);
  auto progress = [&](const engine::VideoProgress& p) {
    if (show && p.frame % 10 == 0) std::fprintf(stderr, "\r  frame %lld/%lld   ", static_cast<long long>(p.frame), static_cast<long long>(p.frames));
  };
  auto record = [&](const engine::VideoRestoreOutput& r) -> Status {
    VEIL_RETURN_IF_ERROR(log_outcome(keys::AuditOutcome::kSuccess,
                                     "restored " + std::to_string(r.faces_restored) + " face(s) in " +
                                         std::to_string(r.frames) + " frame(s) of manifest " + keys::ToHex(manifest.manifest_id),
                                     manifest.keyring, manifest.key_version));
    return Status::Ok();
  };
  engine::VideoRestoreOptions options;
  options.progress = progress;
  options.before_commit = record;
  options.cancelled = StopRequested;  // Ctrl-C: the audit log records a failed restore, nothing appears
  auto restored = engine::RestoreVideoFromPayloads(copy, manifest, grant, container, out, options);
  if (show) std::fprintf(stderr, "\n");
  // A failure after the success record (the final link) is recorded too.
  if (!restored.ok()) return fail_logged(restored.status());
  // Exact pixels: a lossless anonymized video restored into a lossless one.
  const bool exact = Lower(fs::path(out).extension().string()) == ".mkv" &&
                     Lower(fs::path(input).extension().string()) == ".mkv";
  if (json) {
    PrintJson({{"output", out}, {"exact", exact}, {"frames", restored->frames}, {"faces_restored", restored->faces_restored},
               {"faces_without_payload", restored->faces_without_payload}, {"manifest_id", keys::ToHex(manifest.manifest_id)}});
  } else {
    std::printf("restored %d face(s) in %lld frame(s) of %s into %s%s%s\n", restored->faces_restored,
                static_cast<long long>(restored->frames), OneLine(input).c_str(), OneLine(out).c_str(),
                exact ? " (lossless: the original frames)"
                      : " (lossy: the face regions as the original decoded them, in re-encoded frames)",
                restored->faces_without_payload ? " (some faces had no payload and stay anonymized)" : "");
  }
  return 0;
}

int Restore(int argc, char** argv) {
  Args args(argc, argv, {"--json", "--help", "--approximate"});
  if (args.Flag("--help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  auto opts = ReadStoreOptions(args);
  auto request_path = args.Get("--request");
  auto out = args.Get("-o");
  if (!out) out = args.Get("--output");
  auto manifest_path = args.Get("--manifest");
  auto payloads_path = args.Get("--payloads");
  const bool json = args.Flag("--json");
  const bool approximate = args.Flag("--approximate");
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  if (!opts.status.ok()) return Fail(opts.status);
  if (args.positionals().size() != 1) return Fail(InvalidArgumentError("give exactly one INPUT image"));
  if (!request_path) return Fail(InvalidArgumentError("--request REQUEST is required"));
  if (!out) return Fail(InvalidArgumentError("-o OUT is required"));
  const std::string input = args.positionals()[0];
  if (keys::PathExists(*out)) return Fail(AlreadyExistsError(*out + " exists; not overwriting it"));
  if (approximate && keys::PathExists(*out + ".veil")) {  // where its manifest goes when OUT cannot hold it
    return Fail(AlreadyExistsError(*out + ".veil exists; not overwriting it"));
  }

  const bool video = engine::IsVideoPath(input);
  if (video && approximate) return Fail(InvalidArgumentError("videos restore from their sealed payloads only (no --approximate)"));
  if (video && !engine::IsWritableVideoPath(*out)) {
    return Fail(InvalidArgumentError("restore a video into a .mkv (lossless), .mp4 or .avi file"));
  }
  if (!video && !CanWriteImage(*out)) {
    return Fail(InvalidArgumentError("cannot write an image named '" + *out + "': use .png for an exact restore"));
  }
  // Without --approximate only the sealed originals restore, and only into a lossless image: a
  // usage error, found before the passphrase (with --approximate the manifest decides, below).
  if (!video && !approximate && !LosslessImagePath(*out)) {
    return Fail(InvalidArgumentError("restore the sealed originals into a lossless image (.png, .bmp, .tif): " + *out +
                                     " would not give back the original pixels"));
  }
  // The store (and its exclusive lock) is open while it is used. A video's long parts, the private
  // copy and the restore itself, run with it closed, so other commands need not wait; it is opened
  // again (the credential is read once) for the authorization and for each outcome record.
  auto credential = StoreCredential(opts, false);
  if (!credential.ok()) return Fail(credential.status());
  std::unique_ptr<keys::KeyStore> store;
  // `attempts`: an outcome record waits up to 10 lock timeouts (10 min) for another user of the
  // store, rather than leave a used grant without its outcome.
  auto open_store = [&](int attempts = 1) -> Status {
    Status st;
    for (int i = 0; !store && i < attempts; ++i) {
      auto opened = OpenStore(opts, *credential, keys::KeyStore::Access::kReadWrite);
      if (opened.ok()) store = std::move(*opened);
      else st = opened.status();
      if (!opened.ok() && st.code() != StatusCode::kIoError) break;  // only a busy or unreachable store is retried
    }
    return store ? Status::Ok() : st;
  };
  if (Status st = open_store(); !st.ok()) return Fail(st);  // a wrong credential fails here, before any work
  // Ctrl-C or SIGTERM from here on (not at the passphrase prompt above, which they end): the restore
  // stops at its next check (after the copy of a video, before and after the authorization, before
  // the success record), logged as failed, with nothing written; after the success record the write
  // completes. A second signal still ends the process at once.
  StopOnSignal stop_on_signal;
  // From here on every attempt leaves an audit record, whatever stops it: an unreadable input or
  // request is logged as failed; the authorization logs its own decision.
  std::string digest;      // the input's SHA-256, once read
  std::string request_id;  // once the request parses
  auto log_outcome = [&](keys::AuditOutcome outcome, const std::string& reason, const std::string& keyring, uint32_t v) {
    VEIL_RETURN_IF_ERROR(open_store(/*attempts=*/10));
    // A video restores with the store closed: a key disabled or destroyed meanwhile stops it here
    // (the store refuses the success record), and nothing appears.
    return store->Log(keys::AuditAction::kRestorePerformed, outcome, request_id, reason,
                      digest.empty() ? std::vector<std::string>{} : std::vector<std::string>{digest}, keyring, v);
  };
  auto fail_logged = [&](const Status& st) {
    Status logged = log_outcome(keys::AuditOutcome::kFailed, st.message(), "", 0);
    if (logged.ok()) return Fail(st);
    // Both: the record that failed (its exit code) and what it was to record.
    return Fail(Status(logged.code(), logged.message() + " (recording the failure: " + st.message() + ")"));
  };
  StatusOr<std::string> bytes = std::string();  // images: the file (videos are read frame by frame)
  if (!video) {
    bytes = keys::ReadFile(input, 256u << 20);
    if (!bytes.ok()) return fail_logged(bytes.status());
  }
  std::unique_ptr<PrivateCopy> copy;
  if (video) {
    store.reset();  // not held during the copy
    auto made = PrivateCopy::Make(input, *out);
    if (!made.ok()) return fail_logged(made.status().WithContext(input));
    copy = std::move(*made);
  }
  digest = video ? copy->digest() : keys::Sha256(*bytes);
  if (StopRequested()) return fail_logged(CancelledError("stopped before the authorization"));
  auto request_bytes = keys::ReadFile(*request_path, 1u << 20);
  if (!request_bytes.ok()) return fail_logged(request_bytes.status());
  auto request = keys::RestoreRequest::Parse(*request_bytes);
  if (!request.ok()) return fail_logged(request.status().WithContext(*request_path));
  request_id = request->info().request_id_hex;

  if (Status st = open_store(); !st.ok()) return Fail(st);
  // Logged, granted or denied, with the file; denied when the request does not name this file.
  auto grant = store->AuthorizeRestore(*request, Now(), digest);
  if (!grant.ok()) return Fail(grant.status());

  if (StopRequested()) return fail_logged(CancelledError("stopped before anything was written"));
  // Decoded only now: an undecodable or edited image is refused with an audit record too.
  StatusOr<cv::Mat> image = cv::Mat();
  if (!video) {
    engine::ImageLimits limits;
    limits.silence_decoder_stderr = true;
    image = engine::DecodeImage(*bytes, limits);
    if (!image.ok()) return fail_logged(image.status().WithContext(input));
  }
  auto manifest = LoadManifest(input, *bytes, manifest_path, opts);
  if (!manifest.ok()) return fail_logged(manifest.status());
  if (!manifest->restored_from.manifest_id.empty()) {
    return fail_logged(FailedPreconditionError("this image is the output of a restore (of manifest " +
                                               keys::ToHex(manifest->restored_from.manifest_id) +
                                               "), not an anonymized image: restore that one"));
  }
  bool payloads = false;
  for (const auto& f : manifest->faces) payloads |= !f.sealed_payload.empty();
  // An exact restore (sealed originals, or an image without faces) needs a lossless format.
  const bool exact = payloads || (!approximate && manifest->faces.empty());
  if (!video && exact && !LosslessImagePath(*out)) {
    return fail_logged(InvalidArgumentError("restore the sealed originals into a lossless image (.png, .bmp, .tif): " +
                                            *out + " would not give back the original pixels"));
  }
  if (video) {
    // The payload container: named by --payloads, else kept by the key store or beside the video.
    const std::string container = payloads_path             ? *payloads_path
                                  : KeptInStore(*manifest) ? StoreVideoPayloadPath(opts, manifest->manifest_id)
                                                           : engine::VideoPayloadPath(input);
    store.reset();  // not held during the restore; its outcome record opens it again
    return RestoreVideo(input, copy->path(), container, *out, *manifest, *grant, json, log_outcome, fail_logged);
  }
  StatusOr<engine::RestoreOutput> restored = InternalError("no restore");
  if (payloads || !approximate) {
    restored = engine::RestoreFromPayloads(*image, *manifest, *grant);
    if (restored.ok() && !payloads && !manifest->faces.empty()) {
      restored = FailedPreconditionError("the image holds no sealed originals; --approximate re-renders synthesized "
                                         "faces through the inverse flow (not the original pixels)");
    }
  } else {
    engine::PipelineParams params;
    params.method = engine::ReplaceMethod::kSynthesized;
    auto pipeline = engine::Pipeline::Create(params);
    restored = pipeline.ok() ? (*pipeline)->RestoreApproximate(*image, *manifest, *grant) : pipeline.status();
  }
  if (!restored.ok()) return fail_logged(restored.status());

  std::vector<uchar> buf;
  if (!EncodeImage(fs::path(*out).extension().string(), restored->image, buf)) {
    return fail_logged(InvalidArgumentError("cannot write '" + *out + "': use .png for an exact restore"));
  }
  std::string written(buf.begin(), buf.end());
  std::string sidecar;  // an approximate restore's manifest when the format cannot hold one
  if (!exact) {
    // An approximate restore says so in its own manifest: what it came from, that it is re-rendered.
    auto decoded = engine::DecodeImage(written);
    if (!decoded.ok()) return fail_logged(decoded.status());
    engine::Manifest said = *manifest;
    said.manifest_id = keys::Sha256("veil-approximate-restore-v1:" + manifest->manifest_id + request->info().request_id_hex).substr(0, 16);
    said.manifest_seal.clear();
    said.key_check.clear();  // names the anonymized image's manifest id, not this one
    for (auto& f : said.faces) {
      f.sealed_payload.clear();
      f.payload_location = engine::PayloadLocation::kNone;
    }
    said.output_pixels_sha256 = engine::PixelsSha256(*decoded);
    said.restored_from = {manifest->manifest_id, request->info().request_id_hex, true};
    for (const auto& m : restored->models) said.models.push_back(m);  // e.g. the pseudonym reader
    const std::string said_bytes = engine::SerializeManifest(said);
    auto embedded = engine::EmbedManifest(written, said_bytes);
    if (embedded.ok()) written = std::move(*embedded);
    else sidecar = said_bytes;
  }
  // The output files are opened (empty, under temporary names) before the success record: an
  // output that cannot be created leaves a failed record, never a success without its output. The
  // restored pixels are written only after the record, and appear under their names last.
  auto staged_image = keys::PendingFile::Create(*out, 0600);
  if (!staged_image.ok()) return fail_logged(staged_image.status());
  std::optional<keys::PendingFile> staged_sidecar;
  if (!sidecar.empty()) {
    auto staged = keys::PendingFile::Create(*out + ".veil", 0600);
    if (!staged.ok()) return fail_logged(staged.status());
    staged_sidecar = std::move(*staged);
  }
  if (StopRequested()) return fail_logged(CancelledError("stopped before anything was written"));
  Status logged = log_outcome(keys::AuditOutcome::kSuccess,
                              std::string(exact ? "restored " : "re-rendered (approximate) ") +
                                  std::to_string(restored->faces_restored) + " face(s) of manifest " +
                                  keys::ToHex(manifest->manifest_id),
                              manifest->keyring, manifest->key_version);
  // Fail closed: the empty temporary files go with their destructors.
  if (!logged.ok()) return fail_logged(logged);
  // A failure after the success record (a full disk, the renames) is recorded too; a sidecar is never
  // left without its image, and only files this restore put in place are removed.
  if (staged_sidecar) {
    Status st = staged_sidecar->Append(sidecar);
    if (st.ok()) st = staged_sidecar->Commit(*out + ".veil", false);
    if (!st.ok()) {
      if (staged_sidecar->committed()) std::remove((*out + ".veil").c_str());
      return fail_logged(st.WithContext(*out + ".veil"));
    }
  }
  Status st = staged_image->Append(written);
  if (st.ok()) st = staged_image->Commit(*out, false);
  if (!st.ok()) {
    if (staged_sidecar && !staged_image->committed()) std::remove((*out + ".veil").c_str());
    return fail_logged(st.WithContext(*out));
  }
  if (json) {
    PrintJson({{"output", *out}, {"exact", exact}, {"faces_restored", restored->faces_restored},
               {"faces_without_payload", restored->faces_without_payload},
               {"manifest_id", keys::ToHex(manifest->manifest_id)}});
  } else {
    std::printf("%s %d face(s) of %s into %s%s\n", exact ? "restored" : "re-rendered (approximate, not evidence)",
                restored->faces_restored, OneLine(input).c_str(), OneLine(*out).c_str(),
                restored->faces_without_payload ? " (some faces could not be restored and stay anonymized)" : "");
  }
  return 0;
}

}  // namespace

int RunRestore(int argc, char** argv) { return Restore(argc, argv); }

}  // namespace veil::cli
