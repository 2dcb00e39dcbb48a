// veil-train-pack: a compact subset of the prepared UTKFace set, for training on a machine the whole
// set cannot travel to (a GPU machine: tools/train_gpu.sh). Layout: engine/train/data/utk_pack.h.
//
//   veil-train-pack [--data $VEIL_TRAIN_DIR/utkface-v1] --out DIR [--train 6000] [--holdout 100]
//                   [--quality 92] [--seed 1] [--pseudonym-keys 2]
//
// Never write a pack into the repository's tracked files: UTKFace's images must not be redistributed.
#include <cstdio>
#include <string>

#include "cli.h"
#include "data/utk_dataset.h"
#include "data/utk_pack.h"

int main(int argc, char** argv) {
  using namespace veil;
  cli::Args args(argc - 1, argv + 1, {"--help"});
  if (!args.parse_status().ok()) return cli::Fail(args.parse_status());
  if (args.Flag("--help")) {
    std::puts("usage: veil-train-pack [--data DIR] --out DIR [--train N] [--holdout N] [--quality Q] [--seed S]\n"
              "                       [--pseudonym-keys K] (0-8, default 2: keys of the set's pseudonym table\n"
              "                       packed, 512 bytes a face each, for veil-train-gan --flow-swaps)");
    return 0;
  }
  train::PackOptions o;
  o.data_dir = args.GetOr("--data", train::DefaultUtkDir());
  o.out_dir = args.GetOr("--out", "");
  args.Read("--train", &o.train, 1, 1'000'000);
  args.Read("--holdout", &o.holdout, 2, 1'000'000);
  args.Read("--quality", &o.quality, 50, 100);
  args.Read("--seed", &o.seed, 0, 1LL << 62);
  args.Read("--pseudonym-keys", &o.pseudonym_keys, 0, 8);
  if (Status st = args.Finish(); !st.ok()) return cli::Fail(st);
  if (o.out_dir.empty()) return cli::Fail(InvalidArgumentError("--out is required"));
  train::PackStats s;
  if (Status st = train::PackSubset(o, &s); !st.ok()) return cli::Fail(st);
  std::printf("veil-train-pack: %d train + %d held-out faces, %.1f MB, in %s\n", s.train, s.holdout, s.bytes / 1e6,
              o.out_dir.c_str());
  return 0;
}
