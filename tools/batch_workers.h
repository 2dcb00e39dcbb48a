// How many files `veil anonymize` works on at once (--jobs).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "veil/engine/pipeline.h"
#include "veil/status.h"

namespace veil::cli {

// What a worker may need: its own models and buffers. veil bench (9 demo photos): one pipeline
// with the camera's beside it peaked at 637 MB, a second worker added about 100 MB; larger photos
// need more, hence the margin.
inline constexpr size_t kWorkerBytes = size_t{800} << 20;

// --jobs N (1..64) or "auto": half as many workers as the cores this process may run on
// (engine::UsableCores: its affinity and CPU quota), each with 2 LibTorch threads, but 2 workers on
// 2 cores; as many as the memory it can take holds (engine::AvailableMemoryBytes, a container's
// limit included; kWorkerBytes each); at least 1. Measured on 2 cores with 18 demo photos:
// 2 workers anonymize 1.5-1.65x faster than 1 (decoding, encoding and sealing leave the cores idle
// between network layers), 3 were slower than 2; not measured on more cores. InvalidArgument for
// anything else.
StatusOr<size_t> ParseJobs(const std::string& value);

// The workers' pipelines: `first` (already made) and more made from `params`, `workers` in all,
// with LibTorch's threads shared among them (engine::ShareRuntimeThreads). Pipelines are not
// thread safe: one per worker thread.
StatusOr<std::vector<std::unique_ptr<engine::Pipeline>>> MakeWorkerPipelines(std::unique_ptr<engine::Pipeline> first,
                                                                             const engine::PipelineParams& params,
                                                                             size_t workers);

}  // namespace veil::cli
