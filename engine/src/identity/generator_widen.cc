#include "identity/generator_widen.h"

#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace veil::engine::identity {
namespace {

// Whether the module that owns parameter `name` (e.g. "b64.weight") demodulates its weights.
bool Demodulated(GeneratorImpl& g, const std::string& name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  const std::string owner = name.substr(0, dot);
  for (const auto& m : g.named_modules()) {
    if (m.key() != owner) continue;
    const auto* conv = m.value()->as<ModulatedConv2dImpl>();
    return conv != nullptr && conv->options.demodulate();
  }
  return false;
}

}  // namespace

Status WidenGenerator(GeneratorImpl& narrow, GeneratorImpl& wide) {
  const GeneratorOptions& a = narrow.options;
  const GeneratorOptions& b = wide.options;
  if (a.attr_channels() != b.attr_channels() || a.id_dim() != b.id_dim() || a.w_dim() != b.w_dim() ||
      a.mapping_layers() != b.mapping_layers()) {
    return InvalidArgumentError("widening G: only the channel widths may differ");
  }
  if (b.ch16() < a.ch16() || b.ch32() < a.ch32() || b.ch64() < a.ch64() || b.ch128() < a.ch128()) {
    return InvalidArgumentError("widening G: the new widths must be at least the old ones (ch16 " + std::to_string(a.ch16()) +
                                ", ch32 " + std::to_string(a.ch32()) + ", ch64 " + std::to_string(a.ch64()) +
                                ", ch128 " + std::to_string(a.ch128()) + ")");
  }
  std::map<std::string, torch::Tensor> from;
  for (const auto& p : narrow.named_parameters(true)) from[p.key()] = p.value();
  for (const auto& p : narrow.named_buffers(true)) from[p.key()] = p.value();
  std::vector<std::pair<std::string, torch::Tensor>> to;
  for (const auto& p : wide.named_parameters(true)) to.emplace_back(p.key(), p.value());
  for (const auto& p : wide.named_buffers(true)) to.emplace_back(p.key(), p.value());
  if (to.size() != from.size()) return InvalidArgumentError("widening G: the two generators have different layers");
  for (const auto& [name, w] : to) {  // check everything before changing anything
    const auto it = from.find(name);
    if (it == from.end()) return InvalidArgumentError("widening G: no tensor " + name + " in the narrow generator");
    const torch::Tensor& n = it->second;
    bool fits = n.dim() == w.dim();
    for (int64_t d = 0; fits && d < n.dim(); ++d) fits = n.size(d) <= w.size(d);
    if (!fits) return InvalidArgumentError("widening G: tensor " + name + " does not fit");
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, w] : to) {
    const torch::Tensor n = from.at(name).to(w.device(), w.scalar_type());
    torch::Tensor block = w;
    for (int64_t d = 0; d < n.dim(); ++d) block = block.narrow(d, 0, n.size(d));
    block.copy_(n);
    if (w.dim() < 2 || n.size(1) == w.size(1)) continue;  // no new input channels
    // New inputs into old outputs: zero. Old weights: rescaled unless demodulated.
    w.narrow(0, 0, n.size(0)).narrow(1, n.size(1), w.size(1) - n.size(1)).zero_();
    if (!Demodulated(wide, name)) block.mul_(std::sqrt(static_cast<double>(w.size(1)) / static_cast<double>(n.size(1))));
  }
  return Status::Ok();
}

}  // namespace veil::engine::identity
