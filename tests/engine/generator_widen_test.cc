// Widening G for training (engine/src/identity/generator_widen.h): the wide generator renders what
// the narrow one did, its new channels can learn, and what cannot be widened is refused untouched.
// LibTorch's logging defines its own CHECK macro; the assertions here are spelled DOCTEST_CHECK.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include "identity/generator_widen.h"

using namespace veil::engine::identity;

namespace {

GeneratorOptions Small() { return GeneratorOptions().w_dim(32).mapping_layers(2).ch16(16).ch32(12).ch64(8).ch128(4); }

// Every tensor moved off its initial value (biases start at 0, styles at 1): nothing is trivially
// preserved.
Generator Trained(const GeneratorOptions& o) {
  Generator g(o);
  torch::NoGradGuard no_grad;
  for (auto& p : g->parameters()) p.add_(torch::randn_like(p) * 0.3);
  return g;
}

}  // namespace

TEST_CASE("a widened generator renders the faces the narrow one rendered") {
  torch::manual_seed(11);
  Generator narrow = Trained(Small());
  Generator wide(Small().ch16(20).ch32(16).ch64(12).ch128(6));
  REQUIRE(WidenGenerator(*narrow, *wide).ok());
  const torch::Tensor attr = torch::randn({3, 32, 32, 32}), id = torch::randn({3, 128});
  torch::NoGradGuard no_grad;
  const torch::Tensor want = narrow->forward(attr, id), got = wide->forward(attr, id);
  DOCTEST_CHECK(got.sizes() == want.sizes());
  const double err = (got - want).abs().max().item<double>();
  CAPTURE(err);
  DOCTEST_CHECK(err < 1e-4);
  DOCTEST_CHECK(want.abs().mean().item<double>() > 0.05);  // a real image, not zeros on both sides
  // The wide generator is not the narrow one plus dead weight: its new channels carry signal.
  DOCTEST_CHECK(wide->named_parameters()["b128.weight"].narrow(0, 4, 2).abs().sum().item<double>() > 0);
}

TEST_CASE("the zero weights from new channels get gradients, so training grows them") {
  torch::manual_seed(12);
  Generator narrow = Trained(Small());
  Generator wide(Small().ch64(12).ch128(6));
  REQUIRE(WidenGenerator(*narrow, *wide).ok());
  const torch::Tensor w = wide->named_parameters()["rgb128.weight"];
  DOCTEST_CHECK(w.narrow(1, 4, 2).abs().sum().item<double>() == 0.0);  // new inputs into toRGB: zero
  wide->forward(torch::randn({2, 32, 32, 32}), torch::randn({2, 128})).pow(2).mean().backward();
  DOCTEST_CHECK(w.grad().narrow(1, 4, 2).abs().sum().item<double>() > 0.0);
}

TEST_CASE("widening refuses narrower widths or another mapping and leaves the target as it was") {
  torch::manual_seed(13);
  Generator narrow = Trained(Small());
  for (const GeneratorOptions& o : {Small().ch64(6), Small().ch128(2), Small().w_dim(64), Small().mapping_layers(3)}) {
    Generator target(o);
    const torch::Tensor before = target->named_parameters()["b64.weight"].clone();
    const veil::Status st = WidenGenerator(*narrow, *target);
    DOCTEST_CHECK(st.code() == veil::StatusCode::kInvalidArgument);
    DOCTEST_CHECK(torch::equal(target->named_parameters()["b64.weight"], before));
  }
}
