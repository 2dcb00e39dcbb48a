#include "veil/engine/manifest.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <map>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include "veil/keys/secret.h"
#include "veil/proto/manifest.pb.h"

namespace veil::engine {
namespace {

constexpr uint32_t kManifestVersion = 1;
constexpr uint32_t kHeldFramesVersion = 2;  // a manifest with held frames
constexpr char kPngChunk[] = "veIL";
constexpr std::string_view kJpegTag("VEIL\0", 5);
constexpr size_t kJpegChunk = 65000;

uint32_t Crc32(const unsigned char* p, size_t n, uint32_t crc = 0xffffffffu) {
  static uint32_t table[256];
  static bool init = [] {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    return true;
  }();
  (void)init;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc;
}

uint32_t BE32(const std::string& s, size_t at) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(s[at])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(s[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(s[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(s[at + 3]));
}

void PutBE32(std::string* s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void PutBE16(std::string* s, uint32_t v) {
  s->push_back(static_cast<char>((v >> 8) & 0xff));
  s->push_back(static_cast<char>(v & 0xff));
}

bool IsPng(const std::string& b) { return b.size() >= 8 && b.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0; }
bool IsJpeg(const std::string& b) {
  return b.size() >= 4 && static_cast<unsigned char>(b[0]) == 0xff && static_cast<unsigned char>(b[1]) == 0xd8;
}

// PNG: walk the chunks; returns the offset of IEND and our chunk's data (if present).
Status WalkPng(const std::string& b, size_t* iend, std::string* found, bool* has_found) {
  size_t pos = 8;
  *has_found = false;
  while (pos + 12 <= b.size()) {
    uint32_t len = BE32(b, pos);
    if (len > b.size() || pos + 12 + len > b.size()) return DataLossError("PNG chunk runs past the end of the file");
    std::string type = b.substr(pos + 4, 4);
    if (type == kPngChunk) {
      uint32_t crc = Crc32(reinterpret_cast<const unsigned char*>(b.data() + pos + 4), 4 + len) ^ 0xffffffffu;
      if (crc != BE32(b, pos + 8 + len)) return DataLossError("embedded manifest chunk fails its CRC");
      *found = b.substr(pos + 8, len);
      *has_found = true;
    }
    if (type == "IEND") {
      *iend = pos;
      return Status::Ok();
    }
    pos += 12 + len;
  }
  return DataLossError("PNG has no IEND chunk (truncated)");
}

}  // namespace

const char* ReplaceMethodName(ReplaceMethod m) {
  switch (m) {
    case ReplaceMethod::kSynthesized: return "synthesized";
    case ReplaceMethod::kBlur: return "blur";
    case ReplaceMethod::kPixelate: return "pixelate";
    case ReplaceMethod::kSolid: return "solid";
  }
  return "unknown";
}

StatusOr<ReplaceMethod> ParseReplaceMethod(const std::string& name) {
  for (auto m : {ReplaceMethod::kSynthesized, ReplaceMethod::kBlur, ReplaceMethod::kPixelate, ReplaceMethod::kSolid}) {
    if (name == ReplaceMethodName(m)) return m;
  }
  return InvalidArgumentError("unknown replacement '" + name + "' (synthesized, blur, pixelate, solid)");
}

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::internal::WireFormatLite;

// What the wire walk counts: messages protobuf would build (each some 50-150 bytes in memory),
// unknown fields (kept by protobuf, as many), and the records that Veil bounds.
struct WireCounts {
  size_t messages = 0, unknown = 0, faces = 0, landmarks = 0, models = 0, held = 0;
  uint32_t frames = 0;
  bool face_over_68 = false;
};

// Walks the message of type `d` up to the stream's limit, descending into every message field.
bool WalkMessage(google::protobuf::io::CodedInputStream& in, const Descriptor* d, WireCounts& c) {
  const bool manifest = d == proto::Manifest::descriptor(), face = d == proto::FaceRecord::descriptor();
  size_t marks = 0;
  while (const uint32_t tag = in.ReadTag()) {
    const FieldDescriptor* f = d->FindFieldByNumber(WireFormatLite::GetTagFieldNumber(tag));
    const auto wire = WireFormatLite::GetTagWireType(tag);
    const auto expected = f ? WireFormatLite::WireTypeForFieldType(static_cast<WireFormatLite::FieldType>(f->type()))
                            : WireFormatLite::WIRETYPE_VARINT;
    const bool packed = f && f->is_repeated() && wire == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
    if (!f || (wire != expected && !packed)) {  // kept as an unknown field
      ++c.unknown;
      if (!WireFormatLite::SkipField(&in, tag)) return false;
      continue;
    }
    if (f->type() != FieldDescriptor::TYPE_MESSAGE) {
      if (manifest && f->number() == proto::Manifest::kFramesFieldNumber) {
        if (!in.ReadVarint32(&c.frames)) return false;
      } else if (!WireFormatLite::SkipField(&in, tag)) {
        return false;
      }
      continue;
    }
    uint32_t length = 0;
    if (!in.ReadVarint32(&length) || length > static_cast<uint32_t>(in.BytesUntilTotalBytesLimit())) return false;
    const auto limit = in.PushLimit(static_cast<int>(length));
    ++c.messages;
    if (manifest && f->number() == proto::Manifest::kFacesFieldNumber) ++c.faces;
    if (manifest && f->number() == proto::Manifest::kModelsFieldNumber) ++c.models;
    if (manifest && f->number() == proto::Manifest::kHeldFramesFieldNumber) ++c.held;
    if (face && f->number() == proto::FaceRecord::kLandmarksFieldNumber) ++marks;
    if (!WalkMessage(in, f->message_type(), c) || in.BytesUntilLimit() != 0) return false;
    in.PopLimit(limit);
  }
  c.landmarks += marks;
  c.face_over_68 |= marks > 68;
  return true;
}

// The manifest's records counted on the wire, before protobuf allocates them (kMaxManifestFaces
// says why). Every message and unknown field is counted, at any depth: a million empty entries of
// any kind cost as much as a million empty faces.
Status CheckRecordCounts(const std::string& bytes) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()), static_cast<int>(bytes.size()));
  WireCounts c;
  if (!WalkMessage(in, proto::Manifest::descriptor(), c) || !in.ConsumedEntireMessage()) {
    return DataLossError("manifest does not parse");
  }
  if (c.face_over_68) return DataLossError("a face record of the manifest has more than 68 landmarks");
  const size_t max_faces = c.frames == 0 ? kMaxImageManifestFaces : kMaxManifestFaces;
  // A face is a record, its box and region, a payload and its key reference, once 5 landmarks:
  // 10 messages; a held frame 1.
  if (c.faces > max_faces || c.held > kMaxManifestFaces || c.landmarks > 5 * max_faces || c.models > 64 ||
      c.messages > 10 * max_faces + c.held + 1024 || c.unknown > 1024) {
    return ResourceExhaustedError("manifest lists " + std::to_string(c.faces) + " faces, " + std::to_string(c.landmarks) +
                                  " landmarks, " + std::to_string(c.models) + " models, " + std::to_string(c.held) +
                                  " held frames, " + std::to_string(c.messages) + " records in all and " +
                                  std::to_string(c.unknown) + " unknown fields: more than Veil writes (" +
                                  std::to_string(max_faces) + " faces" + (c.frames == 0 ? " in an image" : "") + ")");
  }
  return Status::Ok();
}

}  // namespace

