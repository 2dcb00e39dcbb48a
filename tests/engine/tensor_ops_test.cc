// The engine's own versions of LibTorch operations (engine/src/nets/tensor_util.h): the same bits.
// LibTorch's logging defines its own CHECK macro; the assertions here are spelled DOCTEST_CHECK.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <limits>

#include "nets/tensor_util.h"

using namespace veil::engine::nets;

TEST_CASE("max pooling as a running maximum of strided views gives torch's max_pool2d values") {
  torch::manual_seed(7);
  struct Case {
    int64_t c, h, w, k, stride;
  };
  for (const Case& t : {Case{16, 414, 414, 2, 2}, Case{32, 207, 205, 2, 2}, Case{8, 13, 13, 2, 1}, Case{64, 75, 75, 3, 2},
                        Case{4, 10, 9, 3, 3}, Case{3, 3, 3, 3, 2}}) {
    CAPTURE(t.h);
    CAPTURE(t.k);
    CAPTURE(t.stride);
    torch::Tensor x = torch::randn({2, t.c, t.h, t.w});
    x.index_put_({0, 0, 0, 0}, -std::numeric_limits<float>::infinity());  // TF 'same' padding value
    torch::Tensor want = torch::max_pool2d(x, t.k, t.stride);
    torch::Tensor got = MaxPool(x, t.k, t.stride);
    DOCTEST_CHECK(got.sizes() == want.sizes());
    DOCTEST_CHECK(torch::equal(got, want));
  }
  // A window larger than the input is torch's own error, not an empty result.
  DOCTEST_CHECK_THROWS(MaxPool(torch::randn({1, 2, 1, 5}), 2, 2));
}

TEST_CASE("max pooling keeps torch's gradient where training differentiates through a network") {
  torch::manual_seed(3);
  torch::Tensor x = torch::randn({1, 4, 9, 9}, torch::requires_grad());
  torch::Tensor want = torch::autograd::grad({torch::max_pool2d(x, 3, 2).sum()}, {x})[0];
  torch::Tensor got = torch::autograd::grad({MaxPool(x, 3, 2).sum()}, {x})[0];
  DOCTEST_CHECK(torch::equal(got, want));
}
