#include "veil/engine/tfjs_weights.h"

#include <sodium.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "veil/keys/fs.h"

namespace veil::engine {
namespace {

constexpr size_t kMaxModelFileBytes = 64u << 20;  // the largest face-api shard is 6.2 MB
constexpr int64_t kMaxTensorValues = 16 << 20;

std::string Hex(const unsigned char* bytes, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(digits[bytes[i] >> 4]);
    out.push_back(digits[bytes[i] & 15]);
  }
  return out;
}

std::string Sha256Hex(const std::string& bytes) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return Hex(digest, sizeof digest);
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Status CheckPinned(const std::string& file_name, const std::string& bytes) {
  const std::string pinned = PinnedSha256(file_name);
  if (pinned.empty()) return DataLossError("model file " + file_name + " is not part of face-api 1.7.15");
  if (Sha256Hex(bytes) != pinned) {
    return DataLossError("model file " + file_name +
                         " does not match its pinned SHA-256 (altered or truncated); run tools/fetch_face_api.sh");
  }
  return Status::Ok();
}

struct Spec {
  std::string name;
  std::vector<int64_t> shape;
  std::string dtype;
  bool quantized = false;  // uint8: value = q * scale + min
  bool half = false;       // float16 (IEEE 754 binary16)
  double scale = 0, min = 0;
  int64_t count = 1;
  size_t bytes = 0;
};

StatusOr<Spec> ParseSpec(const nlohmann::json& w) {
  Spec s;
  if (!w.is_object() || !w.contains("name") || !w["name"].is_string() || !w.contains("shape") ||
      !w["shape"].is_array() || !w.contains("dtype") || !w["dtype"].is_string()) {
    return DataLossError("weights manifest entry lacks name, shape or dtype");
  }
  s.name = w["name"].get<std::string>();
  for (const auto& d : w["shape"]) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) return DataLossError("tensor " + s.name + " has a bad shape");
    s.shape.push_back(d.get<int64_t>());
    s.count *= s.shape.back();
    if (s.count > kMaxTensorValues) return DataLossError("tensor " + s.name + " is implausibly large");
  }
  s.dtype = w["dtype"].get<std::string>();
  if (s.dtype != "float32" && s.dtype != "int32") {
    return DataLossError("tensor " + s.name + " has unsupported dtype " + s.dtype);
  }
  size_t bytes_per_value = 4;
  if (w.contains("quantization")) {
    const auto& q = w["quantization"];
    if (q.is_object() && q.value("dtype", "") == "float16" && s.dtype == "float32") {
      s.half = true;
      bytes_per_value = 2;
    } else if (!q.is_object() || q.value("dtype", "") != "uint8" || !q.contains("scale") || !q["scale"].is_number() ||
               !q.contains("min") || !q["min"].is_number()) {
      return DataLossError("tensor " + s.name + " has an unsupported quantization (uint8 scale/min or float16 only)");
    } else {
      s.quantized = true;
      s.scale = q["scale"].get<double>();
      s.min = q["min"].get<double>();
      if (!std::isfinite(s.scale) || !std::isfinite(s.min)) return DataLossError("tensor " + s.name + " has a bad scale");
      bytes_per_value = 1;
    }
  }
  s.bytes = static_cast<size_t>(s.count) * bytes_per_value;
  return s;
}

// IEEE 754 binary16 -> float (subnormals, infinities and NaN included).
float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  float f;
  if (exp == 0) {
    f = std::ldexp(static_cast<float>(mant), -24);  // zero or subnormal
    return sign ? -f : f;
  }
  uint32_t bits;
  if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  std::memcpy(&f, &bits, 4);
  return f;
}

TfjsTensor Decode(const Spec& s, const char* p) {
  TfjsTensor t{s.name, s.shape, std::vector<float>(static_cast<size_t>(s.count))};
  for (int64_t i = 0; i < s.count; ++i) {
    if (s.quantized) {
      t.values[i] = static_cast<float>(static_cast<unsigned char>(p[i]) * s.scale + s.min);
    } else if (s.half) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      t.values[i] = HalfToFloat(h);
    } else if (s.dtype == "float32") {
      std::memcpy(&t.values[i], p + 4 * i, 4);
    } else {
      int32_t v;
      std::memcpy(&v, p + 4 * i, 4);
      t.values[i] = static_cast<float>(v);
    }
  }
  return t;
}

}  // namespace

