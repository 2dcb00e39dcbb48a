// veil eval's informed attacker (tools/eval_attack.h) on synthetic codes whose answer is known.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <random>

#include "eval_attack.h"

namespace {

using veil::engine::Descriptor;

std::vector<Descriptor> Random(std::mt19937& rng, size_t n, float scale) {
  std::normal_distribution<float> g(0.0f, scale);
  std::vector<Descriptor> v(n);
  for (auto& d : v)
    for (float& x : d) x = g(rng);
  return v;
}

// anonymized = mix * original + (1 - mix) * an unrelated code (what the key hides), plus a fixed
// linear scramble the attacker has to learn.
std::vector<Descriptor> Anonymize(std::mt19937& rng, const std::vector<Descriptor>& originals, float mix) {
  std::vector<Descriptor> other = Random(rng, originals.size(), 0.12f), out(originals.size());
  for (size_t i = 0; i < originals.size(); ++i) {
    for (size_t k = 0; k < 128; ++k) {
      const size_t j = (k * 37 + 11) % 128;  // a permutation with a sign flip: linear, learnable
      out[i][k] = (k % 2 ? -1.0f : 1.0f) * (mix * originals[i][j] + (1 - mix) * other[i][j]);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("the informed attacker re-identifies anonymized codes that keep a learnable trace of the original") {
  std::mt19937 rng(7);
  const auto train = Random(rng, 400, 0.12f), test = Random(rng, 200, 0.12f);
  const auto rate = veil::cli::LinearAttackRankOne(Anonymize(rng, train, 0.5f), train, Anonymize(rng, test, 0.5f), test);
  REQUIRE(rate.has_value());
  CHECK(*rate > 0.75);  // chance: 1 / 200
}

TEST_CASE("the informed attacker stays near chance when the anonymized code is independent of the original") {
  std::mt19937 rng(8);
  const auto train = Random(rng, 400, 0.12f), test = Random(rng, 200, 0.12f);
  const auto rate = veil::cli::LinearAttackRankOne(Anonymize(rng, train, 0.0f), train, Anonymize(rng, test, 0.0f), test);
  REQUIRE(rate.has_value());
  CHECK(*rate < 0.05);  // chance: 1 / 200
}

TEST_CASE("the informed attacker reports nothing rather than guessing with too few or mismatched pairs") {
  std::mt19937 rng(9);
  const auto a = Random(rng, 5, 0.12f), b = Random(rng, 5, 0.12f);
  CHECK_FALSE(veil::cli::LinearAttackRankOne(a, b, a, b).has_value());
  const auto c = Random(rng, 50, 0.12f);
  CHECK(veil::cli::LinearAttackRankOne(c, c, a, a) == 1.0);  // enough pairs: "no anonymization" is found out
  CHECK_FALSE(veil::cli::LinearAttackRankOne(c, Random(rng, 49, 0.12f), a, a).has_value());
  CHECK_FALSE(veil::cli::LinearAttackRankOne(c, c, a, Random(rng, 4, 0.12f)).has_value());
}
