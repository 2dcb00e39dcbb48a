// A program outside the Veil tree, built against the installed package.
#include <cstdio>
#include "veil/engine/pipeline.h"
int main() {
  veil::engine::PipelineParams p;
  p.models_dir = "/nonexistent";
  auto pipeline = veil::engine::Pipeline::Create(p);
  std::printf("%s\n", pipeline.ok() ? "created" : pipeline.status().ToString().c_str());
  // Without models the pipeline must refuse with NotFound (3): linking and the API both work.
  return !pipeline.ok() && pipeline.status().code() == veil::StatusCode::kNotFound ? 0 : 1;
}
