#include "veil/engine/model_file.h"

#include <cmath>
#include <chrono>
#include <cstring>

#include "veil/keys/fs.h"
#include "veil/keys/secret.h"
#include "veil/proto/model.pb.h"

namespace veil::engine {
namespace {

constexpr std::string_view kMagic = "VEILMODL";
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kHashBytes = 32;
constexpr size_t kMaxModelFile = 64u << 20;

// IEEE 754 half <-> float, round to nearest even.
uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffffu;
  if (((x >> 23) & 0xff) == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0));  // inf/nan
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7c00u);                                          // overflow
  if (exp <= 0) {
    if (exp < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - exp);
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = sign | (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1))) ++half;  // may carry into the exponent: correct
  return static_cast<uint16_t>(half);
}

float HalfToFloat(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  uint32_t x;
  if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while (!(mant & 0x400u));
      x = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    x = sign | 0x7f800000u | (mant << 13);
  } else {
    x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

int64_t NumElements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || d > (1ll << 31)) return -1;
    n *= d;
    if (n > (1ll << 31)) return -1;
  }
  return n;
}

}  // namespace

StatusOr<ModelFileContents> ParseModelFile(const std::string& bytes) {
  const size_t fixed = kMagic.size() + 4 + kHashBytes;
  if (bytes.size() < kMagic.size() || bytes.compare(0, kMagic.size(), kMagic) != 0) {
    return DataLossError("not a Veil model file (bad magic)");
  }
  if (bytes.size() < fixed) return DataLossError("model file is truncated");
  uint32_t version = 0;
  for (int i = 0; i < 4; ++i) version |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[kMagic.size() + i])) << (8 * i);
  VEIL_RETURN_IF_ERROR(CheckFormatVersion("model file", version, kFormatVersion));
  std::string_view stored_hash(bytes.data() + kMagic.size() + 4, kHashBytes);
  std::string_view body(bytes.data() + fixed, bytes.size() - fixed);
  if (keys::Sha256(body) != stored_hash) return DataLossError("model file is corrupt (hash mismatch)");
  proto::ModelFile file;
  if (!file.ParseFromArray(body.data(), static_cast<int>(body.size()))) return DataLossError("model file does not parse");
  ModelFileContents out;
  out.model_id = file.model_id();
  out.kind = file.kind();
  out.options.insert(file.options().begin(), file.options().end());
  out.info.insert(file.info().begin(), file.info().end());
  out.created_unix = file.created_unix();
  out.sha256_hex = keys::ToHex(keys::Sha256(bytes));
  for (const auto& t : file.tensors()) {
    ModelTensor mt;
    mt.name = t.name();
    mt.shape.assign(t.shape().begin(), t.shape().end());
    int64_t n = NumElements(mt.shape);
    if (n < 0) return DataLossError("model tensor " + t.name() + " has an invalid shape");
    const size_t elem = t.dtype() == proto::TENSOR_DTYPE_FLOAT16 ? 2 : t.dtype() == proto::TENSOR_DTYPE_FLOAT32 ? 4 : 0;
    if (elem == 0) return DataLossError("model tensor " + t.name() + " has an unknown dtype");
    if (t.data().size() != static_cast<size_t>(n) * elem) {
      return DataLossError("model tensor " + t.name() + " has " + std::to_string(t.data().size()) +
                           " bytes, its shape needs " + std::to_string(static_cast<size_t>(n) * elem));
    }
    mt.store_fp16 = elem == 2;
    mt.values.resize(static_cast<size_t>(n));
    const auto* p = reinterpret_cast<const unsigned char*>(t.data().data());
    for (int64_t i = 0; i < n; ++i) {
      if (elem == 2) {
        mt.values[i] = HalfToFloat(static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8)));
      } else {
        uint32_t x = static_cast<uint32_t>(p[4 * i]) | (static_cast<uint32_t>(p[4 * i + 1]) << 8) |
                     (static_cast<uint32_t>(p[4 * i + 2]) << 16) | (static_cast<uint32_t>(p[4 * i + 3]) << 24);
        std::memcpy(&mt.values[i], &x, 4);
      }
    }
    out.tensors.push_back(std::move(mt));
  }
  return out;
}

