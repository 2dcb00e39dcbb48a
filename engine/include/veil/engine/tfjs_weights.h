// Loader for TF.js "weights manifest" model files, as shipped by face-api.
//
// Layout: `<dir>/<model>-weights_manifest.json` is a JSON array of groups
//   [{"paths": ["<model>.bin", ...], "weights": [{"name", "shape", "dtype", "quantization"?}, ...]}]
// The tensors of a group are packed back to back, in manifest order, across the concatenation of
// its shards. A tensor is float32 (4 bytes per value), int32 (4 bytes), quantized to uint8
// (1 byte per value, value = q * scale + min) or stored as float16 (2 bytes per value). Convolution filters are HWIO [kh, kw, in, out];
// depthwise filters are [kh, kw, channels, 1].
//
// The loader refuses (DataLoss) a manifest that is not valid JSON, an unknown dtype, a shard whose
// size differs from what the manifest says (truncated or padded files), and a tensor name that
// occurs twice. Networks then ask for each tensor by name and shape (Take) and check that they
// used every tensor (CheckAllTaken), so a renamed, reshaped or missing tensor is refused too.
// With `verify_checksums`, every file must also match the SHA-256 pinned for face-api 1.7.15.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "veil/status.h"

namespace veil::engine {

struct TfjsTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;  // int32 tensors are converted to float
};

class TfjsWeights {
 public:
  // Loads `<dir>/<model>-weights_manifest.json` and its shards.
  static StatusOr<TfjsWeights> Load(const std::filesystem::path& dir, const std::string& model,
                                    bool verify_checksums = true);
  // Parses a manifest whose shards are given as bytes, keyed by the manifest's path strings.
  static StatusOr<TfjsWeights> Parse(const std::string& manifest_json,
                                     const std::map<std::string, std::string>& shards);

  // The tensor `name`, which must have exactly `shape`; DataLoss otherwise. Marks it as used.
  StatusOr<const TfjsTensor*> Take(const std::string& name, const std::vector<int64_t>& shape);
  // DataLoss naming the first tensor that no Take() asked for.
  Status CheckAllTaken() const;

  size_t size() const { return tensors_.size(); }
  const std::vector<TfjsTensor>& tensors() const { return tensors_; }

 private:
  std::string model_;
  std::vector<TfjsTensor> tensors_;
  std::map<std::string, size_t> index_;
  std::set<std::string> taken_;
};

// SHA-256 (hex) pinned for a face-api 1.7.15 model file name; empty when the file is unknown.
std::string PinnedSha256(const std::string& file_name);

}  // namespace veil::engine
