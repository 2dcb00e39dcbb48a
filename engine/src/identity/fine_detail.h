// How much fine detail a face crop holds, for measuring blur in renders (training-time hold-out
// metrics): the mean squared Laplacian (3x3, four neighbours, mirrored border without repeating the
// edge) of the grey levels over the central 5/8 of the crop, the grey computed as OpenCV's 8-bit
// BGR -> grey (fixed point, rounded). A blurred render has less of it than the photo it stands for.
// The number `veil eval` reports as detail_vs_original (tools/eval_detail.h, on OpenCV;
// tests/cli/eval_detail_test.cc checks that the two agree).
#pragma once

#include <torch/torch.h>

namespace veil::engine::identity {

// N x H x W x 3 uint8 BGR (any device) -> N float64, one energy per image.
torch::Tensor FineDetailEnergy(const torch::Tensor& nhwc_u8);

}  // namespace veil::engine::identity
