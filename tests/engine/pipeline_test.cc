// The anonymize -> restore round trip on the face-api demo photos, through the real key store.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "test_support.h"
#include "veil/engine/face_detector.h"
#include "veil/engine/pipeline.h"
#include "veil/keys/aead.h"
#include "veil/keys/key_store.h"
#include "veil/keys/principal_key.h"
#include "veil/proto/manifest.pb.h"

using namespace veil;
using namespace veil::engine;

namespace {

using Store = testing::TestStore;

std::unique_ptr<Pipeline> MakePipeline(ReplaceMethod method = ReplaceMethod::kPixelate,
                                       PayloadLocation payloads = PayloadLocation::kInline) {
  PipelineParams p;
  p.models_dir = testing::ModelsDir().string();
  p.method = method;
  p.payloads = payloads;
  auto pipeline = Pipeline::Create(p);
  REQUIRE_MESSAGE(pipeline.ok(), pipeline.status().ToString());
  return std::move(pipeline.value());
}

cv::Mat Decode(const std::string& bytes) {
  return cv::imdecode(std::vector<uchar>(bytes.begin(), bytes.end()), cv::IMREAD_COLOR);
}

// A manifest of a 64x48 image, no face: what ParseManifest takes, to edit field by field.
Manifest SmallManifest() {
  Manifest m;
  m.manifest_id = std::string(16, 'i');
  m.output_pixels_sha256 = std::string(32, 'o');
  m.scope = keys::ScopeKind::kImage;
  m.width = 64;
  m.height = 48;
  return m;
}

Manifest EmbeddedManifest(const std::string& bytes) {
  auto raw = ExtractManifest(bytes);
  REQUIRE(raw.ok());
  auto m = ParseManifest(*raw);
  REQUIRE(m.ok());
  return *m;
}

}  // namespace

TEST_CASE("anonymize changes every face region and restore with approvals gives back the exact pixels") {
  Store s;
  auto pipeline = MakePipeline();
  const cv::Mat& input = testing::DemoImage("sample1.jpg");
  auto out = pipeline->AnonymizeImage(input, s.Key(), ".png");
  REQUIRE_MESSAGE(out.ok(), out.status().ToString());
  cv::Mat anonymized = Decode(out->image_bytes);
  Manifest m = EmbeddedManifest(out->image_bytes);
  REQUIRE(m.faces.size() == 3);
  for (const auto& f : m.faces) {
    CHECK(f.method == ReplaceMethod::kPixelate);
    CHECK(f.payload_location == PayloadLocation::kInline);
    CHECK(cv::norm(anonymized(f.region), input(f.region), cv::NORM_L1) > 0);
  }
  auto restored = RestoreFromPayloads(anonymized, m, s.Grant(out->image_bytes));
  REQUIRE_MESSAGE(restored.ok(), restored.status().ToString());
  CHECK(restored->faces_restored == 3);
  CHECK(cv::norm(restored->image, input, cv::NORM_INF) == 0);  // bit-exact
}

TEST_CASE("the same input and key give identical output bytes; another key gives other bytes") {
  Store s, t('q');
  auto pipeline = MakePipeline(ReplaceMethod::kBlur);
  const cv::Mat& input = testing::DemoImage("sample2.jpg");
  auto a = pipeline->AnonymizeImage(input, s.Key(), ".png");
  auto b = pipeline->AnonymizeImage(input, s.Key(), ".png");
  auto c = pipeline->AnonymizeImage(input, t.Key(), ".png");
  REQUIRE((a.ok() && b.ok() && c.ok()));
  CHECK(a->image_bytes == b->image_bytes);
  CHECK(a->image_bytes != c->image_bytes);
  CHECK(a->manifest.manifest_id != c->manifest.manifest_id);
}

