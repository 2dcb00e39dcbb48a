#include "batch_workers.h"

#include <algorithm>

#include "veil/engine/runtime.h"

namespace veil::cli {

StatusOr<size_t> ParseJobs(const std::string& value) {
  if (value == "auto") {
    const size_t cores = static_cast<size_t>(engine::UsableCores());
    size_t n = std::max(std::min<size_t>(cores, 2), cores / 2);
    if (const auto avail = engine::AvailableMemoryBytes()) n = std::min(n, std::max<size_t>(1, *avail / kWorkerBytes));
    return std::clamp<size_t>(n, 1, 64);
  }
  auto n = ParseInteger(value, "option --jobs", 1, 64);
  if (!n.ok()) return InvalidArgumentError("option --jobs must be auto or a whole number in [1, 64]");
  return static_cast<size_t>(*n);
}

StatusOr<std::vector<std::unique_ptr<engine::Pipeline>>> MakeWorkerPipelines(std::unique_ptr<engine::Pipeline> first,
                                                                             const engine::PipelineParams& params,
                                                                             size_t workers) {
  std::vector<std::unique_ptr<engine::Pipeline>> pipelines;
  pipelines.push_back(std::move(first));
  while (pipelines.size() < workers) {
    VEIL_ASSIGN_OR_RETURN(auto more, engine::Pipeline::Create(params));
    pipelines.push_back(std::move(more));
  }
  engine::ShareRuntimeThreads(static_cast<int>(pipelines.size()));
  return pipelines;
}

}  // namespace veil::cli
