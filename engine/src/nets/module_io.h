// Moves the parameters and buffers of a torch::nn::Module in and out of Veil model files.
#pragma once

#include <torch/torch.h>

#include "veil/engine/model_file.h"
#include "veil/status.h"

namespace veil::engine {

// Every parameter and buffer of `module` by its registered name, as float32 values.
std::vector<ModelTensor> ModelTensors(const torch::nn::Module& module, bool fp16);

// Copies the tensors into `module`: every parameter and buffer must be present with its exact shape
// (InvalidArgument naming the first mismatch), and no extra tensors may be left over.
Status LoadModuleTensors(torch::nn::Module& module, const ModelFileContents& model);

}  // namespace veil::engine