TEST_CASE("a shared manifest names no digest of the input: its image scope id is keyed") {
  Store s, t('q');
  const cv::Mat& input = testing::DemoImage("sample2.jpg");
  const std::string digest_hex = keys::ToHex(PixelsSha256(input));
  auto pipeline = MakePipeline(ReplaceMethod::kBlur);
  auto a = pipeline->AnonymizeImage(input, s.Key(), ".png");
  auto b = pipeline->AnonymizeImage(input, t.Key(), ".png");
  REQUIRE((a.ok() && b.ok()));
  const Manifest m = EmbeddedManifest(a->image_bytes);
  CHECK(m.scope == keys::ScopeKind::kImage);
  CHECK(m.scope_id.size() == 64);
  CHECK(m.scope_id != digest_hex);
  CHECK(a->image_bytes.find(digest_hex) == std::string::npos);
  CHECK(b->manifest.scope_id != m.scope_id);  // another key: another id for the same photo
}

TEST_CASE("one photo anonymized twice with other options gets two manifest ids, so kept payloads never collide") {
  Store s;
  auto pixelating = MakePipeline(ReplaceMethod::kPixelate, PayloadLocation::kKeyStore);
  auto blurring = MakePipeline(ReplaceMethod::kBlur, PayloadLocation::kKeyStore);
  const cv::Mat& input = testing::DemoImage("sample1.jpg");
  auto png = pixelating->AnonymizeImage(input, s.Key(), ".png");
  auto jpg = pixelating->AnonymizeImage(input, s.Key(), ".jpg");
  auto blur = blurring->AnonymizeImage(input, s.Key(), ".png");
  auto again = pixelating->AnonymizeImage(input, s.Key(), ".png");
  REQUIRE((png.ok() && jpg.ok() && blur.ok() && again.ok()));
  CHECK(png->manifest.manifest_id != jpg->manifest.manifest_id);
  CHECK(png->manifest.manifest_id != blur->manifest.manifest_id);
  CHECK(png->manifest.manifest_id == again->manifest.manifest_id);  // the same output: the same id
  CHECK(png->store_manifest_bytes == again->store_manifest_bytes);
}

TEST_CASE("a JPEG output carries its manifest and restores the faces exactly") {
  Store s;
  auto pipeline = MakePipeline(ReplaceMethod::kSolid);
  const cv::Mat& input = testing::DemoImage("sample3.jpg");
  auto out = pipeline->AnonymizeImage(input, s.Key(), ".jpg");
  REQUIRE(out.ok());
  // No metadata: no EXIF/XMP (APP1) segment in what Veil writes.
  CHECK(out->image_bytes.find("Exif") == std::string::npos);
  CHECK(out->image_bytes.find("http://ns.adobe.com/xap") == std::string::npos);
  // A JFIF file: its APP0 segment directly after the start marker, the manifest (APP11) after it.
  CHECK(out->image_bytes.compare(0, 4, "\xFF\xD8\xFF\xE0") == 0);
  CHECK(out->image_bytes.compare(6, 5, std::string("JFIF\0", 5)) == 0);
  CHECK(out->image_bytes.find("\xFF\xEB") == 4 + 16);
  cv::Mat anonymized = Decode(out->image_bytes);
  Manifest m = EmbeddedManifest(out->image_bytes);
  CHECK(m.faces.size() == 3);
  for (const auto& f : m.faces) CHECK((f.landmarks.empty() && f.detector_score == 0));  // the original's geometry is not shared
  auto restored = RestoreFromPayloads(anonymized, m, s.Grant(out->image_bytes));
  REQUIRE(restored.ok());
  for (const auto& f : m.faces) CHECK(cv::norm(restored->image(f.region), input(f.region), cv::NORM_INF) == 0);
}

TEST_CASE("restore refuses an image edited after anonymization as edited, told apart from an altered manifest") {
  Store s;
  auto pipeline = MakePipeline();
  auto out = pipeline->AnonymizeImage(testing::DemoImage("sample1.jpg"), s.Key(), ".png");
  REQUIRE(out.ok());
  cv::Mat edited = Decode(out->image_bytes);
  edited.at<cv::Vec3b>(5, 5)[0] ^= 1;
  auto r = RestoreFromPayloads(edited, EmbeddedManifest(out->image_bytes), s.Grant(out->image_bytes));
  CHECK(r.status().code() == StatusCode::kEdited);
  CHECK(static_cast<int>(r.status().code()) == 14);
  cv::Mat cropped = Decode(out->image_bytes)(cv::Rect(0, 0, 100, 100)).clone();
  auto c = RestoreFromPayloads(cropped, EmbeddedManifest(out->image_bytes), s.Grant(out->image_bytes));
  CHECK(c.status().code() == StatusCode::kEdited);
}

