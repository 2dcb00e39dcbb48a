// veil inspect: what Veil did to an image or video, read from its manifest, and whether the pixels
// are still the ones the manifest describes. Needs no key and writes nothing (the manifest is not
// secret: the seal and the sealed originals open only through an authorized restore).
#include <cstdio>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "cli.h"
#include "commands.h"
#include "manifest_lookup.h"
#include "output.h"
#include "veil/engine/image_io.h"
#include "veil/engine/manifest.h"
#include "veil/engine/video.h"
#include "veil/keys/fs.h"
#include "veil/keys/secret.h"

namespace veil::cli {
namespace {

const char* kUsage =
    "usage: veil inspect INPUT [--manifest FILE] [--json]\n"
    "  Prints what Veil did to INPUT (an image or video it anonymized, or an approximate restore's\n"
    "  output): the models and their SHA-256, the key's name and version, the scope, every face with\n"
    "  its box, method and the reason for it, where its sealed original is kept; then decodes INPUT\n"
    "  and checks that its pixels (a video: its frames) are the ones the manifest describes.\n"
    "  The manifest is read from INPUT, else from --manifest FILE or INPUT.veil. No key is needed, and\n"
    "  none is checked: what this prints is what the manifest says. Its seal (which a forger cannot\n"
    "  make, and which covers the pixel hash) is checked by veil restore, with the key.\n"
    "  Exit 0: pixels as the manifest describes; 14: they differ (edited since, or the manifest was\n"
    "  altered: only restore tells those apart); 3: no manifest; 6: a damaged one; 2: an image's\n"
    "  manifest for a video or the reverse.\n";

const char* PayloadPlace(engine::PayloadLocation where) {
  switch (where) {
    case engine::PayloadLocation::kInline: return "in the manifest";
    case engine::PayloadLocation::kSidecar: return "in the payload container";
    case engine::PayloadLocation::kKeyStore: return "by the key store";
    case engine::PayloadLocation::kNone: break;
  }
  return "not kept";
}

// Manifest text is untrusted until restore checks its seal: printed as printable ASCII only.
std::string Safe(const std::string& text, size_t max = 64) { return keys::Printable(text, max); }

// Whether INPUT's pixels are those the manifest describes; *detail says what was compared.
StatusOr<bool> PixelsMatch(const std::string& input, const std::string& bytes, const engine::Manifest& m,
                           std::string* detail) {
  if (engine::IsVideoPath(input) != (m.frames > 0)) {
    return InvalidArgumentError(m.frames > 0 ? "the manifest describes a video, not the image " + Safe(input)
                                             : "the manifest describes an image, not the video " + Safe(input));
  }
  if (engine::IsVideoPath(input)) {
    int64_t frames = 0;
    VEIL_ASSIGN_OR_RETURN(std::string digest, engine::VideoFramesSha256(input, &frames));
    *detail = std::to_string(frames) + " frame(s), manifest " + std::to_string(m.frames);
    return frames == static_cast<int64_t>(m.frames) && digest == m.output_pixels_sha256;
  }
  engine::ImageLimits limits;
  limits.silence_decoder_stderr = true;
  VEIL_ASSIGN_OR_RETURN(cv::Mat image, engine::DecodeImage(bytes, limits));
  *detail = std::to_string(image.cols) + "x" + std::to_string(image.rows) + ", manifest " + std::to_string(m.width) + "x" +
            std::to_string(m.height);
  return engine::PixelsMatchManifest(image, m);
}

nlohmann::json ManifestJson(const engine::Manifest& m) {
  nlohmann::json models = nlohmann::json::array();
  for (const auto& r : m.models) models.push_back({{"role", r.role}, {"id", r.id}, {"sha256", r.sha256_hex}});
  nlohmann::json faces = nlohmann::json::array();
  std::map<std::string, int> methods;
  for (const auto& f : m.faces) {
    ++methods[engine::ReplaceMethodName(f.method)];
    nlohmann::json face = {{"index", f.index},
                           {"box", {f.box.x, f.box.y, f.box.width, f.box.height}},
                           {"method", engine::ReplaceMethodName(f.method)},
                           {"reason", f.method_reason},
                           {"region", {f.region.x, f.region.y, f.region.width, f.region.height}},
                           {"original", PayloadPlace(f.payload_location)}};
    if (m.frames > 0) face["frame"] = f.frame;
    faces.push_back(face);
  }
  nlohmann::json doc = {{"manifest_id", keys::ToHex(m.manifest_id)},
                        {"keyring", m.keyring},
                        {"key_version", m.key_version},
                        {"key_check", !m.key_check.empty()},
                        {"scope", keys::ScopeKindName(m.scope)},
                        {"scope_id", m.scope_id},
                        {"width", m.width},
                        {"height", m.height},
                        {"models", models},
                        {"methods", methods},
                        {"faces", faces},
                        {"output_pixels_sha256", keys::ToHex(m.output_pixels_sha256)},
                        {"sealed", !m.manifest_seal.empty()}};
  if (m.frames > 0) doc["frames"] = m.frames;
  if (!m.held_frames.empty()) {  // copies of a frame that keep a live recording in real time
    nlohmann::json held = nlohmann::json::array();
    for (const auto& h : m.held_frames) held.push_back({{"frame", h.frame}, {"copies", h.copies}, {"cut", h.cut}});
    doc["held_frames"] = held;
  }
  if (!m.payload_container.container_id.empty()) {
    doc["payload_container"] = {{"id", keys::ToHex(m.payload_container.container_id)},
                                {"records", m.payload_container.records},
                                {"bytes", m.payload_container.size}};
  }
  if (!m.restored_from.manifest_id.empty()) {
    doc["restored_from"] = {{"manifest_id", keys::ToHex(m.restored_from.manifest_id)},
                            {"request_id", Safe(m.restored_from.request_id, 128)},
                            {"approximate", m.restored_from.approximate}};
  }
  return doc;
}

void PrintText(const std::string& input, const std::string& where, const engine::Manifest& m, bool match,
               const std::string& detail) {
  std::printf("%s: %s by Veil, its manifest says (manifest %s, %s)\n", Safe(input, 200).c_str(),
              m.restored_from.manifest_id.empty() ? "anonymized" : "restored", keys::ToHex(m.manifest_id).c_str(),
              Safe(where, 200).c_str());
  if (!m.restored_from.manifest_id.empty()) {
    std::printf("  restored from manifest %s by request %s%s\n", keys::ToHex(m.restored_from.manifest_id).c_str(),
                Safe(m.restored_from.request_id, 128).c_str(),
                m.restored_from.approximate ? " (approximate: faces re-rendered, not evidence)" : "");
  }
  std::printf("  pixels: %s (%s)\n", match ? "as the manifest describes" : "NOT as the manifest describes (edited)",
              detail.c_str());
  std::printf("  key: keyring %s, version %u%s\n", Safe(m.keyring).c_str(), m.key_version,
              !m.key_check.empty() || !m.restored_from.manifest_id.empty() ? "" : " (no key check: an older manifest)");
  std::printf("  scope: %s%s%s\n", keys::ScopeKindName(m.scope), m.scope_id.empty() ? "" : " ", Safe(m.scope_id).c_str());
  for (const auto& r : m.models) {
    std::printf("  model: %s %s (sha256 %s)\n", Safe(r.role).c_str(), Safe(r.id).c_str(), Safe(r.sha256_hex).c_str());
  }
  if (!m.held_frames.empty()) {
    uint64_t copies = 0, cut = 0;
    for (const auto& h : m.held_frames) copies += h.copies, cut += h.cut;
    std::printf("  held frames: %llu of the %u frames are copies that hold the frame before them (a live recording kept in "
                "real time; --json lists them)",
                static_cast<unsigned long long>(copies), m.frames);
    if (cut > 0) {
      std::printf("; %llu frame intervals of real time left out (holds over a second, or copies too dear to write)",
                  static_cast<unsigned long long>(cut));
    }
    std::printf("\n");
  }
  std::printf("  faces: %zu\n", m.faces.size());
  for (const auto& f : m.faces) {
    std::string at = m.frames > 0 ? "frame " + std::to_string(f.frame) + " " : "";
    std::printf("    %sface %u: box %.0f %.0f %.0fx%.0f, %s%s%s%s; original %s\n", at.c_str(), f.index, f.box.x, f.box.y,
                f.box.width, f.box.height, engine::ReplaceMethodName(f.method), f.method_reason.empty() ? "" : " [",
                Safe(f.method_reason, 200).c_str(), f.method_reason.empty() ? "" : "]", PayloadPlace(f.payload_location));
  }
  std::printf("  seal: %s\n", m.manifest_seal.empty() ? "none" : "present (checked with the key by veil restore)");
}

}  // namespace

int RunInspect(int argc, char** argv) {
  Args args(argc, argv, {"--json", "--help"});
  if (args.Flag("--help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const bool json = args.Flag("--json");
  auto manifest_path = args.Get("--manifest");
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  if (args.positionals().size() != 1) return Fail(InvalidArgumentError("give exactly one INPUT image or video"));
  const std::string input = args.positionals()[0];
  std::string bytes;
  if (!engine::IsVideoPath(input)) {
    auto read = keys::ReadFile(input, engine::ImageLimits().max_file_bytes);
    if (!read.ok()) return Fail(read.status());
    bytes = std::move(*read);
  } else if (!keys::PathExists(input)) {
    return Fail(NotFoundError(input + " does not exist"));
  }
  auto found = FindManifestBytes(input, bytes, manifest_path);
  if (!found.ok()) return Fail(found.status());
  auto manifest = engine::ParseManifest(found->raw);
  if (!manifest.ok()) return Fail(manifest.status().WithContext("the manifest of " + input));
  std::string detail;
  auto match = PixelsMatch(input, bytes, *manifest, &detail);
  if (!match.ok()) return Fail(match.status());
  if (json) {
    nlohmann::json doc = ManifestJson(*manifest);
    doc["input"] = input;
    doc["manifest_from"] = found->where;
    doc["pixels_match"] = *match;
    PrintJson(doc);
  } else {
    PrintText(input, found->where, *manifest, *match, detail);
  }
  if (*match) return 0;
  // The one-line error too, for scripts that read stderr.
  return Fail(EditedError(Safe(input, 200) + ": its pixels are not those its manifest describes (edited since, or the "
                          "manifest altered: veil restore tells which, with the key)"));
}

}  // namespace veil::cli
