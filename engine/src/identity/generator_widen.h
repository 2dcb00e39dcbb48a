// Function-preserving widening of the generator G (Net2Net-style): a narrow G's weights copied into
// a wider one so that the wide G renders the same faces, and training goes on from there instead of
// from scratch. Used by veil-train-gan (--g-ch64, --g-ch128 on a compact checkpoint).
#pragma once

#include "identity/generator.h"
#include "veil/status.h"

namespace veil::engine::identity {

// Copies `narrow` into `wide`. `wide` must have the same options and tensors as `narrow` except
// channel widths (ch16, ch32, ch64, ch128) at least as large; InvalidArgument otherwise (the
// tensor named), and `wide` is left as it was.
//
// Each tensor's narrow values go to its leading block. A weight's entries from new input channels
// into old output channels are zero, so every old channel computes what it did; new output channels
// keep `wide`'s fresh initialization and reach the output only through those zero weights, which
// training then grows (their gradients are not zero). A layer without demodulation (the toRGB convs,
// equalized linear and conv layers) scales its old weights by sqrt(new fan-in / old fan-in), which
// cancels the change of the equalized learning rate's 1/sqrt(fan-in); a demodulated layer needs no
// rescaling (demodulation removes any common scale of its weights).
Status WidenGenerator(GeneratorImpl& narrow, GeneratorImpl& wide);

}  // namespace veil::engine::identity
