// Veil's own versioned model files (format: proto/veil/proto/model.proto).
//
//   "VEILMODL" | u32 LE version | SHA-256 of the rest | ModelFile protobuf
//
// Load checks magic, version and hash first ("not a Veil model file (bad magic)", DataLoss on a
// hash mismatch), then parses. Tensors stay as plain float buffers here, so that this header needs
// no LibTorch; engine/src/nets/module_io.h moves them in and out of torch::nn::Modules.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "veil/status.h"

namespace veil::engine {

struct ModelTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;   // row-major, always float32 in memory
  bool store_fp16 = true;      // how Save writes it
};

struct ModelFileContents {
  std::string model_id;
  std::string kind;
  std::map<std::string, std::string> options;
  std::map<std::string, std::string> info;
  std::vector<ModelTensor> tensors;
  int64_t created_unix = 0;
  std::string sha256_hex;      // of the file (set by Load)
};

// Reads and verifies a model file (at most 64 MiB).
StatusOr<ModelFileContents> LoadModelFile(const std::string& path);
// The same, from bytes in memory.
StatusOr<ModelFileContents> ParseModelFile(const std::string& bytes);
// Serializes (fp16 where store_fp16) and writes atomically; overwrites `path` only if `overwrite`.
Status SaveModelFile(const std::string& path, const ModelFileContents& model, bool overwrite);
std::string SerializeModelFile(const ModelFileContents& model);

// InvalidArgument naming the first option whose value differs from `expected` (or is missing),
// or an option that neither `expected` nor `also_known` (options the loader reads, which `expected`
// leaves out at their defaults) names.
Status CheckModelOptions(const ModelFileContents& model, const std::string& kind,
                         const std::map<std::string, std::string>& expected,
                         const std::set<std::string>& also_known = {});
// InvalidArgument naming the first tensor with a NaN or an infinity; `what` heads the message.
Status CheckFiniteTensors(const ModelFileContents& model, const std::string& what);

}  // namespace veil::engine