TEST_CASE("restore with another store's key says wrong key; with a tampered manifest it says altered") {
  Store s, other('q');
  auto pipeline = MakePipeline();
  auto out = pipeline->AnonymizeImage(testing::DemoImage("sample1.jpg"), s.Key(), ".png");
  REQUIRE(out.ok());
  cv::Mat anonymized = Decode(out->image_bytes);
  Manifest m = EmbeddedManifest(out->image_bytes);
  REQUIRE(m.key_check.size() == 16);
  CHECK(m.key_check == s.Key().KeyCheck(m.manifest_id));
  // Another store's key of the same keyring name and version: the key check names other material.
  auto wrong = RestoreFromPayloads(anonymized, m, other.Grant(out->image_bytes));
  CHECK(wrong.status().code() == StatusCode::kUnauthenticated);
  CHECK(wrong.status().message().find("wrong key") != std::string::npos);
  Manifest moved = m;
  moved.faces[0].region.x += 1;  // point the payload at other pixels
  auto altered = RestoreFromPayloads(anonymized, moved, s.Grant(out->image_bytes));
  CHECK(altered.status().code() == StatusCode::kDataLoss);
  CHECK(altered.status().message().find("altered") != std::string::npos);
  // The check is a hint, never trusted: edited to name the other key, the seal still decides (the
  // right key restores, the other key reads as altered but gets nothing).
  Manifest relabelled = m;
  relabelled.key_check = other.Key().KeyCheck(m.manifest_id);
  CHECK(RestoreFromPayloads(anonymized, relabelled, s.Grant(out->image_bytes)).ok());
  CHECK(RestoreFromPayloads(anonymized, relabelled, other.Grant(out->image_bytes)).status().code() == StatusCode::kDataLoss);
  // The keyring name edited: the check names this grant's own key, so altered (6), not "another
  // keyring" (7).
  Manifest renamed = m;
  renamed.keyring = "defaulu";
  auto renamed_restore = RestoreFromPayloads(anonymized, renamed, s.Grant(out->image_bytes));
  CHECK(renamed_restore.status().code() == StatusCode::kDataLoss);
  CHECK(renamed_restore.status().message().find("names keyring 'defaulu'") != std::string::npos);
  renamed.key_check.clear();  // no check to tell: a request for keyring "default" does not release "defaulu"
  CHECK(RestoreFromPayloads(anonymized, renamed, s.Grant(out->image_bytes)).status().code() == StatusCode::kPermissionDenied);
  // Without a check (an image anonymized before them), a wrong key and an alteration look the same.
  Manifest older = m;
  older.key_check.clear();
  CHECK(RestoreFromPayloads(anonymized, older, other.Grant(out->image_bytes)).status().code() == StatusCode::kUnauthenticated);
  CHECK(RestoreFromPayloads(anonymized, older, s.Grant(out->image_bytes)).ok());
}