std::string SerializeManifest(const Manifest& m) {
  proto::Manifest p;
  p.set_format_version(m.held_frames.empty() ? kManifestVersion : kHeldFramesVersion);
  p.mutable_producer()->set_name("veil");
  p.mutable_producer()->set_version(VEIL_VERSION);
  p.set_manifest_id(m.manifest_id);
  for (const auto& r : m.models) {
    auto* mr = p.add_models();
    mr->set_id(r.id);
    mr->set_role(r.role);
    auto raw = keys::FromHex(r.sha256_hex);
    if (raw.ok()) mr->set_sha256(*raw);
  }
  p.mutable_key()->set_keyring(m.keyring);
  p.mutable_key()->set_version(m.key_version);
  if (!m.key_check.empty()) p.mutable_key()->set_key_check(m.key_check);
  p.set_scope_kind(static_cast<proto::ScopeKind>(m.scope));
  p.set_scope_id(m.scope_id);
  for (const auto& f : m.faces) {
    auto* fr = p.add_faces();
    fr->set_index(f.index);
    fr->mutable_box()->set_x(f.box.x);
    fr->mutable_box()->set_y(f.box.y);
    fr->mutable_box()->set_width(f.box.width);
    fr->mutable_box()->set_height(f.box.height);
    for (const auto& pt : f.landmarks) {
      auto* q = fr->add_landmarks();
      q->set_x(pt.x);
      q->set_y(pt.y);
    }
    fr->set_method(static_cast<proto::ReplaceMethod>(f.method));
    fr->set_method_reason(f.method_reason);
    fr->set_detector_score(f.detector_score);
    fr->mutable_region()->set_x(static_cast<float>(f.region.x));
    fr->mutable_region()->set_y(static_cast<float>(f.region.y));
    fr->mutable_region()->set_width(static_cast<float>(f.region.width));
    fr->mutable_region()->set_height(static_cast<float>(f.region.height));
    fr->set_payload_location(static_cast<proto::FaceRecord::PayloadLocation>(f.payload_location));
    fr->set_frame(f.frame);
    if (!f.sealed_payload.empty()) {
      fr->mutable_payload()->mutable_key()->set_keyring(m.keyring);
      fr->mutable_payload()->mutable_key()->set_version(m.key_version);
      fr->mutable_payload()->set_scope_kind(proto::SCOPE_KIND_FACE);
      fr->mutable_payload()->set_ciphertext(f.sealed_payload);
    }
  }
  p.set_output_pixels_sha256(m.output_pixels_sha256);
  p.set_width(m.width);
  p.set_height(m.height);
  p.set_frames(m.frames);
  if (!m.payload_container.container_id.empty()) {
    auto* c = p.mutable_payload_container();
    c->set_container_id(m.payload_container.container_id);
    c->set_sha256(m.payload_container.sha256);
    c->set_size(m.payload_container.size);
    c->set_records(m.payload_container.records);
  }
  p.set_manifest_seal(m.manifest_seal);
  for (const auto& h : m.held_frames) {
    auto* x = p.add_held_frames();
    x->set_frame(h.frame);
    x->set_copies(h.copies);
    x->set_cut(h.cut);
  }
  if (!m.restored_from.manifest_id.empty()) {
    auto* r = p.mutable_restored_from();
    r->set_manifest_id(m.restored_from.manifest_id);
    r->set_request_id(m.restored_from.request_id);
    r->set_approximate(m.restored_from.approximate);
  }
  return p.SerializeAsString();
}

