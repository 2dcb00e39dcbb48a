// FaceRenderer (E + G): shapes, determinism, the FLOP budget, and the model-file round trip.
// Untrained (seeded) networks: these tests check the machinery, not the quality of the faces,
// which the trainer measures on held-out images (models/README.md).
#include <doctest/doctest.h>

#include <filesystem>
#include <random>

#include <unistd.h>

#include <opencv2/core.hpp>

#include "identity/generator_widen.h"
#include "identity/renderer_files.h"
#include "nets/module_io.h"
#include "veil/engine/face_renderer.h"
#include "veil/engine/model_file.h"

namespace veil::engine {
namespace {

std::vector<cv::Mat> RandomCrops(int n, uint32_t seed) {
  cv::RNG rng(seed);
  std::vector<cv::Mat> crops;
  for (int i = 0; i < n; ++i) {
    cv::Mat m(FaceRenderer::kCropSize, FaceRenderer::kCropSize, CV_8UC3);
    rng.fill(m, cv::RNG::UNIFORM, 0, 256);
    crops.push_back(m);
  }
  return crops;
}

std::vector<Descriptor> RandomCodes(int n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 0.12f);
  std::vector<Descriptor> codes(n);
  for (auto& c : codes) for (float& v : c) v = normal(gen);
  return codes;
}

// A throw-away folder for one encoder + generator pair; removed with the object, also when a
// REQUIRE ends the test early.
struct ModelDir {
  std::filesystem::path dir;
  std::string enc, gen;
  explicit ModelDir(const std::string& tag)
      : dir(std::filesystem::temp_directory_path() / (tag + std::to_string(::getpid()))),
        enc((dir / "enc.veilmodel").string()),
        gen((dir / "gen.veilmodel").string()) {
    std::filesystem::create_directories(dir);
  }
  ~ModelDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

bool SameBits(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

TEST_CASE("the renderer maps 128x128 BGR crops and codes to 128x128 BGR crops, one per input") {
  auto r = FaceRenderer::CreateUntrained(7);
  REQUIRE(r.ok());
  auto out = (*r)->Render(RandomCrops(3, 1), RandomCodes(3, 2));
  REQUIRE(out.ok());
  REQUIRE(out->size() == 3);
  for (const cv::Mat& m : *out) {
    CHECK(m.rows == 128);
    CHECK(m.cols == 128);
    CHECK(m.type() == CV_8UC3);
  }
}

TEST_CASE("the renderer refuses mismatched counts and wrong crop sizes") {
  auto r = FaceRenderer::CreateUntrained(7);
  REQUIRE(r.ok());
  CHECK((*r)->Render(RandomCrops(2, 1), RandomCodes(1, 2)).status().code() == StatusCode::kInvalidArgument);
  std::vector<cv::Mat> wrong = {cv::Mat(150, 150, CV_8UC3, cv::Scalar::all(0))};
  CHECK((*r)->Render(wrong, RandomCodes(1, 2)).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("the same crops and codes give identical bits, and the identity changes the face") {
  auto r = FaceRenderer::CreateUntrained(11);
  REQUIRE(r.ok());
  const auto crops = RandomCrops(4, 5);
  const auto codes = RandomCodes(4, 6);
  auto a = (*r)->Render(crops, codes);
  auto b = (*r)->Render(crops, codes);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  for (size_t i = 0; i < a->size(); ++i) CHECK(SameBits(a->at(i), b->at(i)));
  auto other = (*r)->Render(crops, RandomCodes(4, 99));
  REQUIRE(other.ok());
  CHECK_FALSE(SameBits(a->at(0), other->at(0)));
}

TEST_CASE("a face renders the same bits whether its identity was rendered just before or long ago") {
  // The renderer keeps G's weights folded for its last few identities (a stream's pseudonym).
  auto r = FaceRenderer::CreateUntrained(12);
  auto fresh = FaceRenderer::CreateUntrained(12);
  REQUIRE(r.ok());
  REQUIRE(fresh.ok());
  const auto crops = RandomCrops(1, 8);
  auto render = [&](FaceRenderer& renderer, const std::vector<Descriptor>& code) {
    auto out = renderer.Render(crops, code);
    REQUIRE(out.ok());
    return out->at(0);
  };
  const auto code = RandomCodes(1, 9);
  const cv::Mat first = render(**r, code);
  CHECK(SameBits(first, render(**r, code)));
  for (uint32_t seed = 20; seed < 30; ++seed) render(**r, RandomCodes(1, seed));  // pushed out
  CHECK(SameBits(first, render(**r, code)));
  CHECK(SameBits(first, render(**fresh, code)));
}

TEST_CASE("E + G stay within the inference budget of 1.8 GFLOP per face") {
  auto r = FaceRenderer::CreateUntrained(1);
  REQUIRE(r.ok());
  const int64_t flops = (*r)->FlopsPerFace();
  MESSAGE("E + G: " << flops / 1e9 << " GFLOP per face");
  CHECK(flops > 500'000'000);    // the counter really counted the convolutions
  CHECK(flops <= 1'800'000'000);
}

TEST_CASE("saved model files load back into a renderer that renders the same faces") {
  const ModelDir tmp("veil_renderer_test_");
  const std::string &enc = tmp.enc, &gen = tmp.gen;
  auto r = FaceRenderer::CreateUntrained(3);
  REQUIRE(r.ok());
  FaceRendererSaveInfo info;
  info.fp16 = false;  // exact round trip
  info.info["note"] = "test";
  REQUIRE((*r)->Save(enc, gen, info).ok());
  CHECK((*r)->Save(enc, gen, info).code() == StatusCode::kAlreadyExists);

  auto loaded = FaceRenderer::Create({.encoder_path = enc, .generator_path = gen});
  REQUIRE(loaded.ok());
  const auto crops = RandomCrops(2, 8);
  const auto codes = RandomCodes(2, 9);
  auto a = (*r)->Render(crops, codes);
  auto b = (*loaded)->Render(crops, codes);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  for (size_t i = 0; i < a->size(); ++i) CHECK(SameBits(a->at(i), b->at(i)));

  // The encoder file is not a generator.
  auto swapped = FaceRenderer::Create({.encoder_path = gen, .generator_path = enc});
  CHECK(swapped.status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("a generator names the encoder it was exported with, and a pair mixed from two exports is refused") {
  const ModelDir one("veil_renderer_pair1_"), two("veil_renderer_pair2_");
  for (const ModelDir* d : {&one, &two}) {
    auto r = FaceRenderer::CreateUntrained(d == &one ? 4 : 5);
    REQUIRE(r.ok());
    REQUIRE((*r)->Save(d->enc, d->gen, FaceRendererSaveInfo{}).ok());
  }
  auto g = LoadModelFile(one.gen);
  auto e = LoadModelFile(one.enc);
  REQUIRE((g.ok() && e.ok()));
  CHECK(g->info.at("encoder_sha256") == e->sha256_hex);
  CHECK(FaceRenderer::Create({.encoder_path = one.enc, .generator_path = one.gen}).ok());
  auto mixed = FaceRenderer::Create({.encoder_path = two.enc, .generator_path = one.gen});
  CHECK(mixed.status().code() == StatusCode::kInvalidArgument);
  CHECK(mixed.status().message().find("another encoder") != std::string::npos);
}


// A copy of the model file at `from`, with option `key` set to `value` (or removed when empty).
std::string WithOption(const std::string& from, const std::string& to, const std::string& key, const std::string& value) {
  auto m = LoadModelFile(from);
  REQUIRE(m.ok());
  if (value.empty()) m->options.erase(key);
  else m->options[key] = value;
  REQUIRE(SaveModelFile(to, *m, /*overwrite=*/true).ok());
  return to;
}

TEST_CASE("SteerIdentity returns the target at gain 1 and extrapolates past it from the source above 1") {
  const auto codes = RandomCodes(2, 5);
  const Descriptor& s = codes[0];
  const Descriptor& t = codes[1];
  const Descriptor same = SteerIdentity(s, t, 1.0f);
  const Descriptor far = SteerIdentity(s, t, 2.0f);
  for (size_t i = 0; i < s.size(); ++i) {
    CHECK(same[i] == doctest::Approx(t[i]));
    CHECK(far[i] == doctest::Approx(2.0f * t[i] - s[i]));
  }
  CHECK(DescriptorDistance(far, s) == doctest::Approx(2.0f * DescriptorDistance(t, s)).epsilon(1e-4));
}

TEST_CASE("a generator file carries its identity gain; without the option the gain is 1; a bad gain is refused") {
  const ModelDir tmp("veil_gain_test_");
  const std::string &enc = tmp.enc, &gen = tmp.gen;
  const std::filesystem::path& dir = tmp.dir;
  auto r = FaceRenderer::CreateUntrained(5);
  REQUIRE(r.ok());
  CHECK((*r)->IdentityGain() == 1.0f);
  REQUIRE((*r)->Save(enc, gen, {}).ok());
  CHECK(LoadModelFile(gen)->options.count("identity_gain") == 0);  // gain 1: the key is left out

  auto plain = FaceRenderer::Create({.encoder_path = enc, .generator_path = gen});
  REQUIRE(plain.ok());
  CHECK((*plain)->IdentityGain() == 1.0f);
  auto steered = FaceRenderer::Create(
      {.encoder_path = enc, .generator_path = WithOption(gen, (dir / "g2.veilmodel").string(), "identity_gain", "2.5")});
  REQUIRE(steered.ok());
  CHECK((*steered)->IdentityGain() == 2.5f);
  // The gain is not architecture: the same weights render the same faces.
  const auto crops = RandomCrops(1, 2);
  const auto codes = RandomCodes(1, 3);
  auto a = (*plain)->Render(crops, codes);
  auto b = (*steered)->Render(crops, codes);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(SameBits(a->at(0), b->at(0)));
  for (const char* bad : {"0.5", "nan", "9", "2x"}) {
    CAPTURE(bad);
    auto refused = FaceRenderer::Create(
        {.encoder_path = enc, .generator_path = WithOption(gen, (dir / "gbad.veilmodel").string(), "identity_gain", bad)});
    CHECK(refused.status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("a generator file carries its read-back noise ratio; without the option it is 0; a bad ratio is refused") {
  const ModelDir tmp("veil_noise_ratio_test_");
  const std::string &enc = tmp.enc, &gen = tmp.gen;
  const std::filesystem::path& dir = tmp.dir;
  auto r = FaceRenderer::CreateUntrained(7);
  REQUIRE(r.ok());
  CHECK((*r)->ReadBackNoiseRatio() == 0.0f);
  REQUIRE((*r)->Save(enc, gen, {}).ok());
  CHECK(LoadModelFile(gen)->options.count("readback_noise_ratio") == 0);  // 0: the key is left out
  auto noisy = FaceRenderer::Create(
      {.encoder_path = enc, .generator_path = WithOption(gen, (dir / "g3.veilmodel").string(), "readback_noise_ratio", "0.3")});
  REQUIRE(noisy.ok());
  CHECK((*noisy)->ReadBackNoiseRatio() == 0.3f);
  for (const char* bad : {"-0.1", "nan", "11", "0.3x", " "}) {
    CAPTURE(bad);
    auto refused = FaceRenderer::Create(
        {.encoder_path = enc, .generator_path = WithOption(gen, (dir / "gbad.veilmodel").string(), "readback_noise_ratio", bad)});
    CHECK(refused.status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("an encoder or generator file with an option this build does not know is refused, not rendered without it") {
  const ModelDir tmp("veil_unknown_option_test_");
  auto r = FaceRenderer::CreateUntrained(8);
  REQUIRE(r.ok());
  FaceRendererSaveInfo info;
  info.fp16 = false;
  REQUIRE((*r)->Save(tmp.enc, (tmp.dir / "linked.veilmodel").string(), info).ok());
  // Unlinked from its encoder (as files from before the link), so that only the option decides.
  auto g = LoadModelFile((tmp.dir / "linked.veilmodel").string());
  REQUIRE(g.ok());
  g->info.erase("encoder_sha256");
  REQUIRE(SaveModelFile(tmp.gen, *g, /*overwrite=*/false).ok());
  REQUIRE(FaceRenderer::Create({.encoder_path = tmp.enc, .generator_path = tmp.gen}).ok());
  auto e = FaceRenderer::Create(
      {.encoder_path = WithOption(tmp.enc, (tmp.dir / "e4.veilmodel").string(), "dilation", "2"), .generator_path = tmp.gen});
  CHECK(e.status().code() == StatusCode::kInvalidArgument);
  CHECK(e.status().message().find("dilation=2 is unknown to this build") != std::string::npos);
  auto gen = FaceRenderer::Create(
      {.encoder_path = tmp.enc, .generator_path = WithOption(tmp.gen, (tmp.dir / "g4.veilmodel").string(), "style_mix", "1")});
  CHECK(gen.status().code() == StatusCode::kInvalidArgument);
  CHECK(gen.status().message().find("style_mix=1 is unknown to this build") != std::string::npos);
  // Options the loader knows, stated at their defaults (which the writer leaves out), still load.
  CHECK(FaceRenderer::Create({.encoder_path = WithOption(tmp.enc, (tmp.dir / "e5.veilmodel").string(), "pool", "1"),
                              .generator_path = WithOption(tmp.gen, (tmp.dir / "g5.veilmodel").string(), "identity_gain", "1")})
            .ok());
}

TEST_CASE("the renderer names the files it loaded (model id, SHA-256) and refuses a file with a non-finite weight") {
  const ModelDir tmp("veil_loaded_refs_test_");
  auto r = FaceRenderer::CreateUntrained(9);
  REQUIRE(r.ok());
  CHECK((*r)->models().empty());
  FaceRendererSaveInfo info;
  info.fp16 = false;
  REQUIRE((*r)->Save(tmp.enc, tmp.gen, info).ok());
  auto loaded = FaceRenderer::Create({.encoder_path = tmp.enc, .generator_path = tmp.gen});
  REQUIRE(loaded.ok());
  const auto refs = (*loaded)->models();
  REQUIRE(refs.size() == 2);
  CHECK(refs[0].role == "encoder");
  CHECK(refs[0].id == LoadModelFile(tmp.enc)->model_id);
  CHECK(refs[0].sha256_hex == LoadModelFile(tmp.enc)->sha256_hex);
  CHECK(refs[1].role == "generator");
  CHECK(refs[1].sha256_hex == LoadModelFile(tmp.gen)->sha256_hex);
  CHECK(refs[0].sha256_hex != refs[1].sha256_hex);
  // One weight of the generator made NaN (the file's hash is recomputed, so only the value is wrong).
  auto g = LoadModelFile(tmp.gen);
  REQUIRE(g.ok());
  REQUIRE(!g->tensors.empty());
  g->info.erase("encoder_sha256");
  g->tensors[0].values[0] = std::nanf("");
  const std::string bad = (tmp.dir / "nan.veilmodel").string();
  REQUIRE(SaveModelFile(bad, *g, /*overwrite=*/false).ok());
  auto refused = FaceRenderer::Create({.encoder_path = tmp.enc, .generator_path = bad});
  CHECK(refused.status().code() == StatusCode::kInvalidArgument);
  CHECK(refused.status().message().find("non-finite") != std::string::npos);
}

TEST_CASE("an encoder file's pool option narrows the attribute bottleneck; an unsupported pool is refused") {
  const ModelDir tmp("veil_pool_test_");
  const std::string &enc = tmp.enc, &gen = tmp.gen;
  const std::filesystem::path& dir = tmp.dir;
  auto r = FaceRenderer::CreateUntrained(6);
  REQUIRE(r.ok());
  FaceRendererSaveInfo info;
  info.fp16 = false;
  REQUIRE((*r)->Save(enc, (dir / "linked.veilmodel").string(), info).ok());
  CHECK(LoadModelFile(enc)->options.count("pool") == 0);  // pool 1: the key is left out
  // The encoder files below differ from the one the generator names: a generator without the link
  // (as files from before it) pairs with each of them.
  auto g = LoadModelFile((dir / "linked.veilmodel").string());
  REQUIRE(g.ok());
  g->info.erase("encoder_sha256");
  REQUIRE(SaveModelFile(gen, *g, /*overwrite=*/false).ok());
  auto full = FaceRenderer::Create({.encoder_path = enc, .generator_path = gen});
  auto pooled = FaceRenderer::Create(
      {.encoder_path = WithOption(enc, (dir / "e2.veilmodel").string(), "pool", "2"), .generator_path = gen});
  REQUIRE(full.ok());
  REQUIRE(pooled.ok());
  const auto crops = RandomCrops(1, 4);
  const auto codes = RandomCodes(1, 5);
  auto a = (*full)->Render(crops, codes);
  auto b = (*pooled)->Render(crops, codes);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(!SameBits(a->at(0), b->at(0)));
  auto again = (*pooled)->Render(crops, codes);
  REQUIRE(again.ok());
  CHECK(SameBits(b->at(0), again->at(0)));
  auto refused = FaceRenderer::Create(
      {.encoder_path = WithOption(enc, (dir / "e3.veilmodel").string(), "pool", "3"), .generator_path = gen});
  CHECK(refused.status().code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace veil::engine

namespace veil::engine {
namespace {

TEST_CASE("the shipped encoder and generator load and render deterministically") {
  // The models are shipped in models/: missing ones are a broken checkout, not a reason to skip.
  REQUIRE(std::filesystem::exists(DefaultEncoderModelPath()));
  REQUIRE(std::filesystem::exists(DefaultGeneratorModelPath()));
  auto r = FaceRenderer::Create({});
  REQUIRE(r.ok());
  const auto crops = RandomCrops(2, 3);
  const auto codes = RandomCodes(2, 4);
  auto a = (*r)->Render(crops, codes);
  auto b = (*r)->Render(crops, codes);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  for (size_t i = 0; i < a->size(); ++i) CHECK(SameBits(a->at(i), b->at(i)));
  CHECK((*r)->FlopsPerFace() <= 1'800'000'000);
}

TEST_CASE("a generator file may be wider than the defaults (a G widened in training) up to the FLOP budget") {
  const ModelDir tmp("veil_width_test_");
  auto r = FaceRenderer::CreateUntrained(10);
  REQUIRE(r.ok());
  FaceRendererSaveInfo info;
  info.fp16 = false;
  REQUIRE((*r)->Save(tmp.enc, tmp.gen, info).ok());
  auto narrow = FaceRenderer::Create({.encoder_path = tmp.enc, .generator_path = tmp.gen});
  REQUIRE(narrow.ok());
  // The same file with its 64- and 128-pixel stages widened the way the trainer widens them.
  identity::Generator small, wide(identity::GeneratorOptions().ch64(64).ch128(32));
  REQUIRE(LoadModuleTensors(*small, *LoadModelFile(tmp.gen)).ok());
  REQUIRE(identity::WidenGenerator(*small, *wide).ok());
  identity::AttributeEncoder encoder;
  REQUIRE(LoadModuleTensors(*encoder, *LoadModelFile(tmp.enc)).ok());
  const std::string wide_enc = (tmp.dir / "e6.veilmodel").string(), wide_gen = (tmp.dir / "wide.veilmodel").string();
  REQUIRE(identity::SaveRendererModels(*encoder, *wide, wide_enc, wide_gen, info).ok());
  auto widened = FaceRenderer::Create({.encoder_path = wide_enc, .generator_path = wide_gen});
  REQUIRE(widened.ok());
  CHECK((*widened)->FlopsPerFace() > (*narrow)->FlopsPerFace());
  CHECK((*widened)->FlopsPerFace() <= 1'800'000'000);  // E + G within the budget, as above
  // It renders what the narrow file renders, to float rounding (the 8-bit pixels within 1).
  const auto crops = RandomCrops(2, 6);
  const auto codes = RandomCodes(2, 7);
  auto a = (*narrow)->Render(crops, codes);
  auto b = (*widened)->Render(crops, codes);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  for (size_t i = 0; i < a->size(); ++i) CHECK(cv::norm(a->at(i), b->at(i), cv::NORM_INF) <= 1.0);
  // Wider than the budget, narrower than 8, or not a whole number: refused, in the wording of every
  // integer model-file value (ParseInteger).
  const std::vector<std::pair<std::string, std::string>> bad_widths = {
      {"ch64", "96"}, {"ch128", "48"}, {"ch64", "6"}, {"ch128", "32x"}, {"ch64", "56.5"}};
  for (const auto& [key, bad] : bad_widths) {
    CAPTURE(bad);
    auto refused = FaceRenderer::Create(
        {.encoder_path = wide_enc, .generator_path = WithOption(wide_gen, (tmp.dir / "gbad.veilmodel").string(), key, bad)});
    CHECK(refused.status().code() == StatusCode::kInvalidArgument);
    CHECK(refused.status().message().find("generator option " + key + " must be a whole number in [8, ") != std::string::npos);
  }
}

}  // namespace
}  // namespace veil::engine
