#include "nets/module_io.h"

#include <set>

namespace veil::engine {
namespace {

template <typename Fn>
void ForEachNamed(const torch::nn::Module& module, Fn fn) {
  for (const auto& p : module.named_parameters(/*recurse=*/true)) fn(p.key(), p.value());
  for (const auto& b : module.named_buffers(/*recurse=*/true)) fn(b.key(), b.value());
}

}  // namespace

std::vector<ModelTensor> ModelTensors(const torch::nn::Module& module, bool fp16) {
  std::vector<ModelTensor> out;
  ForEachNamed(module, [&](const std::string& name, const torch::Tensor& t) {
    torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    ModelTensor mt;
    mt.name = name;
    mt.shape.assign(c.sizes().begin(), c.sizes().end());
    mt.values.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
    mt.store_fp16 = fp16;
    out.push_back(std::move(mt));
  });
  return out;
}

Status LoadModuleTensors(torch::nn::Module& module, const ModelFileContents& model) {
  std::map<std::string, const ModelTensor*> by_name;
  for (const auto& t : model.tensors) by_name[t.name] = &t;
  std::set<std::string> used;
  Status status;
  torch::NoGradGuard no_grad;
  ForEachNamed(module, [&](const std::string& name, const torch::Tensor& target) {
    if (!status.ok()) return;
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      status = InvalidArgumentError("model file lacks tensor " + name);
      return;
    }
    const ModelTensor& src = *it->second;
    if (std::vector<int64_t>(target.sizes().begin(), target.sizes().end()) != src.shape) {
      status = InvalidArgumentError("model tensor " + name + " has the wrong shape for this architecture");
      return;
    }
    torch::Tensor value = torch::from_blob(const_cast<float*>(src.values.data()), target.sizes(), torch::kFloat32);
    const_cast<torch::Tensor&>(target).copy_(value.to(target.dtype()));
    used.insert(name);
  });
  if (!status.ok()) return status;
  for (const auto& t : model.tensors) {
    if (!used.count(t.name)) return InvalidArgumentError("model file has an unexpected tensor " + t.name);
  }
  return Status::Ok();
}

}  // namespace veil::engine