TEST_CASE("restore refuses a sealed image manifest with a face record dropped, edited or emptied, or its seal stripped") {
  Store s;
  auto pipeline = MakePipeline();
  auto out = pipeline->AnonymizeImage(testing::DemoImage("sample1.jpg"), s.Key(), ".png");
  REQUIRE(out.ok());
  const cv::Mat anonymized = Decode(out->image_bytes);
  const Manifest m = EmbeddedManifest(out->image_bytes);
  REQUIRE_FALSE(m.manifest_seal.empty());
  REQUIRE(m.faces.size() == 3);
  auto code = [&](const Manifest& edited) { return RestoreFromPayloads(anonymized, edited, s.Grant(out->image_bytes)).status().code(); };
  // The right key (its check matches): each of these is an alteration, exit 6, not a wrong key.
  Manifest dropped = m;
  dropped.faces.pop_back();  // that face would silently stay anonymized
  CHECK(code(dropped) == StatusCode::kDataLoss);
  Manifest emptied = m;
  emptied.faces[1].sealed_payload.clear();
  CHECK(code(emptied) == StatusCode::kDataLoss);
  Manifest relabelled = m;
  relabelled.faces[0].method = ReplaceMethod::kBlur;  // the record of what was done
  CHECK(code(relabelled) == StatusCode::kDataLoss);
  Manifest other_models = m;
  other_models.models[0].sha256_hex[0] = other_models.models[0].sha256_hex[0] == '0' ? '1' : '0';
  CHECK(code(other_models) == StatusCode::kDataLoss);
  Manifest rehashed = m;  // what the manifest says of the pixels is checked too: altered, not "edited"
  rehashed.output_pixels_sha256[0] = static_cast<char>(rehashed.output_pixels_sha256[0] ^ 1);
  CHECK(code(rehashed) == StatusCode::kDataLoss);
  CHECK(RestoreFromPayloads(anonymized, rehashed, s.Grant(out->image_bytes)).status().message().find("manifest was altered") !=
        std::string::npos);
  Manifest stripped = m;  // no way back to an unchecked older manifest: its key check says it was sealed
  stripped.manifest_seal.clear();
  CHECK(code(stripped) == StatusCode::kDataLoss);
  CHECK(RestoreFromPayloads(anonymized, stripped, s.Grant(out->image_bytes)).status().message().find("seal was taken away") !=
        std::string::npos);
  Manifest stripped_bare = stripped;  // with the payloads taken too, it is still altered, not "no sealed originals"
  for (auto& f : stripped_bare.faces) f.sealed_payload.clear();
  CHECK(code(stripped_bare) == StatusCode::kDataLoss);
  Manifest tampered_payload = m;
  tampered_payload.faces[2].sealed_payload.back() ^= 1;
  CHECK(code(tampered_payload) == StatusCode::kDataLoss);
  // With neither check nor seal to prove the key (the payloads stay bound: "veil-payload-v2"), a
  // payload that does not open could be either.
  Manifest unproven = stripped;
  unproven.key_check.clear();
  CHECK(code(unproven) == StatusCode::kUnauthenticated);
  // A forged manifest that lists no face and carries no seal: its pixel hash can be computed from
  // the shared image, but it must not pass the anonymized image off as the original.
  Manifest forged = unproven;
  forged.faces.clear();
  CHECK(code(forged) == StatusCode::kDataLoss);
  // Faces without payloads and neither seal nor key check (as before 2026-12-01): nothing is
  // restored, and each face says so (veil restore then refuses: "the image holds no sealed originals").
  Manifest forged_faces = unproven;
  for (auto& f : forged_faces.faces) f.sealed_payload.clear();
  auto none = RestoreFromPayloads(anonymized, forged_faces, s.Grant(out->image_bytes));
  REQUIRE(none.ok());
  CHECK(none->faces_restored == 0);
  CHECK(none->faces_without_payload == 3);
  CHECK(code(m) == StatusCode::kOk);
}

TEST_CASE("an image anonymized before manifest seals still restores exactly") {
  Store s;
  auto pipeline = MakePipeline();
  const cv::Mat original = testing::DemoImage("sample1.jpg");
  auto out = pipeline->AnonymizeImage(original, s.Key(), ".png");
  REQUIRE(out.ok());
  // The manifest as Veil wrote it then: no seal (nor key check, which came a day later), payloads
  // bound with the v1 associated data.
  Manifest legacy = EmbeddedManifest(out->image_bytes);
  legacy.manifest_seal.clear();
  legacy.key_check.clear();
  const keys::KeyHandle key = s.Key();
  for (auto& f : legacy.faces) {
    std::vector<uchar> png;
    REQUIRE(cv::imencode(".png", original(f.region), png));
    auto sealed = keys::SealPayload(key, keys::ScopeKind::kFace, keys::ToHex(legacy.manifest_id) + "#" + std::to_string(f.index),
                                    std::string(png.begin(), png.end()), PayloadAssociatedData(legacy, f.index), true);
    REQUIRE(sealed.ok());
    f.sealed_payload = *sealed;
  }
  auto restored = RestoreFromPayloads(Decode(out->image_bytes), legacy, s.Grant(out->image_bytes));
  REQUIRE_MESSAGE(restored.ok(), restored.status().ToString());
  CHECK(restored->faces_restored == 3);
  CHECK(cv::norm(restored->image, original, cv::NORM_INF) == 0);
}

