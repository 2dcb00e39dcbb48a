// The keyed flow restricted to the codes' principal directions (FlowOptions::signal_dims): exact
// inversion, the other directions left as they are, and the model file carrying the option.
// (DOCTEST_CHECK: LibTorch, included for the flow module, defines its own CHECK.)
#include <doctest/doctest.h>

#include <torch/torch.h>

#include "identity/flow.h"
#include "nets/module_io.h"
#include "veil/engine/identity_flow.h"
#include "veil/engine/model_file.h"
#include "veil/keys/secret.h"

namespace veil::engine {
namespace {

using identity::Flow;
using identity::FlowOptions;

keys::SecretBytes Key(int i) {
  const std::string d = keys::Blake2b256("flow-signal-dims-test-key-" + std::to_string(i));
  return keys::SecretBytes::Copy(d.data(), 32);
}

// Codes that vary in `rank` directions only, as the recognizer's do in 77 of 128.
torch::Tensor LowRankCodes(int64_t n, int64_t rank) {
  torch::manual_seed(7);
  const torch::Tensor mix = torch::randn({rank, 128}) * 0.05;
  return torch::randn({n, rank}).matmul(mix) + torch::randn({128}) * 0.02 + torch::randn({n, 128}) * 1e-5;
}

// A flow with statistics from `codes` and couplings that do something (the last layers start at 0).
Flow MakeFlow(const torch::Tensor& codes, int64_t signal_dims) {
  Flow f(FlowOptions().signal_dims(signal_dims));
  const torch::Tensor mean = codes.mean(0);
  const torch::Tensor c = codes - mean;
  f->SetStatistics(mean, c.t().matmul(c) / (codes.size(0) - 1));
  torch::NoGradGuard g;
  for (auto& p : f->named_parameters())
    if (p.key().find("fc3") != std::string::npos) p.value().copy_(torch::randn(p.value().sizes()) * 0.005);
  f->eval();
  return f;
}

}  // namespace

TEST_CASE("a flow over the codes' principal directions inverts exactly and leaves the other directions alone") {
  const torch::Tensor all = LowRankCodes(400, 76);  // enough codes for a full-rank 76-D spread
  Flow f = MakeFlow(all, 76);
  const torch::Tensor x = all.narrow(0, 0, 64);
  const keys::SecretBytes k = Key(1);
  std::vector<const keys::SecretBytes*> kp(static_cast<size_t>(x.size(0)), &k);
  auto keys = identity::MakeFlowKeys(f->options(), kp);
  REQUIRE(keys.ok());
  DOCTEST_CHECK(keys->q.size(1) == 76);
  torch::NoGradGuard g;
  const torch::Tensor y = f->forward(x, *keys);
  const torch::Tensor back = f->inverse(y, *keys);
  DOCTEST_CHECK((back - x).abs().max().item<double>() < 1e-5);  // |x| about 0.5
  DOCTEST_CHECK((y - x).norm(2, 1).mean().item<double>() > 0.1);  // it does move the codes
  // Outside the 76 principal directions nothing changes.
  const torch::Tensor mean = f->Whitening().first;
  const torch::Tensor b = f->named_buffers()["basis"];
  REQUIRE(b.defined());
  auto rest = [&](const torch::Tensor& v) {
    const torch::Tensor c = v - mean;
    return c - c.matmul(b).matmul(b.t());
  };
  DOCTEST_CHECK((rest(y) - rest(x)).abs().max().item<double>() < 1e-6);
  // The basis is orthonormal and holds the codes' spread.
  DOCTEST_CHECK((b.t().matmul(b) - torch::eye(76)).abs().max().item<double>() < 1e-5);
  DOCTEST_CHECK(rest(x).norm(2, 1).max().item<double>() < 1e-3);
}

TEST_CASE("a flow file with signal_dims loads through IdentityFlow and computes the same codes") {
  const torch::Tensor all = LowRankCodes(400, 76);
  Flow f = MakeFlow(all, 76);
  const torch::Tensor x = all.narrow(0, 0, 16).contiguous();
  const auto map = f->options().ToMap();
  REQUIRE(map.count("signal_dims"));
  DOCTEST_CHECK(map.at("signal_dims") == "76");
  DOCTEST_CHECK(FlowOptions().ToMap().count("signal_dims") == 0);  // files before the option: all dims
  ModelFileContents m;
  m.model_id = "veil-flow-test";
  m.kind = kIdentityFlowKind;
  m.options = map;
  m.tensors = ModelTensors(*f, /*fp16=*/false);
  auto parsed = ParseModelFile(SerializeModelFile(m));
  REQUIRE(parsed.ok());
  auto flow = IdentityFlow::FromContents(*parsed);
  REQUIRE_MESSAGE(flow.ok(), flow.status().ToString());
  const keys::SecretBytes k = Key(2);
  std::vector<Descriptor> codes(static_cast<size_t>(x.size(0)));
  for (size_t i = 0; i < codes.size(); ++i) std::memcpy(codes[i].data(), x[static_cast<int64_t>(i)].data_ptr<float>(), 512);
  auto out = flow->get()->ForwardBatch(codes, k);
  REQUIRE(out.ok());
  auto keys = identity::MakeFlowKeys(f->options(), {&k});  // one key for the batch, as IdentityFlow runs it
  REQUIRE(keys.ok());
  torch::NoGradGuard g;
  const torch::Tensor y = f->forward(x, *keys).contiguous();
  for (size_t i = 0; i < codes.size(); ++i)
    DOCTEST_CHECK(std::memcmp((*out)[i].data(), y[static_cast<int64_t>(i)].data_ptr<float>(), 512) == 0);
  // An odd signal_dims, or one beyond dim, is refused.
  auto bad = map;
  bad["signal_dims"] = "75";
  DOCTEST_CHECK_FALSE(FlowOptions::FromMap(bad).ok());
  bad["signal_dims"] = "130";
  DOCTEST_CHECK_FALSE(FlowOptions::FromMap(bad).ok());
}

}  // namespace veil::engine
