// The pseudonym reader's network pieces shared by inference (pseudonym_reader.cc) and training
// (engine/train/reader): the model file. Its input is
// nets::RecognizerInputFromBgr of the 128x128 crop.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

#include "nets/face_recognition_net.h"
#include "veil/status.h"

namespace veil::engine::identity {

// Writes the fine-tuned network as a Veil model file (kind kPseudonymReaderKind, fp16 tensors) for
// the generator file with SHA-256 `generator_sha256`, with the Denoise ratio of its reads.
// Refuses to overwrite unless `overwrite`.
Status SavePseudonymReader(const nets::FaceRecognitionNetImpl& net, const std::string& path,
                           const std::string& generator_sha256, double denoise_ratio,
                           const std::map<std::string, std::string>& info, bool overwrite);

}  // namespace veil::engine::identity
