// The recognizer's intermediate feature maps (FaceRecognitionNetImpl::Features), which the GAN
// trainer's perceptual distance compares: which maps, their shapes, and that asking for fewer
// computes the same first ones.
// (DOCTEST_CHECK: LibTorch defines its own CHECK.)
#include <doctest/doctest.h>

#include "nets/face_recognition_net.h"
#include "test_support.h"
#include "veil/engine/tfjs_weights.h"

namespace veil::engine {

TEST_CASE("the recognizer's feature maps are its first convolution and the ends of its residual stages") {
  auto w = TfjsWeights::Load(testing::ModelsDir(), "face_recognition_model", true);
  REQUIRE_MESSAGE(w.ok(), w.status().ToString());
  nets::FaceRecognitionNet net;
  REQUIRE(net->LoadFrom(*w).ok());
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  const torch::Tensor x = nets::RecognizerInputFromBgr(torch::rand({2, 3, 128, 128}) * 2 - 1);
  const auto all = net->Features(x, 6);
  REQUIRE(all.size() == 6);
  const int64_t channels[] = {32, 32, 64, 128, 256, 256}, sides[] = {72, 35, 17, 8, 4, 2};
  for (size_t i = 0; i < all.size(); ++i) {
    DOCTEST_CHECK(all[i].sizes() == torch::IntArrayRef({2, channels[i], sides[i], sides[i]}));
    DOCTEST_CHECK(all[i].min().item<float>() >= 0);  // after a ReLU
  }
  DOCTEST_CHECK(net->Features(x, 99).size() == 6);
  DOCTEST_CHECK(net->Features(x, 0).empty());
  const auto first = net->Features(x, 4);
  REQUIRE(first.size() == 4);
  for (size_t i = 0; i < first.size(); ++i) DOCTEST_CHECK(torch::equal(first[i], all[i]));
  // Two different faces give different maps at every depth.
  for (const auto& f : all) DOCTEST_CHECK((f[0] - f[1]).abs().max().item<float>() > 1e-3);
}

}  // namespace veil::engine
