// The keyed identity flow (issue 4): exact invertibility, determinism, key dependence, and the
// model file's checks, on the shipped models/veil-flow-v1.veilmodel and the real descriptors of the
// golden vectors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.h"
#include "veil/engine/identity_flow.h"
#include "veil/engine/model_file.h"
#include "veil/keys/secret.h"

namespace veil::engine {
namespace {

const std::string& FlowModelPath() {
  static const std::string p = std::string(VEIL_TEST_VEIL_MODELS_DIR) + "/veil-flow-v1.veilmodel";
  return p;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Real descriptors: every face in the golden vectors (computed by face-api in JavaScript).
std::vector<Descriptor> RealCodes() {
  std::vector<Descriptor> out;
  for (const auto& img : testing::Golden()["images"]) {
    for (const auto& face : img["faces"]) {
      Descriptor d;
      for (size_t i = 0; i < 128; ++i) d[i] = face["descriptor"][i].get<float>();
      out.push_back(d);
    }
  }
  return out;
}

keys::SecretBytes Key(int i) {
  const std::string d = keys::Blake2b256("identity-flow-test-key-" + std::to_string(i));
  return keys::SecretBytes::Copy(d.data(), 32);
}

std::unique_ptr<IdentityFlow> LoadShipped() {
  auto flow = IdentityFlow::Load(FlowModelPath());
  REQUIRE_MESSAGE(flow.ok(), flow.status().ToString());
  return std::move(flow).value();
}

float MaxAbsDiff(const Descriptor& a, const Descriptor& b) {
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

}  // namespace

TEST_SUITE("identity_flow") {
  TEST_CASE("the shipped flow loads with its id, kind and options") {
    auto flow = LoadShipped();
    CHECK(flow->model_id() == "veil-flow-v1");
    CHECK(flow->model_sha256().size() == 64);
    CHECK(flow->options().at("conditioning") == kFlowConditioningContext);
    CHECK(std::filesystem::file_size(FlowModelPath()) < 60u * 1000 * 1000);
  }

  TEST_CASE("Inverse(Forward(z, k), k) == z to float precision on real descriptors") {
    auto flow = LoadShipped();
    const auto codes = RealCodes();
    REQUIRE(codes.size() >= 10);
    for (int k = 0; k < 5; ++k) {
      const keys::SecretBytes key = Key(k);
      auto fwd = flow->ForwardBatch(codes, key);
      REQUIRE(fwd.ok());
      auto back = flow->InverseBatch(*fwd, key);
      REQUIRE(back.ok());
      for (size_t i = 0; i < codes.size(); ++i) {
        CHECK(MaxAbsDiff((*back)[i], codes[i]) < 1e-4f);
        // One at a time too.
        auto one = flow->Forward(codes[i], key);
        REQUIRE(one.ok());
        auto one_back = flow->Inverse(*one, key);
        REQUIRE(one_back.ok());
        CHECK(MaxAbsDiff(*one_back, codes[i]) < 1e-4f);
      }
    }
  }

  TEST_CASE("the shipped flow computes what it computed when it was shipped") {
    // Pinned outputs (first real golden code, test key 1), to 1e-4: a code change that altered the
    // arithmetic of existing flow files (e.g. around the signal_dims option) would move them.
    auto flow = LoadShipped();
    const auto codes = RealCodes();
    auto y = flow->Forward(codes[0], Key(1));
    REQUIRE(y.ok());
    const float pinned[4] = {-0.16876f, 0.100156f, 0.0987839f, -0.0752877f};
    for (int i = 0; i < 4; ++i) {
      CAPTURE(i);
      CHECK(std::abs((*y)[static_cast<size_t>(i)] - pinned[i]) < 1e-4f);
    }
  }

  TEST_CASE("the same code and key give bit-identical outputs, across calls and instances") {
    auto a = LoadShipped();
    auto b = LoadShipped();
    const auto codes = RealCodes();
    const keys::SecretBytes key = Key(7);
    auto y1 = a->ForwardBatch(codes, key);
    auto y2 = a->ForwardBatch(codes, key);
    auto y3 = b->ForwardBatch(codes, key);
    REQUIRE(y1.ok());
    REQUIRE(y2.ok());
    REQUIRE(y3.ok());
    CHECK(std::memcmp(y1->data(), y2->data(), sizeof(Descriptor) * codes.size()) == 0);
    CHECK(std::memcmp(y1->data(), y3->data(), sizeof(Descriptor) * codes.size()) == 0);
    auto s1 = a->Forward(codes[0], key);
    auto s2 = b->Forward(codes[0], key);
    REQUIRE(s1.ok());
    REQUIRE(s2.ok());
    CHECK(std::memcmp(s1->data(), s2->data(), sizeof(Descriptor)) == 0);
  }

  TEST_CASE("a different key gives a different identity, and the output is far from the input") {
    // Thresholds are statistical (the held-out rates are in models/veil-flow-v1.md): at least 90 %
    // of these real faces beyond 0.6, none closer than 0.3. The keys are fixed, so the outcome is too.
    auto flow = LoadShipped();
    const auto codes = RealCodes();
    const keys::SecretBytes k1 = Key(1), k2 = Key(2);
    auto y1 = flow->ForwardBatch(codes, k1);
    auto y2 = flow->ForwardBatch(codes, k2);
    REQUIRE(y1.ok());
    REQUIRE(y2.ok());
    auto wrong = flow->InverseBatch(*y1, k2);  // inverting with the wrong key
    REQUIRE(wrong.ok());
    int keys_apart = 0, far = 0, wrong_far = 0;
    float min_keys = 10, min_far = 10;
    for (size_t i = 0; i < codes.size(); ++i) {
      const float dk = DescriptorDistance((*y1)[i], (*y2)[i]);
      const float df = DescriptorDistance((*y1)[i], codes[i]);
      keys_apart += dk > kSamePersonDistance;
      far += df > kSamePersonDistance;
      wrong_far += DescriptorDistance((*wrong)[i], codes[i]) > kSamePersonDistance;
      min_keys = std::min(min_keys, dk);
      min_far = std::min(min_far, df);
    }
    const double n = static_cast<double>(codes.size());
    CHECK(keys_apart / n >= 0.9);
    CHECK(far / n >= 0.9);
    CHECK(wrong_far / n >= 0.9);
    CHECK(min_keys > 0.3f);
    CHECK(min_far > 0.3f);
  }

  TEST_CASE("a pseudonym read back with an error inverts far nearer the original once denoised") {
    // The error of a rendered face's read-back, mimicked by a fixed isotropic error of norm 0.3:
    // much of it lies in directions where real codes hardly vary, which the whitened inverse
    // magnifies. Denoise (the Wiener filter in the whitening basis) takes most of that part out.
    auto flow = LoadShipped();
    const auto codes = RealCodes();
    const keys::SecretBytes key = Key(3);
    auto pseudonyms = flow->ForwardBatch(codes, key);
    REQUIRE(pseudonyms.ok());
    std::vector<Descriptor> read = *pseudonyms;
    for (size_t i = 0; i < read.size(); ++i) {
      Descriptor e;
      float norm = 0;
      for (size_t j = 0; j < 128; ++j) e[j] = std::sin(12.9898f * (i + 1) + 78.233f * (j + 1)), norm += e[j] * e[j];
      for (size_t j = 0; j < 128; ++j) read[i][j] += 0.3f * e[j] / std::sqrt(norm);
    }
    auto plain = flow->InverseBatch(read, key);
    auto denoised = flow->Denoise(read, 0.3f);
    REQUIRE(plain.ok());
    REQUIRE(denoised.ok());
    auto restored = flow->InverseBatch(*denoised, key);
    REQUIRE(restored.ok());
    int near = 0;
    for (size_t i = 0; i < codes.size(); ++i) {
      const float d_plain = DescriptorDistance((*plain)[i], codes[i]);
      const float d_denoised = DescriptorDistance((*restored)[i], codes[i]);
      CAPTURE(i);
      CHECK(d_denoised < d_plain);
      near += d_denoised < kSamePersonDistance;
    }
    CHECK(near >= static_cast<int>(codes.size()) * 9 / 10);
  }

  TEST_CASE("Denoise with ratio 0 changes nothing; a negative or non-finite ratio or code is refused") {
    auto flow = LoadShipped();
    const auto codes = RealCodes();
    auto same = flow->Denoise(codes, 0.0f);
    REQUIRE(same.ok());
    CHECK(std::memcmp(same->data(), codes.data(), sizeof(Descriptor) * codes.size()) == 0);
    CHECK(flow->Denoise(codes, -0.1f).status().code() == StatusCode::kInvalidArgument);
    CHECK(flow->Denoise(codes, std::nanf("")).status().code() == StatusCode::kInvalidArgument);
    Descriptor bad = codes[0];
    bad[5] = std::numeric_limits<float>::infinity();
    CHECK(flow->Denoise({bad}, 0.3f).status().code() == StatusCode::kInvalidArgument);
    auto shrunk = flow->Denoise(codes, 0.3f);
    REQUIRE(shrunk.ok());
    for (size_t i = 0; i < codes.size(); ++i) CHECK(DescriptorDistance((*shrunk)[i], codes[i]) > 0.0f);
  }

  TEST_CASE("bad inputs are refused") {
    auto flow = LoadShipped();
    Descriptor z{};
    const keys::SecretBytes short_key = keys::SecretBytes::Copy("0123456789", 10);
    CHECK(flow->Forward(z, short_key).status().code() == StatusCode::kInvalidArgument);
    CHECK(flow->Inverse(z, keys::SecretBytes()).status().code() == StatusCode::kInvalidArgument);
    z[3] = std::nanf("");
    CHECK(flow->Forward(z, Key(0)).status().code() == StatusCode::kInvalidArgument);
    auto empty = flow->ForwardBatch({}, Key(0));
    REQUIRE(empty.ok());
    CHECK(empty->empty());
  }

  TEST_CASE("a corrupt model file is refused with DataLoss") {
    const std::string bytes = ReadAll(FlowModelPath());
    REQUIRE(bytes.size() > 1000);
    for (size_t pos : {size_t{60}, bytes.size() / 2, bytes.size() - 1}) {
      std::string bad = bytes;
      bad[pos] = static_cast<char>(bad[pos] ^ 0x01);
      CHECK(ParseModelFile(bad).status().code() == StatusCode::kDataLoss);
      const auto path = std::filesystem::temp_directory_path() / "veil-flow-corrupt-test.veilmodel";
      {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(bad.data(), static_cast<std::streamsize>(bad.size()));
      }
      CHECK(IdentityFlow::Load(path.string()).status().code() == StatusCode::kDataLoss);
      std::filesystem::remove(path);
    }
    // Truncated.
    CHECK(ParseModelFile(bytes.substr(0, bytes.size() - 100)).status().code() == StatusCode::kDataLoss);
  }

  TEST_CASE("a model of another kind or with mismatched options or tensors is refused with InvalidArgument") {
    auto contents = LoadModelFile(FlowModelPath());
    REQUIRE(contents.ok());
    REQUIRE(IdentityFlow::FromContents(*contents).ok());
    auto reparsed = [](const ModelFileContents& m) { return ParseModelFile(SerializeModelFile(m)); };

    SUBCASE("another kind") {
      ModelFileContents m = *contents;
      m.kind = "generator";
      auto parsed = reparsed(m);
      REQUIRE(parsed.ok());
      CHECK(IdentityFlow::FromContents(*parsed).status().code() == StatusCode::kInvalidArgument);
    }
    SUBCASE("an architecture option that does not match the tensors") {
      ModelFileContents m = *contents;
      m.options["hidden"] = "128";
      CHECK(IdentityFlow::FromContents(m).status().code() == StatusCode::kInvalidArgument);
    }
    SUBCASE("another conditioning context") {
      ModelFileContents m = *contents;
      m.options["conditioning"] = "veil-flow-cond-v0";
      CHECK(IdentityFlow::FromContents(m).status().code() == StatusCode::kInvalidArgument);
    }
    SUBCASE("a missing or unknown option") {
      ModelFileContents m = *contents;
      m.options.erase("couplings");
      CHECK(IdentityFlow::FromContents(m).status().code() == StatusCode::kInvalidArgument);
      ModelFileContents u = *contents;
      u.options["surprise"] = "1";
      CHECK(IdentityFlow::FromContents(u).status().code() == StatusCode::kInvalidArgument);
    }
    SUBCASE("a missing, extra or misshapen tensor") {
      ModelFileContents m = *contents;
      m.tensors.pop_back();
      CHECK(IdentityFlow::FromContents(m).status().code() == StatusCode::kInvalidArgument);
      ModelFileContents e = *contents;
      e.tensors.push_back(e.tensors.front());
      e.tensors.back().name = "extra";
      CHECK(IdentityFlow::FromContents(e).status().code() == StatusCode::kInvalidArgument);
      ModelFileContents s = *contents;
      s.tensors.front().shape.push_back(1);
      CHECK(IdentityFlow::FromContents(s).status().code() == StatusCode::kInvalidArgument);
    }
    SUBCASE("non-finite weights") {
      ModelFileContents m = *contents;
      m.tensors.front().values[0] = std::nanf("");
      CHECK(IdentityFlow::FromContents(m).status().code() == StatusCode::kInvalidArgument);
    }
  }
}

}  // namespace veil::engine