StatusOr<Manifest> ParseManifest(const std::string& bytes) {
  if (bytes.size() > kMaxManifestBytes) return ResourceExhaustedError("manifest is larger than 64 MiB");
  VEIL_RETURN_IF_ERROR(CheckRecordCounts(bytes));
  proto::Manifest p;
  if (!p.ParseFromString(bytes)) return DataLossError("manifest does not parse");
  if (p.format_version() != kHeldFramesVersion || p.held_frames().empty()) {
    VEIL_RETURN_IF_ERROR(CheckFormatVersion("manifest", p.format_version(), kManifestVersion));
    if (!p.held_frames().empty()) return DataLossError("a version 1 manifest lists held frames");
  }
  if (p.manifest_id().size() != 16 || p.output_pixels_sha256().size() != 32) {
    return DataLossError("manifest ids or output hash are malformed");
  }
  Manifest m;
  m.manifest_id = p.manifest_id();
  m.output_pixels_sha256 = p.output_pixels_sha256();
  for (const auto& r : p.models()) m.models.push_back({r.id(), r.role(), keys::ToHex(r.sha256())});
  m.keyring = p.key().keyring();
  m.key_version = p.key().version();
  if (!p.key().key_check().empty() && p.key().key_check().size() != 16) {
    return DataLossError("manifest holds a key check of " + std::to_string(p.key().key_check().size()) + " bytes (16 expected)");
  }
  m.key_check = p.key().key_check();
  if (p.scope_kind() < 1 || p.scope_kind() > 4) return DataLossError("manifest names an unknown scope");
  m.scope = static_cast<keys::ScopeKind>(p.scope_kind());
  m.scope_id = p.scope_id();
  m.width = p.width();
  m.height = p.height();
  m.frames = p.frames();
  if (p.has_payload_container()) {
    const auto& c = p.payload_container();
    if (c.container_id().size() != 16 || c.sha256().size() != 32) return DataLossError("manifest payload container reference is malformed");
    m.payload_container = {c.container_id(), c.sha256(), c.size(), c.records()};
  }
  m.manifest_seal = p.manifest_seal();
  // Each held frame and its copies lie within the video, in order, apart from the next.
  int64_t free_from = 0;  // the first output frame not yet covered
  for (const auto& h : p.held_frames()) {
    const int64_t last = static_cast<int64_t>(h.frame()) + h.copies();
    if ((h.copies() == 0 && h.cut() == 0) || h.frame() < free_from || last >= static_cast<int64_t>(m.frames)) {
      return DataLossError("manifest lists held frames out of order or outside the video");
    }
    m.held_frames.push_back({h.frame(), h.copies(), h.cut()});
    free_from = last + 1;
  }
  // A restore's output is never sealed and has no key check (approximate: they named the anonymized
  // image); one with either was an anonymized image's manifest relabelled.
  if (p.has_restored_from() && (!p.manifest_seal().empty() || !p.key().key_check().empty())) {
    return DataLossError("the manifest says it is a restore's output but carries an anonymized image's seal or key check: it was altered");
  }
  if (p.has_restored_from()) {
    m.restored_from = {p.restored_from().manifest_id(), p.restored_from().request_id(), p.restored_from().approximate()};
  }
  for (const auto& fr : p.faces()) {
    FaceRecord f;
    f.index = fr.index();
    f.box = {fr.box().x(), fr.box().y(), fr.box().width(), fr.box().height()};
    for (const auto& q : fr.landmarks()) f.landmarks.emplace_back(q.x(), q.y());
    if (fr.method() < 1 || fr.method() > 4) return DataLossError("manifest names an unknown replacement method");
    f.method = static_cast<ReplaceMethod>(fr.method());
    f.method_reason = fr.method_reason();
    f.detector_score = fr.detector_score();
    // Checked as floats first: casting a NaN or a huge value to int is undefined.
    for (float v : {fr.region().x(), fr.region().y(), fr.region().width(), fr.region().height()}) {
      if (!(v >= 0.0f && v <= 65536.0f)) return DataLossError("manifest face region lies outside the image");
      // Whole pixels, as Veil writes them: a fraction would be cut off below, where the seal no
      // longer sees it, so an altered region would pass as the one it was.
      if (v != std::floor(v)) return DataLossError("manifest face region is not in whole pixels");
    }
    f.region = cv::Rect(static_cast<int>(fr.region().x()), static_cast<int>(fr.region().y()),
                        static_cast<int>(fr.region().width()), static_cast<int>(fr.region().height()));
    if (f.region.x + static_cast<int64_t>(f.region.width) > m.width ||
        f.region.y + static_cast<int64_t>(f.region.height) > m.height) {
      return DataLossError("manifest face region lies outside the image");
    }
    if (fr.payload_location() < 0 || fr.payload_location() > 3) return DataLossError("manifest names an unknown payload location");
    f.payload_location = static_cast<PayloadLocation>(fr.payload_location());
    f.frame = fr.frame();
    f.sealed_payload = fr.payload().ciphertext();
    m.faces.push_back(std::move(f));
  }
  return m;
}

