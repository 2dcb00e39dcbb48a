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
  cli::KeepFreedHeapForReuse();
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
  args.Read("--batch", &o.batch, 2, 4096);
  args.Read("--seed", &o.seed, 0, 1LL << 62);
  args.Read("--threads", &o.threads, 0, 1024);
  args.Read("--eval-every", &o.eval_every, 0, 1LL << 30);
  args.Read("--holdout-eval", &o.holdout_eval, 1, 1000);
  args.Read("--minutes", &o.minutes, 0, 1e9);
  args.Read("--lr", &o.lr, 0, 1);
  args.Read("--w-inv", &o.w_inv, 0, 1e6);
  args.Read("--checkpoint-minutes", &o.checkpoint_minutes, 0, 1e9);
  args.Read("--denoise-ratio", &o.denoise_ratio, -1, 10);
  if (Status st = args.Finish(); !st.ok()) return cli::Fail(st);
  cli::StopOnSignal stop_on_signal;
  o.stop = cli::StopRequested;
  if (Status st = train::reader::RunReaderTraining(o); !st.ok()) return cli::Fail(st);
  return 0;
}
