// The prepared UTKFace training set (written by `veil-train-prep`, read by the trainers).
//
//   auto ds = veil::train::UtkDataset::Open(veil::train::DefaultUtkDir());
//   if (!ds.ok()) return Fail(ds.status());
//   const uint8_t* crop = ds->crop_data(i); // 128x128x3 BGR, row-major, in the mapped file
//   const float* code = ds->descriptor(i); // 128 floats
//
// Layout of the folder ($VEIL_TRAIN_DIR, default $HOME/.cache/veil/train, then utkface-v1/):
//   index.tsv      header `idx\tfile\tsplit\tage\tgender\trace`, then one line per image, idx 0..N-1
//                  in file-name order; split is train|holdout; a missing label is -1.
//   crops128.u8    N x 128 x 128 x 3 uint8, BGR, row-major: crops aligned with Veil's Aligner
//                  (dlib template, padding 0.25, output 128: a scaled 150 recognizer chip).
//   desc.f32       N x 128 float32 LE: the recognizer's descriptor of the 150 chip aligned from the
//                  original 200x200 image.
//   desc_flip.f32  (optional) the same for the horizontally flipped 150 chip: a same-face pair.
//   landmarks.f32  (optional) N x 68 x 2 float32 LE, landmarks in 128-crop pixel coordinates
//                  (no trainer needs them; a packed subset, veil-train-pack, leaves them out).
//   pseudonyms.f32 (optional) N x K x 128 float32 LE, K in 1..kUtkPseudonymKeys: each face's code
//                  through a flow model file under K fixed training keys (`veil-train-flow
//                  --pseudonyms FILE` writes all 8 and records the model's id and SHA-256 in
//                  pseudonyms.txt; a pack keeps fewer): the identities the generator is asked to
//                  draw at inference (veil-train-gan --flow-swaps).
//   DONE           written last; holds N. A folder without it is incomplete and refused.
// The files are memory-mapped read-only; the dataset is immutable and safe to read from many threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "veil/status.h"

namespace veil::train {

inline constexpr int kUtkCropSize = 128;
inline constexpr int kUtkDescriptorDim = 128;
inline constexpr int kUtkLandmarks = 68;
inline constexpr int kUtkPseudonymKeys = 8;
inline constexpr const char* kUtkSetName = "utkface-v1";

enum class Split { kTrain, kHoldout };

// Two codes closer than this are one photo (UTKFace holds some images twice under two names: 27
// held-out faces have an exact twin among the train faces, 35 one within 0.1). Two photos of one
// person lie 0.3-0.5 apart.
inline constexpr float kSamePhotoDistance = 0.1f;

struct UtkRecord {
  std::string file;
  Split split = Split::kTrain;
  int age = -1;
  int gender = -1;  // 0 male, 1 female
  int race = -1;    // 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others
};

// $VEIL_TRAIN_DIR, else $HOME/.cache/veil/train.
std::string DefaultTrainDir();
// DefaultTrainDir() + "/utkface-v1".
std::string DefaultUtkDir();

class UtkDataset {
 public:
  // NotFound when the folder or a file is missing, FailedPrecondition when DONE is absent (the set
  // is still being written), DataLoss when sizes disagree with N or index.tsv is malformed.
  static StatusOr<UtkDataset> Open(const std::string& dir);

  UtkDataset(UtkDataset&&) noexcept;
  UtkDataset& operator=(UtkDataset&&) noexcept;
  ~UtkDataset();

  size_t size() const { return records_.size(); }
  const UtkRecord& record(size_t i) const { return records_.at(i); }
  Split split(size_t i) const { return records_.at(i).split; }
  // Indices of one split, ascending.
  std::vector<size_t> Indices(Split split) const;
  // What the trainers train on: the train split without the faces that are a held-out face's
  // photo (descriptor within kSamePhotoDistance), so that held-out numbers are never measured on
  // a photo seen in training; *dropped (when given) counts those left out.
  std::vector<size_t> TrainIndices(size_t* dropped = nullptr) const;

  // The 128x128x3 BGR crop (row-major, read-only) in the mapped file.
  const uint8_t* crop_data(size_t i) const;
  // 128 floats.
  const float* descriptor(size_t i) const;
  // 128 floats of the flipped chip; nullptr when desc_flip.f32 is absent.
  const float* descriptor_flip(size_t i) const;
  bool has_flip() const { return flip_ != nullptr; }
  // 68 (x, y) pairs in 128-crop pixels; nullptr when landmarks.f32 is absent.
  const float* landmarks(size_t i) const;
  // Face i's pseudonym under training key `key` (0..pseudonym_keys()-1), 128 floats; nullptr when
  // pseudonyms.f32 is absent or holds fewer keys.
  const float* pseudonym(size_t i, int key) const;
  bool has_pseudonyms() const { return pseudonyms_ != nullptr; }
  int pseudonym_keys() const { return pseudonym_keys_; }
  const std::string& dir() const { return dir_; }

 private:
  struct Mapping;
  UtkDataset() = default;

  std::string dir_;
  std::vector<UtkRecord> records_;
  std::vector<std::unique_ptr<Mapping>> maps_;
  const uint8_t* crops_ = nullptr;
  const float* desc_ = nullptr;
  const float* flip_ = nullptr;
  const float* landmarks_ = nullptr;
  const float* pseudonyms_ = nullptr;
  int pseudonym_keys_ = 0;
};

}  // namespace veil::train