StatusOr<ModelFileContents> LoadModelFile(const std::string& path) {
  auto bytes = keys::ReadFile(path, kMaxModelFile);
  if (!bytes.ok()) return bytes.status().WithContext("model file " + path);
  auto model = ParseModelFile(*bytes);
  if (!model.ok()) return model.status().WithContext(path);
  return model;
}

std::string SerializeModelFile(const ModelFileContents& model) {
  proto::ModelFile file;
  file.mutable_producer()->set_name("veil");
  file.mutable_producer()->set_version(VEIL_VERSION);
  file.set_model_id(model.model_id);
  file.set_kind(model.kind);
  for (const auto& [k, v] : model.options) (*file.mutable_options())[k] = v;
  for (const auto& [k, v] : model.info) (*file.mutable_info())[k] = v;
  file.set_created_unix(model.created_unix ? model.created_unix
                                           : std::chrono::duration_cast<std::chrono::seconds>(
                                                 std::chrono::system_clock::now().time_since_epoch())
                                                 .count());
  for (const auto& t : model.tensors) {
    auto* nt = file.add_tensors();
    nt->set_name(t.name);
    for (int64_t d : t.shape) nt->add_shape(d);
    std::string data;
    if (t.store_fp16) {
      nt->set_dtype(proto::TENSOR_DTYPE_FLOAT16);
      data.resize(t.values.size() * 2);
      for (size_t i = 0; i < t.values.size(); ++i) {
        uint16_t h = FloatToHalf(t.values[i]);
        data[2 * i] = static_cast<char>(h & 0xff);
        data[2 * i + 1] = static_cast<char>(h >> 8);
      }
    } else {
      nt->set_dtype(proto::TENSOR_DTYPE_FLOAT32);
      data.resize(t.values.size() * 4);
      for (size_t i = 0; i < t.values.size(); ++i) {
        uint32_t x;
        std::memcpy(&x, &t.values[i], 4);
        for (int b = 0; b < 4; ++b) data[4 * i + b] = static_cast<char>((x >> (8 * b)) & 0xff);
      }
    }
    nt->set_data(std::move(data));
  }
  std::string body = file.SerializeAsString();
  std::string out(kMagic);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((kFormatVersion >> (8 * i)) & 0xff));
  out += keys::Sha256(body);
  out += body;
  return out;
}

Status SaveModelFile(const std::string& path, const ModelFileContents& model, bool overwrite) {
  std::string bytes = SerializeModelFile(model);
  if (bytes.size() > kMaxModelFile) return ResourceExhaustedError("model file would exceed 64 MiB");
  return keys::WriteFileAtomic(path, bytes, overwrite, 0644);
}

Status CheckFiniteTensors(const ModelFileContents& model, const std::string& what) {
  for (const auto& t : model.tensors) {
    for (float v : t.values) {
      if (!std::isfinite(v)) return InvalidArgumentError(what + ": tensor " + t.name + " has non-finite values");
    }
  }
  return Status::Ok();
}

Status CheckModelOptions(const ModelFileContents& model, const std::string& kind,
                         const std::map<std::string, std::string>& expected, const std::set<std::string>& also_known) {
  if (model.kind != kind) {
    return InvalidArgumentError("model is a '" + model.kind + "', expected a '" + kind + "'");
  }
  for (const auto& [k, v] : expected) {
    auto it = model.options.find(k);
    if (it == model.options.end()) return InvalidArgumentError("model lacks option " + k);
    if (it->second != v) {
      return InvalidArgumentError("model option " + k + "=" + it->second + " does not match this build (" + v + ")");
    }
  }
  // An option this build does not know may change what the network computes: refuse it rather
  // than render something else without a word.
  for (const auto& [k, v] : model.options) {
    if (!expected.count(k) && !also_known.count(k)) return InvalidArgumentError("model option " + k + "=" + v + " is unknown to this build");
  }
  return Status::Ok();
}

}  // namespace veil::engine