TEST_CASE("payloads kept by the key store leave no sealed bytes in the shared image") {
  Store s;
  auto pipeline = MakePipeline(ReplaceMethod::kPixelate, PayloadLocation::kKeyStore);
  auto out = pipeline->AnonymizeImage(testing::DemoImage("sample1.jpg"), s.Key(), ".png");
  REQUIRE(out.ok());
  Manifest shared = EmbeddedManifest(out->image_bytes);
  for (const auto& f : shared.faces) {
    CHECK(f.sealed_payload.empty());
    CHECK(f.payload_location == PayloadLocation::kKeyStore);
  }
  auto full = ParseManifest(out->store_manifest_bytes);
  REQUIRE(full.ok());
  auto restored = RestoreFromPayloads(Decode(out->image_bytes), *full, s.Grant(out->image_bytes));
  REQUIRE(restored.ok());
  CHECK(restored->faces_restored == 3);
}

TEST_CASE("small faces fall back to pixelation and the manifest says so") {
  Store s;
  PipelineParams p;
  p.models_dir = testing::ModelsDir().string();
  p.method = ReplaceMethod::kBlur;
  p.min_face_size = 100000;
  auto pipeline = Pipeline::Create(p);
  REQUIRE(pipeline.ok());
  auto out = (*pipeline)->AnonymizeImage(testing::DemoImage("sample1.jpg"), s.Key(), ".png");
  REQUIRE(out.ok());
  for (const auto& f : out->manifest.faces) {
    CHECK(f.method == ReplaceMethod::kPixelate);
    CHECK(f.method_reason.find("smaller than") != std::string::npos);
  }
}

TEST_CASE("a photo lying on its side is anonymized with every face it has upright, unless upright only is asked") {
  Store s;
  cv::Mat sideways;
  cv::rotate(testing::DemoImage("sample5.jpg"), sideways, cv::ROTATE_90_CLOCKWISE);
  auto pipeline = MakePipeline();
  auto out = pipeline->AnonymizeImage(sideways, s.Key(), ".png");
  REQUIRE_MESSAGE(out.ok(), out.status().ToString());
  CHECK(out->manifest.faces.size() == 5);
  cv::Mat anonymized = Decode(out->image_bytes);
  for (const auto& f : out->manifest.faces) CHECK(cv::norm(anonymized(f.region), sideways(f.region), cv::NORM_L1) > 0);
  auto restored = RestoreFromPayloads(anonymized, out->manifest, s.Grant(out->image_bytes));
  REQUIRE_MESSAGE(restored.ok(), restored.status().ToString());
  CHECK(cv::norm(restored->image, sideways, cv::NORM_INF) == 0);

  PipelineParams p;
  p.models_dir = testing::ModelsDir().string();
  p.quarter_turns = false;
  auto upright_only = Pipeline::Create(p);
  REQUIRE(upright_only.ok());
  auto fewer = (*upright_only)->AnonymizeImage(sideways, s.Key(), ".png");
  REQUIRE(fewer.ok());
  CHECK(fewer->manifest.faces.size() < 5);
}

TEST_CASE("an image without faces is a normal result with an empty manifest") {
  Store s;
  auto pipeline = MakePipeline();
  cv::Mat gray(240, 320, CV_8UC3, cv::Scalar(90, 90, 90));
  auto out = pipeline->AnonymizeImage(gray, s.Key(), ".png");
  REQUIRE(out.ok());
  CHECK(out->manifest.faces.empty());
  CHECK(cv::norm(Decode(out->image_bytes), gray, cv::NORM_INF) == 0);
}

