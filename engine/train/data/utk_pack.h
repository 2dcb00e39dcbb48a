// A compact subset of the prepared set (data/utk_dataset.h), for a machine that the whole set cannot
// travel to: a GPU machine takes at most 64 MiB with the working tree, the set is 1.2 GB. The crops
// travel as JPEG files; tools/train_unpack.py (Python with OpenCV, as on the GPU image) turns the pack
// back into a set that UtkDataset opens. Layout of a pack:
//   index.tsv        the subset's rows, idx renumbered 0..K-1 (file names, split and labels as in
//                    the set, in the set's order)
//   desc.f32         their descriptors (desc_flip.f32 too when the set has it)
//   pseudonyms.f32   when the set has a pseudonym table: its rows for the first pseudonym_keys keys
//                    (pseudonyms.txt, the flow model it came from, beside it)
//   crops.jpg.bin    the crops (128x128 BGR) as JPEGs of the given quality, one after the other
//   crops.offsets    K + 1 uint64 LE: crop k is bytes [offsets[k], offsets[k + 1]) of crops.jpg.bin
//                    (one file, not K: the 64 MiB counts file-system blocks)
//   PACKED           written last: "K quality Q seed S"
// Train faces come only from UtkDataset::TrainIndices() (a held-out face's photo never travels as a
// train face), drawn by a seeded shuffle; held-out faces are spread over the hold-out (for the
// trainer's running metrics; the full hold-out stays for veil eval). Never write a pack into the
// repository's tracked files: UTKFace's images must not be redistributed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "veil/status.h"

namespace veil::train {

struct PackOptions {
  std::string data_dir;   // a prepared set (utkface-v1)
  std::string out_dir;    // the pack folder; must not exist yet or be empty
  int train = 6000;       // train faces (at most all of TrainIndices())
  int holdout = 100;      // held-out faces
  int quality = 92;       // JPEG quality of the crops (4:2:0 chroma, OpenCV's default)
  uint64_t seed = 1;
  int pseudonym_keys = 2;  // keys of the set's pseudonym table packed (each 512 bytes a face); 0: none
};

struct PackStats {
  int train = 0;
  int holdout = 0;
  size_t bytes = 0;  // all files written
};

Status PackSubset(const PackOptions& options, PackStats* stats);

}  // namespace veil::train