StatusOr<TfjsWeights> TfjsWeights::Parse(const std::string& manifest_json,
                                         const std::map<std::string, std::string>& shards) {
  nlohmann::json manifest = nlohmann::json::parse(manifest_json, nullptr, /*allow_exceptions=*/false);
  if (manifest.is_discarded() || !manifest.is_array()) return DataLossError("weights manifest is not a JSON array");
  TfjsWeights out;
  for (const auto& group : manifest) {
    if (!group.is_object() || !group.contains("paths") || !group["paths"].is_array() || !group.contains("weights") ||
        !group["weights"].is_array()) {
      return DataLossError("weights manifest group lacks paths or weights");
    }
    std::string data;
    for (const auto& p : group["paths"]) {
      if (!p.is_string()) return DataLossError("weights manifest path is not a string");
      auto it = shards.find(p.get<std::string>());
      if (it == shards.end()) return DataLossError("weights shard " + p.get<std::string>() + " is missing");
      data += it->second;
    }
    size_t offset = 0;
    for (const auto& w : group["weights"]) {
      VEIL_ASSIGN_OR_RETURN(Spec spec, ParseSpec(w));
      if (offset + spec.bytes > data.size()) {
        return DataLossError("weights shard is truncated: tensor " + spec.name + " needs bytes " +
                             std::to_string(offset) + ".." + std::to_string(offset + spec.bytes) + " of " +
                             std::to_string(data.size()));
      }
      if (out.index_.count(spec.name)) return DataLossError("tensor " + spec.name + " occurs twice");
      out.index_[spec.name] = out.tensors_.size();
      out.tensors_.push_back(Decode(spec, data.data() + offset));
      offset += spec.bytes;
    }
    if (offset != data.size()) {
      return DataLossError("weights shard has " + std::to_string(data.size() - offset) +
                           " bytes more than its manifest describes");
    }
  }
  return out;
}

StatusOr<TfjsWeights> TfjsWeights::Load(const std::filesystem::path& dir, const std::string& model,
                                        bool verify_checksums) {
  const std::string manifest_name = model + "-weights_manifest.json";
  const std::filesystem::path manifest_path = dir / manifest_name;
  if (!std::filesystem::exists(manifest_path)) {
    return NotFoundError("face-api model " + manifest_path.string() +
                         " not found; run tools/fetch_face_api.sh or set VEIL_FACE_API_DIR");
  }
  if (sodium_init() < 0) return InternalError("libsodium failed to initialize");
  VEIL_ASSIGN_OR_RETURN(std::string manifest, keys::ReadFile(manifest_path.string(), kMaxModelFileBytes));
  if (verify_checksums) VEIL_RETURN_IF_ERROR(CheckPinned(manifest_name, manifest));
  nlohmann::json j = nlohmann::json::parse(manifest, nullptr, false);
  if (j.is_discarded() || !j.is_array()) return DataLossError(manifest_path.string() + " is not a JSON array");
  std::map<std::string, std::string> shards;
  for (const auto& group : j) {
    if (!group.is_object() || !group.contains("paths") || !group["paths"].is_array()) {
      return DataLossError(manifest_path.string() + ": group lacks paths");
    }
    for (const auto& p : group["paths"]) {
      if (!p.is_string()) return DataLossError(manifest_path.string() + ": path is not a string");
      const std::string name = p.get<std::string>();
      if (name.find('/') != std::string::npos || name.find("..") != std::string::npos) {
        return DataLossError(manifest_path.string() + ": shard path " + name + " leaves the model folder");
      }
      auto bytes = keys::ReadFile((dir / name).string(), kMaxModelFileBytes);
      if (!bytes.ok()) return bytes.status().WithContext("reading weights shard " + name);
      if (verify_checksums) VEIL_RETURN_IF_ERROR(CheckPinned(name, *bytes));
      shards[name] = std::move(bytes).value();
    }
  }
  auto parsed = Parse(manifest, shards);
  if (!parsed.ok()) return parsed.status().WithContext(model);
  parsed->model_ = model;
  return parsed;
}

StatusOr<const TfjsTensor*> TfjsWeights::Take(const std::string& name, const std::vector<int64_t>& shape) {
  auto it = index_.find(name);
  if (it == index_.end()) return DataLossError(model_ + ": tensor " + name + " is missing");
  const TfjsTensor& t = tensors_[it->second];
  if (t.shape != shape) {
    return DataLossError(model_ + ": tensor " + name + " has shape " + ShapeString(t.shape) + ", expected " +
                         ShapeString(shape));
  }
  taken_.insert(name);
  return &t;
}

Status TfjsWeights::CheckAllTaken() const {
  for (const auto& t : tensors_) {
    if (!taken_.count(t.name)) return DataLossError(model_ + ": unexpected tensor " + t.name);
  }
  return Status::Ok();
}

}  // namespace veil::engine
