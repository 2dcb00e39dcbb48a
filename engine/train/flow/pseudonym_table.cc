#include "flow/pseudonym_table.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <vector>

#include "data/utk_dataset.h"
#include "veil/engine/identity_flow.h"
#include "veil/keys/fs.h"
#include "veil/keys/secret.h"

namespace veil::train {

namespace {

constexpr size_t kBatch = 1024;
constexpr const char* kKeyLabel = "veil-gan-pseudonym-key-v1:";

}  // namespace

Status WritePseudonymTable(const std::string& model_path, const std::string& data_dir,
                           const std::function<void(const std::string&)>& log) {
  VEIL_ASSIGN_OR_RETURN(auto flow, engine::IdentityFlow::Load(model_path));
  VEIL_ASSIGN_OR_RETURN(UtkDataset data, UtkDataset::Open(data_dir));
  const size_t n = data.size(), row = size_t{kUtkPseudonymKeys} * kUtkDescriptorDim;
  std::string table(n * row * sizeof(float), '\0');
  for (int k = 0; k < kUtkPseudonymKeys; ++k) {
    const std::string d = keys::Blake2b256(kKeyLabel + std::to_string(k));
    const keys::SecretBytes key = keys::SecretBytes::Copy(d.data(), d.size());
    for (size_t start = 0; start < n; start += kBatch) {
      std::vector<engine::Descriptor> codes(std::min(kBatch, n - start));
      for (size_t j = 0; j < codes.size(); ++j)
        std::memcpy(codes[j].data(), data.descriptor(start + j), sizeof(float) * kUtkDescriptorDim);
      VEIL_ASSIGN_OR_RETURN(auto pseudonyms, flow->ForwardBatch(codes, key));
      for (size_t j = 0; j < codes.size(); ++j) {
        const size_t at = ((start + j) * row + static_cast<size_t>(k) * kUtkDescriptorDim) * sizeof(float);
        std::memcpy(table.data() + at, pseudonyms[j].data(), sizeof(float) * kUtkDescriptorDim);
      }
    }
    if (log) log("pseudonyms under training key " + std::to_string(k + 1) + "/" + std::to_string(kUtkPseudonymKeys));
  }
  const std::string info = "model_id " + flow->model_id() + "\nmodel_sha256 " + flow->model_sha256() + "\nkeys " +
                           std::to_string(kUtkPseudonymKeys) + " BLAKE2b-256(\"" + kKeyLabel + "\" k)\nfaces " +
                           std::to_string(n) + "\n";
  // The label goes first and comes back last: a run cut off in between leaves a table without a
  // label, never a label that names this model beside an older model's table.
  std::error_code ec;
  std::filesystem::remove(data_dir + "/pseudonyms.txt", ec);
  if (ec) return IoError("cannot remove " + data_dir + "/pseudonyms.txt: " + ec.message());
  VEIL_RETURN_IF_ERROR(keys::WriteFileAtomic(data_dir + "/pseudonyms.f32", table, /*overwrite=*/true, 0644));
  VEIL_RETURN_IF_ERROR(keys::WriteFileAtomic(data_dir + "/pseudonyms.txt", info, /*overwrite=*/true, 0644));
  if (log) log("wrote " + data_dir + "/pseudonyms.f32 (" + std::to_string(n) + " faces x " + std::to_string(kUtkPseudonymKeys) + " keys) from " + flow->model_id());
  return Status::Ok();
}

}  // namespace veil::train
