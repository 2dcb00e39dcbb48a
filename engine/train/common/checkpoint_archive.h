// Training checkpoints of veil-train-{flow,gan,reader}: modules and optimizers as named
// sub-archives of one torch archive, written durably (FILE.tmp, fsync, rename, fsync of the
// folder) so that a run killed while it writes keeps its previous checkpoint.
#pragma once

#include <torch/torch.h>

#include <string>

#include "veil/status.h"

namespace veil::train {

// `m` (or `opt`) as the sub-archive `key` of `ar`.
void WriteModule(torch::serialize::OutputArchive& ar, const std::string& key, const torch::nn::Module& m);
void WriteOptimizer(torch::serialize::OutputArchive& ar, const std::string& key, const torch::optim::Optimizer& opt);

// Loads the sub-archive `key` of `ar` into `m` (or `opt`); throws as torch does when it is missing
// or does not fit.
void ReadModule(torch::serialize::InputArchive& ar, const std::string& key, torch::nn::Module& m);
void ReadOptimizer(torch::serialize::InputArchive& ar, const std::string& key, torch::optim::Optimizer& opt);

// Writes `ar` to `path` through `path`.tmp: IoError naming `what` on failure.
Status SaveArchiveDurably(torch::serialize::OutputArchive& ar, const std::string& path, const std::string& what);

}  // namespace veil::train