std::string PixelsSha256(const cv::Mat& image) {
  std::string data = "veil-pixels-v1:" + std::to_string(image.cols) + "x" + std::to_string(image.rows) + "x" +
                     std::to_string(image.channels()) + ":" + std::to_string(image.depth()) + ":";
  const size_t row_bytes = static_cast<size_t>(image.cols) * image.elemSize();
  data.reserve(data.size() + row_bytes * static_cast<size_t>(image.rows));
  for (int y = 0; y < image.rows; ++y) data.append(reinterpret_cast<const char*>(image.ptr(y)), row_bytes);
  return keys::Sha256(data);
}

bool PixelsMatchManifest(const cv::Mat& decoded, const Manifest& m) {
  return decoded.cols == static_cast<int>(m.width) && decoded.rows == static_cast<int>(m.height) &&
         decoded.type() == CV_8UC3 && PixelsSha256(decoded) == m.output_pixels_sha256;
}

StatusOr<std::string> EmbedManifest(const std::string& encoded, const std::string& manifest) {
  if (IsPng(encoded)) {
    size_t iend = 0;
    std::string old;
    bool has_old = false;
    VEIL_RETURN_IF_ERROR(WalkPng(encoded, &iend, &old, &has_old));
    if (has_old) return AlreadyExistsError("the image already carries a Veil manifest");
    std::string chunk;
    PutBE32(&chunk, static_cast<uint32_t>(manifest.size()));
    chunk += kPngChunk;
    chunk += manifest;
    uint32_t crc = Crc32(reinterpret_cast<const unsigned char*>(chunk.data() + 4), chunk.size() - 4) ^ 0xffffffffu;
    PutBE32(&chunk, crc);
    return encoded.substr(0, iend) + chunk + encoded.substr(iend);
  }
  if (IsJpeg(encoded)) {
    const size_t parts = (manifest.size() + kJpegChunk - 1) / kJpegChunk;
    if (parts > 65535) return ResourceExhaustedError("manifest too large to embed in a JPEG; use a sidecar");
    std::string segments;
    for (size_t i = 0; i < std::max<size_t>(parts, 1); ++i) {
      std::string body(kJpegTag);
      PutBE16(&body, static_cast<uint32_t>(i));
      PutBE16(&body, static_cast<uint32_t>(parts));
      body += manifest.substr(i * kJpegChunk, kJpegChunk);
      segments += "\xff\xeb";
      PutBE16(&segments, static_cast<uint32_t>(body.size() + 2));
      segments += body;
    }
    // After the JFIF segment, which must follow the start marker directly for strict readers.
    size_t at = 2;
    if (encoded.size() >= 6 && static_cast<uint8_t>(encoded[2]) == 0xFF && static_cast<uint8_t>(encoded[3]) == 0xE0) {
      const size_t length = (static_cast<size_t>(static_cast<uint8_t>(encoded[4])) << 8) | static_cast<uint8_t>(encoded[5]);
      if (length >= 2 && 4 + length <= encoded.size()) at = 2 + 2 + length;
    }
    return encoded.substr(0, at) + segments + encoded.substr(at);
  }
  return UnsupportedError("manifests embed only in PNG and JPEG; use a sidecar for this format");
}

