// Preparing UTKFace for training (the work behind `veil-train-prep`): landmarks with Veil's 68-point
// net, alignment with Veil's Aligner (so training crops match inference crops), the recognizer's
// descriptors, and a deterministic hold-out split. Output layout: data/utk_dataset.h.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "veil/status.h"

namespace veil::train {

enum class LandmarkSource {
  // Measured on 200 chips spread over UTKFace (veil-train-prep --compare 200): the tiny detector
  // (input 224) found a face in only 111; where it did, its landmarks and the whole chip's differ by
  // 1.6 % of the inter-ocular distance on average, the template fit errors are the same (median
  // 0.021 of the crop side) and the descriptors of the two alignments differ by 0.048 on average
  // (max 0.13). The whole chip is therefore the default.
  kChip,    // the 68-point net on the whole 200x200 chip (UTKFace chips are tight, aligned faces)
  kDetect,  // the tiny detector's box, then the 68-point net on it; images without a face fail
  kAuto,    // the detector's box when it finds a face, else the whole chip
};

struct PrepOptions {
  std::string images_dir;      // ../shared/data/utkface/images
  std::string out_dir;         // the utkface-v1 folder to write
  std::string failures_path;   // TSV of refused images (file, reason); empty: none written
  std::string models_dir;      // face-api models; empty: the engine's default
  LandmarkSource source = LandmarkSource::kChip;  // measured: see CompareLandmarkSources
  int tiny_input_size = 224;   // tiny detector input (a multiple of 32; the chips are 200x200)
  int limit = 0;               // only the first `limit` files (by name); 0: all
  int holdout = 1000;          // images held out: the smallest BLAKE2b-256(file name)
  int batch = 32;              // recognizer batch
  bool flip = true;            // also write desc_flip.f32 (descriptor of the mirrored 150 chip)
  float max_fit_error = 0.06f; // refuse when the RMS distance of the aligned landmarks 17-67 to the
                               // template exceeds this fraction of the crop side
  int log_every = 1000;         // progress line every this many files
  bool overwrite = false;      // replace an existing complete set
  std::function<void(const std::string&)> log;  // progress lines
};

struct PrepStats {
  int files = 0;
  int usable = 0;
  int holdout = 0;
  int from_detector = 0;
  int from_chip = 0;
  std::vector<std::pair<std::string, std::string>> failures;  // file, reason
  double seconds = 0;
};

Status RunPrep(const PrepOptions& options, PrepStats* stats);

// Measures the landmark sources on the first `count` images: detection rate, template fit error of
// each source and the descriptor distance between the two alignments. Writes a report via log.
Status CompareLandmarkSources(const PrepOptions& options, int count);

}  // namespace veil::train
