// veil eval's informed attacker: re-identification by someone who knows Veil's models but not the key.
#pragma once

#include <optional>
#include <vector>

#include "veil/engine/recognizer.h"

namespace veil::cli {

// A linear attacker (Kerckhoffs: the models are public, the key is not). It learns, by ridge
// regression on pairs it made itself (train_anonymized[i] read back from the anonymized
// train_original[i]; ridge strength by 5-fold cross-validation, intercept unpenalized), the best
// linear guess of an original descriptor from an anonymized one, then guesses each test face's
// original and picks the nearest of test_original. Returns the fraction of test faces whose nearest
// is their own original (chance: 1 / test faces); nothing with fewer than 10 training pairs or
// mismatched sizes. Anonymization that leaves a trace of the original identity in the rendered face
// (the read-back's share of the original) shows here long before it shows to a plain
// nearest-neighbour search.
std::optional<double> LinearAttackRankOne(const std::vector<engine::Descriptor>& train_anonymized,
                                          const std::vector<engine::Descriptor>& train_original,
                                          const std::vector<engine::Descriptor>& test_anonymized,
                                          const std::vector<engine::Descriptor>& test_original);

}  // namespace veil::cli