StatusOr<std::string> ExtractManifest(const std::string& encoded) {
  if (IsPng(encoded)) {
    size_t iend = 0;
    std::string found;
    bool has = false;
    VEIL_RETURN_IF_ERROR(WalkPng(encoded, &iend, &found, &has));
    if (!has) return NotFoundError("the image carries no Veil manifest");
    return found;
  }
  if (IsJpeg(encoded)) {
    std::map<uint32_t, std::string> parts;
    uint32_t total = 0;
    size_t pos = 2;
    while (pos + 4 <= encoded.size()) {
      if (static_cast<unsigned char>(encoded[pos]) != 0xff) return DataLossError("JPEG marker structure is damaged");
      unsigned char marker = static_cast<unsigned char>(encoded[pos + 1]);
      if (marker == 0xda || marker == 0xd9) break;  // start of scan / end of image: no more metadata
      size_t len = (static_cast<size_t>(static_cast<unsigned char>(encoded[pos + 2])) << 8) |
                   static_cast<unsigned char>(encoded[pos + 3]);
      if (len < 2 || pos + 2 + len > encoded.size()) return DataLossError("JPEG segment runs past the end of the file");
      if (marker == 0xeb && len >= 2 + kJpegTag.size() + 4 && encoded.compare(pos + 4, kJpegTag.size(), kJpegTag) == 0) {
        size_t at = pos + 4 + kJpegTag.size();
        uint32_t seq = (static_cast<uint32_t>(static_cast<unsigned char>(encoded[at])) << 8) |
                       static_cast<unsigned char>(encoded[at + 1]);
        uint32_t n = (static_cast<uint32_t>(static_cast<unsigned char>(encoded[at + 2])) << 8) |
                     static_cast<unsigned char>(encoded[at + 3]);
        if ((total && n != total) || seq >= std::max<uint32_t>(n, 1) || parts.count(seq)) {
          return DataLossError("embedded manifest segments are inconsistent");
        }
        total = n;
        parts[seq] = encoded.substr(at + 4, pos + 2 + len - (at + 4));
      }
      pos += 2 + len;
    }
    if (parts.empty()) return NotFoundError("the image carries no Veil manifest");
    if (parts.size() != std::max<uint32_t>(total, 1)) return DataLossError("embedded manifest is missing segments");
    std::string out;
    for (auto& [seq, data] : parts) out += data;
    return out;
  }
  return NotFoundError("the image carries no Veil manifest (only PNG and JPEG embed one)");
}

}  // namespace veil::engine
