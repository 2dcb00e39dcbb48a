// The generator's inference form (engine/src/identity/generator.h: Fold + Infer), which the
// renderer uses, against the training form (forward), which the trainer and the exported files
// were made with.
#include <doctest/doctest.h>

#include "identity/generator.h"

namespace veil::engine::identity {
namespace {

TEST_CASE("the folded inference form of G renders what its training form renders, face by face") {
  torch::manual_seed(3);
  Generator g;
  g->eval();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : g->named_parameters()) {
      if (p.key().find("bias") != std::string::npos) p.value().normal_(0.0, 0.3);  // folding moves biases too
    }
  }
  c10::InferenceMode guard;
  const torch::Tensor attr = torch::randn({3, g->options.attr_channels(), 32, 32});
  const torch::Tensor ids = torch::randn({3, g->options.id_dim()}) * 0.12;
  const torch::Tensor reference = g->forward(attr, ids);
  for (int64_t i = 0; i < 3; ++i) {
    const torch::Tensor face = g->Infer(attr.narrow(0, i, 1), g->Fold(ids.narrow(0, i, 1)));
    REQUIRE(face.sizes() == reference.narrow(0, i, 1).sizes());
    const double scale = reference.abs().max().item<double>();
    const double diff = (face - reference.narrow(0, i, 1)).abs().max().item<double>();
    MESSAGE("face " << i << ": largest difference " << diff << " (outputs up to " << scale << ")");
    CHECK(scale > 0.1);
    CHECK(diff < 1e-4 * scale);
  }
}

TEST_CASE("folded weights belong to one identity: another identity renders another face") {
  torch::manual_seed(4);
  Generator g;
  g->eval();
  c10::InferenceMode guard;
  const torch::Tensor attr = torch::randn({1, g->options.attr_channels(), 32, 32});
  const torch::Tensor a = g->Infer(attr, g->Fold(torch::randn({1, g->options.id_dim()})));
  const torch::Tensor b = g->Infer(attr, g->Fold(torch::randn({1, g->options.id_dim()})));
  CHECK((a - b).abs().max().item<double>() > 1e-2);
  CHECK_THROWS(g->Fold(torch::randn({2, g->options.id_dim()})));        // one identity at a time
  CHECK_THROWS(g->Infer(torch::randn({2, g->options.attr_channels(), 32, 32}), g->Fold(torch::randn({1, 128}))));
}

}  // namespace
}  // namespace veil::engine::identity
