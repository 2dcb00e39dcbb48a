// veil-train-gan: trains the attribute encoder E and the generator G (issue 4) on the prepared
// UTKFace set (veil-train-prep), on CUDA when available, else the CPU.
//
//   veil-train-gan --data $VEIL_TRAIN_DIR/utkface-v1 --out $VEIL_TRAIN_DIR/gan [--minutes M] [--batch B]
//                  [--resume] [--resume-from models/train/gan-checkpoint.pt] [--export models]
//
// --resume continues from OUT/ckpt.pt (full state, optimizers included) when it exists;
// --resume-from starts from a given full or compact checkpoint. --minutes 0 with --export only
// evaluates and exports. SIGINT/SIGTERM stop after the current step with a checkpoint.
// Losses, files and the log: engine/train/gan/gan_trainer.h.
#include <cstdio>
#include <string>

#include "cli.h"
#include "stop_signal.h"
#include "data/utk_dataset.h"
#include "gan/gan_trainer.h"

int main(int argc, char** argv) {
  using namespace veil;
  cli::KeepFreedHeapForReuse();
  cli::Args args(argc - 1, argv + 1, {"--resume", "--no-id-augment", "--bf16", "--help"});
  if (!args.parse_status().ok()) return cli::Fail(args.parse_status());
  if (args.Flag("--help")) {
    std::puts(
        "usage: veil-train-gan --data DIR --out DIR [--minutes M] [--batch B] [--resume]\n"
        "                      [--resume-from FILE] [--export DIR] [--seed S] [--checkpoint-minutes M]\n"
        "                      [--eval-minutes M] [--holdout-eval N] [--w-rec W] [--w-id W] [--w-attr W]\n"
        "                      [--w-cyc W] [--w-adv W] [--lr-g LR] [--lr-d LR] [--adv-start STEP]\n"
        "                      [--cyc-every K] [--threads N] [--w-away W] [--away-margin D]\n"
        "                      [--no-id-augment] [--attr-pool 1|2|4] [--w-chroma W] [--w-perc W]\n"
        "                      [--ema-kimg K] [--bf16] [--g-ch64 N] [--g-ch128 N] (G's widths; a\n"
        "                      compact checkpoint is widened to them)\n"
        "                      [--flow-swaps F] (share 0..1 of swaps aimed at the face's own pseudonym:\n"
        "                      needs DATA/pseudonyms.f32, from veil-train-flow --pseudonyms FLOW_MODEL)\n"
        "                      [--identity-gain G] [--readback-noise-ratio R] (both written into the\n"
        "                      exported generator; calibrate them with veil eval)");
    return 0;
  }
  train::gan::GanTrainOptions o;
  o.data_dir = args.GetOr("--data", train::DefaultUtkDir());
  o.out_dir = args.GetOr("--out", train::DefaultTrainDir() + "/gan");
  o.resume = args.Flag("--resume");
  o.id_augment = !args.Flag("--no-id-augment");
  o.bf16 = args.Flag("--bf16");
  o.resume_from = args.GetOr("--resume-from", "");
  o.export_dir = args.GetOr("--export", "");
  args.Read("--batch", &o.batch, 2, 4096);
  args.Read("--seed", &o.seed, 0, 1LL << 62);
  args.Read("--holdout-eval", &o.holdout_eval, 2, 1000);
  args.Read("--adv-start", &o.adv_start_step, 0, 1LL << 40);
  args.Read("--cyc-every", &o.cyc_every, 0, 1000);
  args.Read("--threads", &o.threads, 0, 1024);
  args.Read("--attr-pool", &o.attr_pool, 0, 4);
  args.Read("--g-ch64", &o.g_ch64, 0, 1024);
  args.Read("--g-ch128", &o.g_ch128, 0, 1024);
  args.Read("--flow-swaps", &o.flow_swaps, 0, 1);
  struct Real {
    const char* name;
    double* target;
  };
  const Real reals[] = {{"minutes", &o.minutes},       {"checkpoint-minutes", &o.checkpoint_minutes},
                        {"eval-minutes", &o.eval_minutes}, {"w-rec", &o.w_rec},
                        {"w-id", &o.w_id},             {"w-attr", &o.w_attr},
                        {"w-cyc", &o.w_cyc},           {"w-adv", &o.w_adv},
                        {"lr-g", &o.lr_g},             {"lr-d", &o.lr_d},
                        {"w-away", &o.w_away},         {"away-margin", &o.away_margin},
                        {"w-chroma", &o.w_chroma},     {"ema-kimg", &o.ema_kimg},
                        {"w-perc", &o.w_perc},
                        {"identity-gain", &o.identity_gain}, {"readback-noise-ratio", &o.readback_noise_ratio}};
  for (const Real& r : reals) args.Read(std::string("--") + r.name, r.target, 0, 1e9);
  if (Status st = args.Finish(); !st.ok()) return cli::Fail(st);
  // SIGINT / SIGTERM (a session ending): the run stops after its current step and checkpoints.
  cli::StopOnSignal stop_on_signal;
  o.stop = cli::StopRequested;
  if (Status st = train::gan::RunGanTraining(o); !st.ok()) return cli::Fail(st);
  return 0;
}
