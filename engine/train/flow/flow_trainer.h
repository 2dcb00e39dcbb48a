// Training and evaluation of the keyed identity flow (the work behind `veil-train-flow`).
//
// Trains on the TRAIN split's descriptors only, with fresh random 32-byte subkeys every batch
// (expanded exactly as inference expands them). Losses are hinges on Euclidean descriptor distance:
//   (b) |F(z,k) - z| > margin_far              far from the input
//   (c) |F(z,k1) - F(z,k2)| > margin_far       different keys, different identities
//   (d) |F(z1,k) - F(z2,k)| > margin_apart     for pairs the recognizer calls different (> 0.6)
//   (e) |F(z,k) - F(z',k)| < margin_near       z' = the mirrored chip's descriptor (same face)
//   (a) plausibility: RBF-kernel MMD between F(z,k) and a fresh batch of real codes, plus a hinge
//       on the distance to the nearest real code (a bank of train codes) at the real-to-real level.
//   (l) optional (w_lin > 0): |L(F(z,k) + e) - z| > margin_lin, L the linear guess an informed
//       attacker fits on known pairs under the same key (veil eval's attacker), e a read-back error;
//       with it |F^-1(F(z,k) + e, k) - z| < inv_gain |e|: restore with the key stays robust.
// Checkpoints (model + optimizer + step) go to work_dir/ckpt.pt every checkpoint_seconds; losses
// and metrics to work_dir/log.tsv. Evaluation uses the hold-out split only.
#pragma once

#include <functional>
#include <string>

#include "veil/status.h"

namespace veil::train {

struct FlowTrainOptions {
  std::string data_dir;           // the prepared utkface-v1 folder
  std::string work_dir;           // checkpoints and log (outside the repository)
  int steps = 3000;               // total steps (resuming continues up to this)
  int batch = 256;
  int keys_per_batch = 32;        // the batch is split into groups sharing one key
  double lr = 1e-3;
  int checkpoint_seconds = 180;
  int log_every = 50;
  int eval_every = 500;           // hold-out evaluation during training (0: only at the end)
  int threads = 0;  // LibTorch intra-op threads; 0: one per core
  int near_train = 4000;          // train rows given a same-face (mirrored crop) code for the locality loss
  uint64_t seed = 1;
  // Architecture (FlowOptions).
  int couplings = 8;
  int hidden = 256;
  double whiten = 1.0;
  int signal_dims = 0;            // FlowOptions::signal_dims: the principal directions the flow moves (0: all)
  double max_log_scale = 1.0;
  // Margins and weights.
  double margin_far = 0.8;
  double margin_apart = 0.75;
  double margin_near = 0.4;
  double w_far = 1, w_keys = 1, w_apart = 1, w_near = 2, w_mmd = 20, w_nn = 2;
  // (l) the informed attacker: lin_batch codes under one key, read back lin_read_error off; a ridge
  // guess of the original fitted on half must stay margin_lin from the truth on the other half.
  // With the key, the same read error must invert to less than inv_gain times itself.
  double w_lin = 0, margin_lin = 0.6, lin_read_error = 0.4, inv_gain = 1.1;
  int lin_batch = 512;
  std::string export_path;        // when set, the final model is written there (SaveModelFile)
  std::string model_id = "veil-flow-v1";
  std::function<void(const std::string&)> log;
};

Status TrainFlow(const FlowTrainOptions& options);

// Evaluates a model file through the inference API (IdentityFlow) on the hold-out split and logs
// the (a)-(e), (r) and (l) distributions. Deterministic: the evaluation keys are BLAKE2b("veil-flow-eval-key-" i).
// The same-face codes (mirrored and mirrored+JPEG hold-out crops) are cached in $VEIL_TRAIN_DIR/flow/cache.
Status EvaluateFlowFile(const std::string& model_path, const std::string& data_dir,
                        const std::function<void(const std::string&)>& log);

}  // namespace veil::train
