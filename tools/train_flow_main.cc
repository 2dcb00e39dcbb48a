// veil-train-flow: trains the keyed identity flow on the prepared UTKFace descriptors (issue 4),
// or evaluates a flow model file on the hold-out split.
//
//   veil-train-flow [--data $VEIL_TRAIN_DIR/utkface-v1] [--work $VEIL_TRAIN_DIR/flow] [--steps 3000]
//                   [--batch 256] [--keys 32] [--lr 1e-3] [--threads N] [--export models/veil-flow-v1.veilmodel]
//                   [--couplings 8] [--hidden 256] [--whiten 1] [--signal-dims 0] [--seed 1] [--eval-every 500]
//                   [--margin-far 0.8] [--margin-near 0.4] [--w-mmd 20] [--w-near 2] [--w-nn 2]
//                   [--w-lin 0] [--margin-lin 0.6] [--lin-read-error 0.4] [--lin-batch 512] [--inv-gain 1.1]
//   veil-train-flow --eval models/veil-flow-v1.veilmodel [--data DIR]
//   veil-train-flow --pseudonyms models/veil-flow-v1.veilmodel [--data DIR]   (DIR/pseudonyms.f32, for
//                   veil-train-gan --flow-swaps: engine/train/flow/pseudonym_table.h)
//
// Training resumes from WORK/ckpt.pt when it exists (written every --checkpoint-seconds, default
// 180); losses and metrics go to WORK/log.tsv and stderr. Keep WORK outside the repository.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli.h"
#include "data/utk_dataset.h"
#include "flow/flow_trainer.h"
#include "flow/pseudonym_table.h"

int main(int argc, char** argv) {
  using namespace veil;
  cli::Args args(argc - 1, argv + 1, {"--help"});
  if (!args.parse_status().ok()) return cli::Fail(args.parse_status());
  if (args.Flag("--help")) {
    std::puts(
        "usage: veil-train-flow [--data DIR] [--work DIR] [--steps N] [--batch 256] [--keys 32] [--lr 1e-3]\n"
        "                       [--threads N] (0, the default: one per core)\n"
        "                       [--couplings 8] [--hidden 256] [--whiten 1] [--seed 1]\n"
        "                       [--signal-dims K] (even: the flow moves the codes' top K principal\n"
        "                       directions only; 0 or 128: all, as veil-flow-v1 revisions 1-2)\n"
        "                       [--eval-every 500] [--checkpoint-seconds 180] [--near-train 4000] [--export FILE]\n"
        "                       [--log-every 50] [--margin-far 0.8] [--margin-near 0.4] [--w-mmd 20] [--w-near 2]\n"
        "                       [--w-nn 2]\n"
        "                       [--w-lin 0] [--margin-lin 0.6] [--lin-read-error 0.4] [--lin-batch 512 (320-8192)]\n"
        "                       [--inv-gain 1.1] (--w-lin > 0: an informed attacker's linear guess of the\n"
        "                       original, fitted on half of lin-batch pairs under one key, is kept margin-lin\n"
        "                       away on the other half, while the keyed inverse of the same read error stays\n"
        "                       within inv-gain times it)\n"
        "       veil-train-flow --eval MODEL_FILE [--data DIR]\n"
        "       veil-train-flow --pseudonyms MODEL_FILE [--data DIR] (writes DIR/pseudonyms.f32: every\n"
        "                       face's code through MODEL_FILE under 8 training keys, for veil-train-gan\n"
        "                       --flow-swaps)");
    return 0;
  }
  auto log = [](const std::string& line) {
    std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
  };
  train::FlowTrainOptions o;
  o.data_dir = args.GetOr("--data", train::DefaultUtkDir());
  if (auto eval = args.Get("--eval")) {
    if (Status st = args.Finish(); !st.ok()) return cli::Fail(st);
    if (Status st = train::EvaluateFlowFile(*eval, o.data_dir, log); !st.ok()) return cli::Fail(st);
    return 0;
  }
  if (auto model = args.Get("--pseudonyms")) {
    if (Status st = args.Finish(); !st.ok()) return cli::Fail(st);
    if (Status st = train::WritePseudonymTable(*model, o.data_dir, log); !st.ok()) return cli::Fail(st);
    return 0;
  }
  o.work_dir = args.GetOr("--work", train::DefaultTrainDir() + "/flow");
  o.export_path = args.GetOr("--export", "");
  args.Read("--steps", &o.steps, 1, 10'000'000);
  args.Read("--batch", &o.batch, 8, 65536);
  args.Read("--keys", &o.keys_per_batch, 1, 4096);
  args.Read("--threads", &o.threads, 0, 256);
  args.Read("--couplings", &o.couplings, 1, 64);
  args.Read("--hidden", &o.hidden, 8, 8192);
  args.Read("--seed", &o.seed, 0, 1'000'000'000);
  args.Read("--eval-every", &o.eval_every, 0, 10'000'000);
  args.Read("--log-every", &o.log_every, 1, 10'000'000);
  args.Read("--near-train", &o.near_train, 0, 10'000'000);
  args.Read("--checkpoint-seconds", &o.checkpoint_seconds, 1, 86400);
  args.Read("--signal-dims", &o.signal_dims, 0, 128);
  args.Read("--lin-batch", &o.lin_batch, 320, 8192);
  args.Read("--lr", &o.lr, 1e-7, 1);
  args.Read("--whiten", &o.whiten, 0, 1);
  args.Read("--w-mmd", &o.w_mmd, 0, 1e6);
  args.Read("--w-near", &o.w_near, 0, 1e6);
  args.Read("--w-nn", &o.w_nn, 0, 1e6);
  args.Read("--margin-far", &o.margin_far, 0, 10);
  args.Read("--margin-near", &o.margin_near, 0, 10);
  args.Read("--w-lin", &o.w_lin, 0, 1e6);
  args.Read("--margin-lin", &o.margin_lin, 0, 10);
  args.Read("--lin-read-error", &o.lin_read_error, 0, 10);
  args.Read("--inv-gain", &o.inv_gain, 0.1, 100);
  if (Status st = args.Finish(); !st.ok()) return cli::Fail(st);
  if (o.signal_dims % 2 != 0) return cli::Fail(InvalidArgumentError("option --signal-dims must be even (0: all 128)"));
  o.log = log;
  if (Status st = train::TrainFlow(o); !st.ok()) return cli::Fail(st);
  return 0;
}
