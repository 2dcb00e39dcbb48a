// GAN training of the attribute encoder E and the generator G (with a discriminator D), driven by
// `veil-train-gan`. No LibTorch in this header.
//
// Each step, on a batch x with descriptors z_x (precomputed, desc.f32) and swapped identities z_y
// (the batch rolled by one; with flow_swaps > 0 that share of the z_y are instead the face's own
// pseudonym under a training key, pseudonyms.f32, i.e. what anonymization asks G to draw):
//   a = E(x); rec = G(a, z_x); swp = G(a, z_y)
//   D:  softplus(-D(x)) + softplus(D(rec|swp)) [+ lazy R1 on reals every r1_every steps]
//   G:  w_rec * L1(rec, x)                                    reconstruction
//     + w_id * [(1 - cosc(R~(swp), z_y)) + (1 - cosc(R~(rec), z_x)) (half the batch)]  identity, frozen R
//     + w_away * mean(relu(away_margin - |R~(swp) - z_x|))      the swap must leave the original
//     + w_attr * mean((E(swp) - a)^2)                          attribute consistency
//     + w_cyc * L1(G(E(swp), z_x), x)  (on half the batch)     cycle: what restore relies on
//     + w_adv * softplus(-D(rec|swp))                           realism
//     + w_perc * P(rec, x)                                      perceptual: fine texture, not only L1's mean
// P: an LPIPS-style distance without learned weights on the frozen R's first four feature maps
// (after its first convolution and its 32-, 64- and 128-channel stages; each map's channel vectors
// scaled to unit length, squared differences summed over channels, averaged over positions and maps).
// R = the dlib ResNet-34 descriptor (engine/src/nets/face_recognition_net), frozen, on the output
// resized 128 -> 150 (the 128 crop is a scaled 150 recognizer chip). R~: the same on a randomly
// rescaled (+-8 %), shifted (+-3 %), low-passed (a 56-100 px copy) and, half the time, grey output
// when id_augment: without it G learns colour fringes around eyes and mouth that move the dlib
// descriptor but not the face (seen at once in the previews), i.e. it fools one recognizer only. cosc: cosine of the
// codes centred on the train codes' mean (raw dlib codes all lie in a narrow cone: raw cosine
// separates 'same' from 'different' by only ~0.3, centred by ~0.8).
//
// Files in out_dir: ckpt.pt (full: E, G, D, the averaged E and G, both Adam states, step; written to
// a temp file then renamed, every checkpoint_minutes), gan-checkpoint.pt (compact: fp16 weights +
// step; with the average on, its E and G are the averaged weights, which a compact resume trains
// on from), log.tsv, preview.png (rows: original | reconstruction | swap | cycle, held-out images;
// preview.ppm in the trainer-only build).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "veil/status.h"

namespace veil::train::gan {

struct GanTrainOptions {
  std::string data_dir;        // the utkface-v1 folder
  std::string out_dir;         // checkpoints, log, preview
  double minutes = 60;         // wall-clock training budget of this run
  int batch = 8;
  int attr_pool = 0;           // E's bottleneck (AttributeEncoderOptions::pool): 1, 2 or 4; 0: the
                               // checkpoint's (1 for a new run). Parameter-free: a run may change it.
  // G's widths at 64x64 and 128x128 (GeneratorOptions ch64, ch128); 0: the checkpoint's (48 and 24
  // for a new run). Wider than a compact checkpoint's: its G is widened (WidenGenerator: the same
  // faces, new channels starting from zero weights); a full checkpoint or a narrower G is refused.
  int g_ch64 = 0, g_ch128 = 0;
  bool resume = false;         // continue from out_dir/ckpt.pt when it exists
  std::string resume_from;     // a full ckpt.pt or a compact gan-checkpoint.pt to start from
  std::string export_dir;      // when set: at the end write the model files + compact checkpoint here
  double identity_gain = 1;    // written into the exported generator (calibrate it with veil eval)
  double readback_noise_ratio = 0;  // likewise (IdentityFlow::Denoise before keyed restore)
  uint64_t seed = 20261123;
  bool bf16 = false;           // CPU only: bfloat16 autocast for the forward passes (CpuBf16Autocast)
  int threads = 0;             // LibTorch intra-op threads; 0: one per core (1 avoids stalls on a busy machine)
  double checkpoint_minutes = 5;
  double eval_minutes = 5;     // holdout metrics + preview
  int log_every = 10;
  int holdout_eval = 96;       // held-out images used for the metrics
  // Loss weights and optimizer.
  double w_rec = 10, w_id = 5, w_attr = 1, w_cyc = 5, w_adv = 0.3;
  double w_away = 0;           // hinge pushing swaps away from the original identity
  double w_chroma = 0;         // per-pixel chroma L1 of swaps to the input (keeps skin tone, no fringes)
  double w_perc = 0;           // perceptual distance of reconstructions to the input (P above)
  double away_margin = 0.75;   // descriptor distance the hinge asks for (0.6 is the 'same person' line)
  double flow_swaps = 0;       // share of swaps aimed at the face's own pseudonym (needs pseudonyms.f32)
  bool id_augment = true;      // random rescale + shift before R in the identity losses
  int adv_start_step = 0;      // D and the adversarial term start here (reconstruction first)
  int cyc_every = 1;           // the cycle term every k steps (it costs a third E + G pass)
  double r1_gamma = 1.0;
  int r1_every = 16;
  double lr_g = 2e-3, lr_d = 2e-3;
  int warmup_steps = 50;       // linear learning-rate warm-up (also after a compact resume)
  // Exponential moving average of E's and G's weights (StyleGAN's G_ema): the half-life in
  // thousands of images, capped at 5 % of the images seen since step 0 (short while a fresh run
  // changes fast). The averaged weights are what the metrics, the preview and the export use; 0: off.
  double ema_kimg = 10;
  // Polled after each step (e.g. a flag set on SIGTERM): true ends the run as the time budget does,
  // with a final evaluation and checkpoint.
  std::function<bool()> stop;
};

// Trains until the time budget is spent (or forever with minutes <= 0 never: 0 means export only).
Status RunGanTraining(const GanTrainOptions& options);

}  // namespace veil::train::gan