TEST_CASE("a WebP output wider than WebP holds (16383 pixels) is refused as unsupported, not a crash") {
  Store s;
  PipelineParams p;
  p.models_dir = testing::ModelsDir().string();
  p.placement = ManifestPlacement::kSidecar;  // WebP takes no embedded manifest
  auto pipeline = Pipeline::Create(p);
  REQUIRE(pipeline.ok());
  cv::Mat wide(16, 16384, CV_8UC3, cv::Scalar(90, 90, 90));
  auto out = (*pipeline)->AnonymizeImage(wide, s.Key(), ".webp");
  CHECK(out.status().code() == StatusCode::kUnsupported);
  CHECK(out.status().message().find("16383") != std::string::npos);
  auto fits = (*pipeline)->AnonymizeImage(wide(cv::Rect(0, 0, 16383, 16)).clone(), s.Key(), ".webp");
  CHECK_MESSAGE(fits.ok(), fits.status().ToString());
}

TEST_CASE("a photo whose sealed originals would exceed what restore reads back is refused, not written unrestorable") {
  // One face filling a 6000x6000 photo, grained so that its PNG shrinks little: about 80 MB of
  // original to seal, over the 64 MiB a manifest may have.
  Store s;
  const cv::Mat demo = testing::DemoImage("sample1.jpg");
  auto detector = FaceDetector::Create({testing::ModelsDir().string()});
  REQUIRE(detector.ok());
  auto found = (*detector)->Detect(demo);
  REQUIRE(found.ok());
  REQUIRE_FALSE(found->empty());
  const cv::Rect2f b = found->front().box;
  const float side = std::max(b.width, b.height) * 1.2f;
  const cv::Rect crop = cv::Rect(cv::Point(static_cast<int>(b.x + b.width / 2 - side / 2), static_cast<int>(b.y + b.height / 2 - side / 2)),
                                 cv::Size(static_cast<int>(side), static_cast<int>(side))) &
                        cv::Rect(0, 0, demo.cols, demo.rows);
  cv::Mat big, grain(6000, 6000, CV_8UC3);
  cv::resize(demo(crop), big, cv::Size(6000, 6000), 0, 0, cv::INTER_LINEAR);
  cv::RNG rng(7);
  rng.fill(grain, cv::RNG::UNIFORM, 0, 48);
  big = big * 0.8 + grain;
  auto out = MakePipeline()->AnonymizeImage(big, s.Key(), ".png");
  CHECK(out.status().code() == StatusCode::kResourceExhausted);
  CHECK(out.status().message().find("the manifest (") != std::string::npos);
}

TEST_CASE("manifest embedding refuses damaged containers and finds no manifest in plain images") {
  std::vector<uchar> png;
  cv::imencode(".png", cv::Mat(8, 8, CV_8UC3, cv::Scalar(1, 2, 3)), png);
  std::string bytes(png.begin(), png.end());
  CHECK(ExtractManifest(bytes).status().code() == StatusCode::kNotFound);
  auto with = EmbedManifest(bytes, "hello manifest");
  REQUIRE(with.ok());
  CHECK(*ExtractManifest(*with) == "hello manifest");
  std::string damaged = *with;
  damaged[damaged.find("hello") + 1] ^= 1;
  CHECK(ExtractManifest(damaged).status().code() == StatusCode::kDataLoss);
  CHECK(EmbedManifest("GIF89a", "x").status().code() == StatusCode::kUnsupported);
  CHECK(ParseManifest("garbage").status().code() == StatusCode::kDataLoss);
}

