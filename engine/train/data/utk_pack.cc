#include "data/utk_pack.h"

#include <algorithm>
#include <bit>
#include <filesystem>
#include <random>
#include <sstream>
#include <vector>

#include <opencv2/imgcodecs.hpp>

#include "data/utk_dataset.h"
#include "veil/keys/fs.h"

namespace veil::train {

Status PackSubset(const PackOptions& o, PackStats* stats) {
  namespace fs = std::filesystem;
  if (o.train < 1 || o.holdout < 2) return InvalidArgumentError("a pack needs at least 1 train and 2 held-out faces");
  if (o.quality < 50 || o.quality > 100) return InvalidArgumentError("--quality must be in [50, 100]");
  if (o.pseudonym_keys < 0 || o.pseudonym_keys > kUtkPseudonymKeys) {
    return InvalidArgumentError("--pseudonym-keys must be in [0, " + std::to_string(kUtkPseudonymKeys) + "]");
  }
  static_assert(std::endian::native == std::endian::little, "the pack's offsets are written as little-endian");
  std::error_code ec;
  if (fs::exists(o.out_dir, ec) && !fs::is_empty(o.out_dir, ec)) return AlreadyExistsError(o.out_dir + " is not empty");
  if (ec) return IoError("cannot read " + o.out_dir + ": " + ec.message());
  VEIL_ASSIGN_OR_RETURN(UtkDataset ds, UtkDataset::Open(o.data_dir));

  std::vector<size_t> train = ds.TrainIndices();
  std::mt19937_64 rng(o.seed);
  std::shuffle(train.begin(), train.end(), rng);
  train.resize(std::min(train.size(), static_cast<size_t>(o.train)));
  const std::vector<size_t> all_holdout = ds.Indices(Split::kHoldout);
  const size_t n_hold = std::min(all_holdout.size(), static_cast<size_t>(o.holdout));
  if (train.empty() || n_hold < 2) {
    return FailedPreconditionError("the set has " + std::to_string(train.size()) + " train faces and " +
                                   std::to_string(all_holdout.size()) + " held-out ones: a pack needs 1 and 2");
  }
  std::vector<size_t> rows = train;
  for (size_t i = 0; i < n_hold; ++i) rows.push_back(all_holdout[i * all_holdout.size() / n_hold]);
  std::sort(rows.begin(), rows.end());

  fs::create_directories(o.out_dir, ec);
  if (ec) return IoError("cannot create " + o.out_dir + ": " + ec.message());
  PackStats st;
  std::ostringstream index;
  index << "idx\tfile\tsplit\tage\tgender\trace\n";
  const int pseudonym_keys = std::min(o.pseudonym_keys, ds.pseudonym_keys());
  std::string desc, flip, pseudonyms, jpegs, offsets(sizeof(uint64_t), '\0');
  for (size_t k = 0; k < rows.size(); ++k) {
    const size_t i = rows[k];
    const UtkRecord& r = ds.record(i);
    index << k << '\t' << r.file << '\t' << (r.split == Split::kHoldout ? "holdout" : "train") << '\t' << r.age
          << '\t' << r.gender << '\t' << r.race << '\n';
    (r.split == Split::kHoldout ? st.holdout : st.train) += 1;
    desc.append(reinterpret_cast<const char*>(ds.descriptor(i)), sizeof(float) * kUtkDescriptorDim);
    if (ds.has_flip()) flip.append(reinterpret_cast<const char*>(ds.descriptor_flip(i)), sizeof(float) * kUtkDescriptorDim);
    for (int key = 0; key < pseudonym_keys; ++key)
      pseudonyms.append(reinterpret_cast<const char*>(ds.pseudonym(i, key)), sizeof(float) * kUtkDescriptorDim);
    const cv::Mat crop(kUtkCropSize, kUtkCropSize, CV_8UC3, const_cast<uint8_t*>(ds.crop_data(i)));
    std::vector<uchar> jpg;
    if (!cv::imencode(".jpg", crop, jpg, {cv::IMWRITE_JPEG_QUALITY, o.quality})) return InternalError("JPEG encoding failed");
    jpegs.append(jpg.begin(), jpg.end());
    const uint64_t end = jpegs.size();  // little-endian, as the rest of the set
    offsets.append(reinterpret_cast<const char*>(&end), sizeof(end));
  }
  const std::string text = index.str();
  VEIL_RETURN_IF_ERROR(keys::WriteFileAtomic(o.out_dir + "/index.tsv", text, false, 0644));
  VEIL_RETURN_IF_ERROR(keys::WriteFileAtomic(o.out_dir + "/desc.f32", desc, false, 0644));
  if (!flip.empty()) VEIL_RETURN_IF_ERROR(keys::WriteFileAtomic(o.out_dir + "/desc_flip.f32", flip, false, 0644));
  std::string pseudonym_info;
  if (!pseudonyms.empty()) {
    VEIL_ASSIGN_OR_RETURN(pseudonym_info, keys::ReadFile(o.data_dir + "/pseudonyms.txt", 1 << 16));
    VEIL_RETURN_IF_ERROR(keys::WriteFileAtomic(o.out_dir + "/pseudonyms.txt", pseudonym_info, false, 0644));
    VEIL_RETURN_IF_ERROR(keys::WriteFileAtomic(o.out_dir + "/pseudonyms.f32", pseudonyms, false, 0644));
  }
  VEIL_RETURN_IF_ERROR(keys::WriteFileAtomic(o.out_dir + "/crops.jpg.bin", jpegs, false, 0644));
  VEIL_RETURN_IF_ERROR(keys::WriteFileAtomic(o.out_dir + "/crops.offsets", offsets, false, 0644));
  st.bytes = text.size() + desc.size() + flip.size() + pseudonym_info.size() + pseudonyms.size() + jpegs.size() + offsets.size();
  VEIL_RETURN_IF_ERROR(keys::WriteFileAtomic(
      o.out_dir + "/PACKED", std::to_string(rows.size()) + " quality " + std::to_string(o.quality) + " seed " + std::to_string(o.seed) + "\n",
      false, 0644));
  if (stats) *stats = st;
  return Status::Ok();
}

}  // namespace veil::train
