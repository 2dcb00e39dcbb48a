// E and G as Veil model files, and crops as the pixels E takes: the renderer's side of the
// generator (model_file, OpenCV). The trainer-only build (VEIL_TRAINER_ONLY) leaves this out: it
// writes checkpoints, and a full build exports them (veil-train-gan --minutes 0 --export).
#pragma once

#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "identity/attribute_encoder.h"
#include "identity/generator.h"
#include "veil/engine/face_renderer.h"
#include "veil/status.h"

namespace veil::engine::identity {

// Model-file kinds and the files' option maps (checked on load).
inline constexpr const char* kEncoderKind = "attribute-encoder";
inline constexpr const char* kGeneratorKind = "generator";
// The generator file's info key naming the SHA-256 (hex) of the encoder file exported with it
// (files from before it have none and load with any encoder).
inline constexpr const char* kEncoderShaInfo = "encoder_sha256";

// Writes E and G as Veil model files (the trainer's export; FaceRenderer::Save uses it too).
Status SaveRendererModels(AttributeEncoderImpl& encoder, GeneratorImpl& generator, const std::string& encoder_path,
                          const std::string& generator_path, const FaceRendererSaveInfo& save_info);

// crops[first, first + count) (each side x side 8-bit BGR: the caller checks) as the N x side x
// side x 3 uint8 tensor PixelsToUnit takes.
torch::Tensor CropsToPixels(const std::vector<cv::Mat>& crops, size_t first, size_t count, int side);

}  // namespace veil::engine::identity