TEST_CASE("a manifest's held frames are read back as written and refused out of order, overlapping or outside the video") {
  Manifest m = SmallManifest();
  m.scope = keys::ScopeKind::kStream;
  m.frames = 7;
  m.held_frames = {{0, 1}, {2, 3}, {6, 0, 4}};  // frames: 0, a copy of 0, 2, three copies of 2, 6, then 4 intervals left out
  auto parsed = ParseManifest(SerializeManifest(m));
  REQUIRE_MESSAGE(parsed.ok(), parsed.status().ToString());
  REQUIRE(parsed->held_frames.size() == 3);
  CHECK((parsed->held_frames[1].frame == 2 && parsed->held_frames[1].copies == 3));
  CHECK((parsed->held_frames[2].copies == 0 && parsed->held_frames[2].cut == 4));
  for (std::vector<Manifest::HeldFrame> bad : std::vector<std::vector<Manifest::HeldFrame>>{
           {{0, 2}, {2, 1}},   // overlapping: frame 2 is a copy of frame 0
           {{2, 1}, {0, 1}},   // out of order
           {{4, 3}},           // past the last frame
           {{1, 0}},           // neither copies nor time left out
       }) {
    m.held_frames = bad;
    CHECK(ParseManifest(SerializeManifest(m)).status().code() == StatusCode::kDataLoss);
  }
  m.frames = 0;  // an image holds no frames
  m.held_frames = {{0, 1}};
  CHECK(ParseManifest(SerializeManifest(m)).status().code() == StatusCode::kDataLoss);
  // Held frames come with format version 2, which older readers refuse as a newer format; a version
  // 1 manifest that lists them is damaged.
  m.frames = 7;
  veil::proto::Manifest p;
  REQUIRE(p.ParseFromString(SerializeManifest(m)));
  CHECK(p.format_version() == 2);
  p.set_format_version(1);
  CHECK(ParseManifest(p.SerializeAsString()).status().code() == StatusCode::kDataLoss);
  m.held_frames.clear();
  REQUIRE(p.ParseFromString(SerializeManifest(m)));
  CHECK(p.format_version() == 1);
}

TEST_CASE("a manifest of more records than Veil writes is refused on the wire, before protobuf builds them") {
  // An empty face record is 2 bytes on the wire and some 100 in memory: 32 million of them, within
  // the 64 MiB cap, made protobuf take 4 GB.
  Manifest m = SmallManifest();
  const std::string image = SerializeManifest(m);
  REQUIRE(ParseManifest(image).ok());
  const std::string empty_face("\x42\x00", 2);
  std::string faces;
  for (size_t i = 0; i < kMaxImageManifestFaces; ++i) faces += empty_face;
  CHECK(ParseManifest(image + faces).status().code() != StatusCode::kResourceExhausted);  // as many as an image may hold
  CHECK(ParseManifest(image + faces + empty_face).status().code() == StatusCode::kResourceExhausted);
  m.frames = 5;  // a video may hold more
  const std::string video = SerializeManifest(m);
  CHECK(ParseManifest(video + faces + empty_face).status().code() != StatusCode::kResourceExhausted);
  while (faces.size() / 2 <= kMaxManifestFaces) faces += faces;
  CHECK(ParseManifest(video + faces).status().code() == StatusCode::kResourceExhausted);
  // A face has at most 68 landmarks, and the faces 5 each on average.
  const auto face_of = [](const std::string& record) {  // field 8, varint length (2 bytes here)
    REQUIRE((record.size() >= 128 && record.size() < 16384));
    std::string out = "\x42";
    out.push_back(static_cast<char>(0x80 | (record.size() & 0x7f)));
    out.push_back(static_cast<char>(record.size() >> 7));
    return out + record;
  };
  const std::string point("\x1a\x00", 2);
  std::string marks;
  for (int i = 0; i < 69; ++i) marks += point;
  const auto too_many = ParseManifest(image + face_of(marks)).status();
  CHECK(too_many.code() == StatusCode::kDataLoss);
  CHECK(too_many.message().find("more than 68 landmarks") != std::string::npos);
  marks.resize(2 * 68);
  const std::string crowded = face_of(marks);
  CHECK(ParseManifest(image + crowded).status().code() != StatusCode::kResourceExhausted);
  std::string crowd;
  for (size_t i = 0; i < 5 * kMaxImageManifestFaces / 68 + 1; ++i) crowd += crowded;
  CHECK(ParseManifest(image + crowd).status().code() == StatusCode::kResourceExhausted);
  // Held frames are counted too, and bytes that are no protobuf are damage.
  std::string held;
  for (size_t i = 0; i <= kMaxManifestFaces; ++i) held += std::string("\x8a\x01\x00", 3);
  CHECK(ParseManifest(video + held).status().code() == StatusCode::kResourceExhausted);
  CHECK(ParseManifest(image + std::string("\x42\x05\x1a", 3)).status().code() == StatusCode::kDataLoss);
  // Unknown fields (or known ones of another wire type) are kept by protobuf, one entry each: they
  // are counted, at any depth, as are the messages inside messages.
  std::string unknown;
  for (int i = 0; i < 1025; ++i) unknown += std::string("\x0a\x00", 2);  // field 1 as bytes: unknown
  CHECK(ParseManifest(image + unknown).status().code() == StatusCode::kResourceExhausted);
  const std::string inner_unknown = face_of(unknown.substr(0, 2 * 100));  // 100 in one face
  CHECK(ParseManifest(image + inner_unknown).status().code() != StatusCode::kResourceExhausted);
  std::string many_inner;
  for (int i = 0; i < 11; ++i) many_inner += inner_unknown;
  CHECK(ParseManifest(image + many_inner).status().code() == StatusCode::kResourceExhausted);
  std::string boxes;  // faces of one empty box each: 2 messages a face, within the bound
  for (size_t i = 0; i < kMaxImageManifestFaces; ++i) boxes += std::string("\x42\x02\x12\x00", 4);
  CHECK(ParseManifest(image + boxes).status().code() != StatusCode::kResourceExhausted);
  std::string models;  // at most 64 models
  for (int i = 0; i < 65; ++i) models += std::string("\x22\x00", 2);
  CHECK(ParseManifest(image + models).status().code() == StatusCode::kResourceExhausted);
}

