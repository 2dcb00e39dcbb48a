#include <doctest/doctest.h>

#include "test_util.h"
#include "veil/keys/fs.h"
#include "veil/keys/secret.h"

using namespace veil;
using namespace veil::keys;

TEST_CASE("secret bytes compare in constant time and by value") {
  auto a = SecretBytes::Copy("abcd", 4);
  auto b = SecretBytes::Copy("abcd", 4);
  auto c = SecretBytes::Copy("abce", 4);
  CHECK(a.Equals(b));
  CHECK_FALSE(a.Equals(c));
  CHECK_FALSE(a.Equals(SecretBytes::Copy("abc", 3)));
}

TEST_CASE("random secrets differ and moved-from secrets are empty") {
  auto a = SecretBytes::Random(32);
  auto b = SecretBytes::Random(32);
  CHECK_FALSE(a.Equals(b));
  SecretBytes moved = std::move(a);
  CHECK(moved.size() == 32);
  CHECK(a.empty());  // NOLINT(bugprone-use-after-move): checking the moved-from state is the point
}

TEST_CASE("hex round trips and refuses non-hex") {
  CHECK(ToHex(std::string("\x00\xff\x10", 3)) == "00ff10");
  auto back = FromHex("00ff10");
  REQUIRE(back.ok());
  CHECK(*back == std::string("\x00\xff\x10", 3));
  CHECK(FromHex("abc").status().code() == StatusCode::kInvalidArgument);
  CHECK(FromHex("zz").status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("digests match known answers") {
  // SHA-256("abc") from FIPS 180-2.
  CHECK(ToHex(Sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // BLAKE2b-256("abc") from RFC 7693 test vectors (256-bit variant).
  CHECK(ToHex(Blake2b256("abc")) == "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
}

TEST_CASE("secret expansion is deterministic per key and context") {
  auto k1 = SecretBytes::Copy(std::string(32, 'a').data(), 32);
  auto k2 = SecretBytes::Copy(std::string(32, 'b').data(), 32);
  auto a = ExpandSecret(k1, "flow", 256);
  CHECK(a.size() == 256);
  CHECK(a.Equals(ExpandSecret(k1, "flow", 256)));
  CHECK_FALSE(a.Equals(ExpandSecret(k2, "flow", 256)));
  CHECK_FALSE(a.Equals(ExpandSecret(k1, "other", 256)));
  // A prefix of a longer expansion is the shorter expansion (a keystream).
  auto longer = ExpandSecret(k1, "flow", 512);
  CHECK(std::string(longer.view(SecretAccess::Get()).substr(0, 256)) == std::string(a.view(SecretAccess::Get())));
}

TEST_CASE("a file's SHA-256 read in pieces equals the SHA-256 of its bytes, and a missing file is NotFound") {
  testing::TempDir dir;
  std::string bytes;
  for (int i = 0; i < (3 << 20) + 17; ++i) bytes.push_back(static_cast<char>((i * 131) ^ (i >> 9)));  // > 3 pieces
  REQUIRE(WriteFileAtomic(dir / "big", bytes, false).ok());
  REQUIRE(WriteFileAtomic(dir / "empty", "", false).ok());
  auto big = Sha256File(dir / "big");
  REQUIRE(big.ok());
  CHECK(*big == Sha256(bytes));
  CHECK(ToHex(*Sha256File(dir / "empty")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Sha256File(dir / "missing").status().code() == StatusCode::kNotFound);
  CHECK(Sha256File(dir.path()).status().code() == StatusCode::kInvalidArgument);
}
