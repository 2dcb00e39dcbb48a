// Training checkpoints of veil-train-{flow,gan,reader}: modules and optimizers as named
// sub-archives of one torch archive, written durably (a temporary file, fsync, rename, fsync of
// the folder) so that a run killed while it writes keeps its previous checkpoint.
//
// File: magic "VEILCKPT", format version (uint32 LE, 1), the SHA-256 of the rest, then the torch
// archive. The hash is checked before torch reads the archive: torch's zip reader does not notice
// a changed byte inside a tensor, which would resume training from damaged weights. Checkpoints
// written before the header are read as plain archives.
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

// Writes `ar` to `path` (with the header): IoError naming `what` on failure.
Status SaveArchiveDurably(torch::serialize::OutputArchive& ar, const std::string& path, const std::string& what);

// Reads the checkpoint at `path` into `ar` (tensors on `device`): DataLoss naming `what` when its
// hash does not match or torch cannot read it, Unsupported for a newer format version.
Status LoadArchive(const std::string& path, const torch::Device& device, torch::serialize::InputArchive& ar,
                   const std::string& what);

}  // namespace veil::train