TEST_CASE("a manifest's face region in fractions of a pixel is refused: the seal sees whole pixels only") {
  Manifest m = SmallManifest();
  FaceRecord f;
  f.box = {1.5f, 2.25f, 20.5f, 20.75f};  // a detector's box may be fractional
  f.region = {1, 2, 21, 21};
  m.faces.push_back(f);
  REQUIRE(ParseManifest(SerializeManifest(m)).ok());
  veil::proto::Manifest p;
  REQUIRE(p.ParseFromString(SerializeManifest(m)));
  p.mutable_faces(0)->mutable_region()->set_x(1.0000001f);  // one bit of the float flipped
  CHECK(ParseManifest(p.SerializeAsString()).status().code() == StatusCode::kDataLoss);
}

TEST_CASE("a manifest that says it is a restore's output but carries a seal or key check was relabelled: refused") {
  Manifest m = SmallManifest();
  m.restored_from = {std::string(16, 'a'), "0123", true};
  REQUIRE(ParseManifest(SerializeManifest(m)).ok());  // an approximate restore's own manifest
  Manifest sealed = m;
  sealed.manifest_seal = "seal";
  CHECK(ParseManifest(SerializeManifest(sealed)).status().code() == StatusCode::kDataLoss);
  Manifest checked = m;
  checked.key_check = std::string(16, 'k');
  CHECK(ParseManifest(SerializeManifest(checked)).status().code() == StatusCode::kDataLoss);
}

TEST_CASE("the identity check pushes a face at rising gains, skips steps the cap flattens, then stops") {
  constexpr size_t kEnd = std::size(kIdentityCheckGainSteps);
  // base 2: gains 2, 3, 5; every step rises.
  CHECK(IdentityCheckGain(2.0f, 0) == 2.0f);
  CHECK(NextIdentityCheckStep(2.0f, 0) == 1);
  CHECK(IdentityCheckGain(2.0f, 1) == 3.0f);
  CHECK(NextIdentityCheckStep(2.0f, 1) == 2);
  CHECK(IdentityCheckGain(2.0f, 2) == 5.0f);
  CHECK(NextIdentityCheckStep(2.0f, 2) == kEnd);
  // base 6: gains 6, 8 (9 capped), 8 (15 capped); the last step does not rise and is skipped.
  CHECK(NextIdentityCheckStep(6.0f, 0) == 1);
  CHECK(IdentityCheckGain(6.0f, 1) == 8.0f);
  CHECK(NextIdentityCheckStep(6.0f, 1) == kEnd);
  // base 8: already at the cap; there is no push at all.
  CHECK(NextIdentityCheckStep(8.0f, 0) == kEnd);
}
