#include "common/checkpoint_archive.h"

#include <sstream>
#include <string_view>

#include "veil/keys/fs.h"
#include "veil/keys/secret.h"

namespace veil::train {

void WriteModule(torch::serialize::OutputArchive& ar, const std::string& key, const torch::nn::Module& m) {
  torch::serialize::OutputArchive sub;
  m.save(sub);
  ar.write(key, sub);
}

void WriteOptimizer(torch::serialize::OutputArchive& ar, const std::string& key, const torch::optim::Optimizer& opt) {
  torch::serialize::OutputArchive sub;
  opt.save(sub);
  ar.write(key, sub);
}

void ReadModule(torch::serialize::InputArchive& ar, const std::string& key, torch::nn::Module& m) {
  torch::serialize::InputArchive sub;
  ar.read(key, sub);
  m.load(sub);
}

void ReadOptimizer(torch::serialize::InputArchive& ar, const std::string& key, torch::optim::Optimizer& opt) {
  torch::serialize::InputArchive sub;
  ar.read(key, sub);
  opt.load(sub);
}

namespace {

constexpr char kMagic[] = "VEILCKPT";
constexpr size_t kMagicBytes = 8, kHeaderBytes = kMagicBytes + 4 + 32;
constexpr uint32_t kVersion = 1;

std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }  // no torch backtrace

}  // namespace

Status SaveArchiveDurably(torch::serialize::OutputArchive& ar, const std::string& path, const std::string& what) {
  std::ostringstream archive;
  try {
    ar.save_to(archive);
  } catch (const std::exception& e) {
    return IoError("cannot write the " + what + " " + path + ": " + FirstLine(e.what()));
  }
  const std::string payload = archive.str();
  std::string file(kMagic, kMagicBytes);
  for (int i = 0; i < 4; ++i) file.push_back(static_cast<char>((kVersion >> (8 * i)) & 0xFF));
  file += keys::Sha256(payload);
  file += payload;
  Status st = keys::WriteFileAtomic(path, file, /*overwrite=*/true, 0644);
  return st.ok() ? st : st.WithContext("the " + what);
}

Status LoadArchive(const std::string& path, const torch::Device& device, torch::serialize::InputArchive& ar,
                   const std::string& what) {
  auto bytes = keys::ReadFile(path, size_t{4} << 30);
  if (!bytes.ok()) return bytes.status().WithContext("the " + what);
  try {
    if (bytes->compare(0, kMagicBytes, kMagic, kMagicBytes) != 0) {  // written before the header
      ar.load_from(bytes->data(), bytes->size(), device);
      return Status::Ok();
    }
    if (bytes->size() < kHeaderBytes) return DataLossError("the " + what + " " + path + " is truncated");
    uint32_t version = 0;
    for (int i = 0; i < 4; ++i) version |= static_cast<uint32_t>(static_cast<uint8_t>((*bytes)[kMagicBytes + i])) << (8 * i);
    if (version != kVersion) {
      return UnsupportedError("the " + what + " " + path + " has format version " + std::to_string(version) +
                              " (this build reads " + std::to_string(kVersion) + ")");
    }
    const std::string_view payload(bytes->data() + kHeaderBytes, bytes->size() - kHeaderBytes);
    if (keys::Sha256(payload) != bytes->substr(kMagicBytes + 4, 32)) {
      return DataLossError("the " + what + " " + path + " is corrupt (its SHA-256 does not match)");
    }
    ar.load_from(payload.data(), payload.size(), device);
  } catch (const std::exception& e) {
    return DataLossError("cannot read the " + what + " " + path + ": " + FirstLine(e.what()));
  }
  return Status::Ok();
}

}  // namespace veil::train
