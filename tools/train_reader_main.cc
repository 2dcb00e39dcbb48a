// veil-train-reader: fine-tunes the pseudonym reader for keyed restore (engine/train/reader) against
// a models folder's E, G and flow, on the prepared UTKFace set.
//
//   veil-train-reader --data $VEIL_TRAIN_DIR/utkface-v1 --models models --out $VEIL_TRAIN_DIR/reader
//                     [--minutes M] [--batch B] [--lr LR] [--w-inv W] [--denoise-ratio R] [--resume] [--resume-from FILE]
//                     [--export FILE]
//
// SIGINT/SIGTERM stop after the current step with a checkpoint.
#include <cstdio>
#include <string>

#include "cli.h"
#include "data/utk_dataset.h"
#include "reader/reader_trainer.h"
#include "stop_signal.h"

int main(int argc, char** argv) {
  using namespace veil;
  cli::Args args(argc - 1, argv + 1, {"--resume", "--help"});
  if (!args.parse_status().ok()) return cli::Fail(args.parse_status());
  if (args.Flag("--help")) {
    std::puts(
        "usage: veil-train-reader --data DIR --models DIR --out DIR [--minutes M] [--batch B] [--lr LR]\n"
        "                         [--w-inv W] [--resume] [--seed S] [--threads N] [--checkpoint-minutes M]\n"
        "                         [--eval-every STEPS] [--holdout-eval N] [--resume-from FILE]\n"
        "                         [--export FILE]\n"
        "  --resume continues from OUT/reader.pt (weights and optimizer); else --resume-from starts from\n"
        "  a reader model file (models/veil-reader-v1.veilmodel: fp16 weights, the step count).\n"
        "  --denoise-ratio R: the Denoise ratio of the reader's reads (default: the generator's), in the\n"
        "  loss and the evaluation, and written into the exported file.\n"
        "  --export FILE: at the end write the reader's model file (veil-reader-v1.veilmodel) for the\n"
        "  models folder's generator; --minutes 0 --resume exports the checkpoint as it is.");
    return 0;
  }
  train::reader::ReaderTrainOptions o;
  o.data_dir = args.GetOr("--data", train::DefaultUtkDir());
  o.models_dir = args.GetOr("--models", "models");
  o.out_dir = args.GetOr("--out", train::DefaultTrainDir() + "/reader");
  o.resume = args.Flag("--resume");
  o.export_path = args.GetOr("--export", "");
  o.resume_from = args.GetOr("--resume-from", "");
  auto batch = args.GetInt("--batch", o.batch, 2, 4096);
  auto seed = args.GetInt("--seed", static_cast<long long>(o.seed), 0, 1LL << 62);
  auto threads = args.GetInt("--threads", o.threads, 0, 1024);
  auto eval_every = args.GetInt("--eval-every", o.eval_every, 0, 1LL << 30);
  auto holdout_eval = args.GetInt("--holdout-eval", o.holdout_eval, 1, 1000);
  for (const auto* v : {&batch, &seed, &threads, &eval_every, &holdout_eval})
    if (!v->ok()) return cli::Fail(v->status());
  auto minutes = args.GetNumber("--minutes", o.minutes, 0, 1e9);
  auto lr = args.GetNumber("--lr", o.lr, 0, 1);
  auto w_inv = args.GetNumber("--w-inv", o.w_inv, 0, 1e6);
  auto ckpt = args.GetNumber("--checkpoint-minutes", o.checkpoint_minutes, 0, 1e9);
  auto ratio = args.GetNumber("--denoise-ratio", o.denoise_ratio, -1, 10);
  for (const auto* v : {&minutes, &lr, &w_inv, &ckpt, &ratio})
    if (!v->ok()) return cli::Fail(v->status());
  o.batch = static_cast<int>(*batch);
  o.seed = static_cast<uint64_t>(*seed);
  o.threads = static_cast<int>(*threads);
  o.eval_every = static_cast<int>(*eval_every);
  o.holdout_eval = static_cast<int>(*holdout_eval);
  o.minutes = *minutes;
  o.lr = *lr;
  o.w_inv = *w_inv;
  o.checkpoint_minutes = *ckpt;
  o.denoise_ratio = *ratio;
  if (Status st = args.Finish(); !st.ok()) return cli::Fail(st);
  cli::StopOnSignal stop_on_signal;
  o.stop = cli::StopRequested;
  if (Status st = train::reader::RunReaderTraining(o); !st.ok()) return cli::Fail(st);
  return 0;
}
