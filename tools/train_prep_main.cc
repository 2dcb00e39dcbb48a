// veil-train-prep: prepares UTKFace for training the identity models (issue 4).
//
//   veil-train-prep [--images ../shared/data/utkface/images] [--out $VEIL_TRAIN_DIR/utkface-v1]
//                   [--landmarks chip|auto|detect] [--limit N] [--holdout 1000] [--batch 32]
//                   [--no-flip] [--overwrite] [--models DIR]
//   veil-train-prep --compare 300      # measures the landmark sources on 300 images, writes nothing
//
// For every image: the 68 landmarks (by default on the whole chip; --landmarks auto tries the tiny
// detector's box first), alignment with Veil's
// Aligner at 128 (the training crop) and 150 (the recognizer chip), the 128-D descriptor of the chip
// and of its mirror image. The 1,000 usable images with the smallest BLAKE2b-256(file name) are held
// out. Layout of the output: engine/train/data/utk_dataset.h. Refused images are listed in
// $VEIL_TRAIN_DIR/utkface-v1-failures.tsv. Never write the output into the repository: UTKFace is
// licensed for non-commercial research only and its images must not be redistributed.
#include <cstdio>
#include <string>

#include "cli.h"
#include "data/utk_dataset.h"
#include "data/utk_prep.h"
#include "veil/engine/runtime.h"

int main(int argc, char** argv) {
  using namespace veil;
  cli::Args args(argc - 1, argv + 1, {"--no-flip", "--overwrite", "--help"});
  if (!args.parse_status().ok()) return cli::Fail(args.parse_status());
  if (args.Flag("--help")) {
    std::puts(
        "usage: veil-train-prep [--images DIR] [--out DIR] [--landmarks chip|auto|detect] [--limit N]\n"
        "                       [--holdout 1000] [--batch 32] [--no-flip] [--overwrite] [--models DIR]\n"
        "       veil-train-prep --compare N");
    return 0;
  }
  train::PrepOptions o;
  o.images_dir = args.GetOr("--images", "../shared/data/utkface/images");
  o.out_dir = args.GetOr("--out", train::DefaultUtkDir());
  o.failures_path = args.GetOr("--failures", train::DefaultTrainDir() + "/utkface-v1-failures.tsv");
  o.models_dir = args.GetOr("--models", "");
  const std::string src = args.GetOr("--landmarks", "chip");
  if (src == "auto") {
    o.source = train::LandmarkSource::kAuto;
  } else if (src == "chip") {
    o.source = train::LandmarkSource::kChip;
  } else if (src == "detect") {
    o.source = train::LandmarkSource::kDetect;
  } else {
    return cli::Fail(InvalidArgumentError("--landmarks must be auto, chip or detect"));
  }
  auto limit = args.GetInt("--limit", 0, 0, 1'000'000);
  auto holdout = args.GetInt("--holdout", 1000, 0, 1'000'000);
  auto batch = args.GetInt("--batch", 32, 1, 256);
  auto tiny = args.GetInt("--tiny-input", 224, 32, 1024);
  auto log_every = args.GetInt("--log-every", 1000, 1, 1'000'000);
  auto compare = args.GetInt("--compare", 0, 0, 100'000);
  for (const auto* v : {&limit, &holdout, &batch, &tiny, &compare, &log_every})
    if (!v->ok()) return cli::Fail(v->status());
  o.limit = static_cast<int>(*limit);
  o.holdout = static_cast<int>(*holdout);
  o.batch = static_cast<int>(*batch);
  o.tiny_input_size = static_cast<int>(*tiny);
  if (o.tiny_input_size % 32 != 0) return cli::Fail(InvalidArgumentError("--tiny-input must be a multiple of 32"));
  o.log_every = static_cast<int>(*log_every);
  o.flip = !args.Flag("--no-flip");
  o.overwrite = args.Flag("--overwrite");
  o.log = [](const std::string& line) {
    std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
  };
  if (Status st = args.Finish(); !st.ok()) return cli::Fail(st);
  engine::InitRuntimeOnce();

  if (*compare > 0) {
    if (Status st = train::CompareLandmarkSources(o, static_cast<int>(*compare)); !st.ok()) return cli::Fail(st);
    return 0;
  }
  train::PrepStats stats;
  if (Status st = train::RunPrep(o, &stats); !st.ok()) return cli::Fail(st);
  std::printf("files %d, usable %d (landmarks from detector %d, from whole chip %d), refused %zu, holdout %d, "
              "%.0f s\noutput: %s\n",
              stats.files, stats.usable, stats.from_detector, stats.from_chip, stats.failures.size(), stats.holdout,
              stats.seconds, o.out_dir.c_str());
  return 0;
}
