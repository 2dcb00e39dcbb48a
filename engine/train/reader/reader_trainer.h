// Training of the pseudonym reader P (issue 4, keyed restore without a payload), driven by
// `veil-train-reader`. No LibTorch in this header.
//
// Keyed restore reads the pseudonym back from the anonymized face and runs the flow backwards. The
// frozen dlib recognizer reads it back with an error as large as the codes' own spread (measured on
// 96 held-out faces, step 24,573 models: error variance 0.248 against the codes' 0.264, a
// signal-to-noise of 0.5-2.3 per direction), which the inverse flow carries into the restored
// identity. Re-rendered with the true code, the restore lands 0.41-0.43 from the original (100 %
// under 0.6), so the read-back, not the re-rendering, is what limits keyed restore.
//
// P is the dlib ResNet-34 (face-api weights as the start), fine-tuned to read the pseudonym that a
// fixed E, G and flow (a models folder) rendered. Each step, on a batch x with codes z and a fresh
// random key per row:
//   z' = F(z, k); y = quantize(G(E(x), SteerIdentity(z, z', gain)))       the anonymized crop
//   (half the batch with a random per-channel contrast and shift: the pipeline's colour match)
//   loss = |P(y) - z'|^2 + w_inv * |F^-1(Denoise(P(y)), k) - z|^2          read, and what restore needs
// Denoise shrinks weak directions toward the mean, at a ratio meant for the recognizer's error; a
// better reader wants a smaller one (with a perfect read, the generator's 0.3 alone leaves the
// inverse 0.41 from the original), so the reader carries its own (denoise_ratio).
// The held-out evaluation (fixed key, the first N held-out faces) reports the read error, the
// inverse flow's distance to the original and the keyed restore (re-rendered as the pipeline does).
//
// --minutes 0 --resume (or --resume-from FILE) with an export path exports that reader as it is.
// Files in out_dir: reader.pt (full: weights, Adam state, step, denoise ratio, the generator's
// SHA-256; temp file then rename), log.tsv.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "veil/status.h"

namespace veil::train::reader {

struct ReaderTrainOptions {
  std::string data_dir;     // the utkface-v1 folder
  std::string models_dir;   // E, G and the flow the reader is trained for (veil-*-v1.veilmodel)
  std::string out_dir;      // checkpoint and log
  double minutes = 60;      // wall-clock budget of this run
  int batch = 8;
  double lr = 1e-5;
  double w_inv = 1.0;
  // The Denoise ratio of the reader's reads (IdentityFlow::Denoise before the inverse flow), used in
  // the loss and the evaluation and written into the exported file; < 0: the generator's.
  double denoise_ratio = -1;
  bool resume = false;      // continue from out_dir/reader.pt when it exists
  std::string resume_from;  // else start from this reader model file (e.g. models/veil-reader-v1.veilmodel)
  std::string export_path;  // when set: at the end write the reader's model file here (overwrites)
  uint64_t seed = 20261201;
  int threads = 0;          // LibTorch intra-op threads; 0: one per core
  double checkpoint_minutes = 5;
  int eval_every = 200;     // steps
  int holdout_eval = 64;    // held-out faces in the evaluation
  std::function<bool()> stop;  // polled after each step: true ends the run with a checkpoint
};

Status RunReaderTraining(const ReaderTrainOptions& options);

}  // namespace veil::train::reader
