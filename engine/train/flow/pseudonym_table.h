// The pseudonym table of the prepared UTKFace set (pseudonyms.f32, layout in data/utk_dataset.h):
// every face's code through a flow model file under kUtkPseudonymKeys fixed training keys, so that
// the generator trains on the identities it is asked to draw at inference (veil-train-gan
// --flow-swaps), not only on other real faces' codes. `veil-train-flow --pseudonyms FILE`.
#pragma once

#include <functional>
#include <string>

#include "veil/status.h"

namespace veil::train {

// Writes DATA_DIR/pseudonyms.f32 (temporary file, fsync, rename; an older table is replaced), then
// DATA_DIR/pseudonyms.txt (the model's id and SHA-256, the key derivation), which is removed before
// the table is written, so that it names the table's model or is absent. The keys are
// BLAKE2b("veil-gan-pseudonym-key-v1:" k), k = 0..7: stand-ins that protect nothing. Deterministic:
// the same codes and model file give the same bytes.
Status WritePseudonymTable(const std::string& model_path, const std::string& data_dir,
                           const std::function<void(const std::string&)>& log);

}  // namespace veil::train
