#include <doctest/doctest.h>

#include "test_util.h"
#include "veil/keys/aead.h"

using namespace veil;
using namespace veil::keys;
using veil::testing::MakeStore;
using veil::testing::TempDir;

TEST_CASE("a sealed payload names its key and opens only with that key and associated data") {
  TempDir dir;
  auto store = MakeStore(dir.path());
  auto v1 = store->KeyForNewWork("default", "t");
  REQUIRE(v1.ok());
  auto sealed = SealPayload(*v1, ScopeKind::kFace, "img#0", "original pixels", "manifest-1");
  REQUIRE(sealed.ok());
  auto ref = PeekSealedRef(*sealed);
  REQUIRE(ref.ok());
  CHECK(ref->keyring == "default");
  CHECK(ref->version == 1);
  CHECK(ref->scope == ScopeKind::kFace);
  CHECK(ref->scope_id == "img#0");
  auto plain = OpenPayload(*v1, *sealed, "manifest-1");
  REQUIRE(plain.ok());
  CHECK(*plain == "original pixels");

  CHECK(OpenPayload(*v1, *sealed, "manifest-2").status().code() == StatusCode::kUnauthenticated);
  REQUIRE(store->Rotate("default").ok());
  auto v2 = store->KeyForNewWork("default", "t");
  REQUIRE(v2.ok());
  CHECK(OpenPayload(*v2, *sealed, "manifest-1").status().message() == "decryption failed");
}

TEST_CASE("a byte flipped anywhere in a sealed payload makes it fail to open") {
  TempDir dir;
  auto store = MakeStore(dir.path());
  auto key = store->KeyForNewWork("default", "t");
  REQUIRE(key.ok());
  auto sealed = SealPayload(*key, ScopeKind::kImage, "x", "secret face", "ad");
  REQUIRE(sealed.ok());
  for (size_t i = 0; i < sealed->size(); ++i) {
    std::string bad = *sealed;
    bad[i] ^= 0x20;
    INFO("offset " << i);
    CHECK_FALSE(OpenPayload(*key, bad, "ad").ok());
  }
  for (size_t n = 0; n < sealed->size(); ++n) CHECK_FALSE(OpenPayload(*key, sealed->substr(0, n), "ad").ok());
}

TEST_CASE("two seals of the same payload differ (fresh nonces)") {
  TempDir dir;
  auto store = MakeStore(dir.path());
  auto key = store->KeyForNewWork("default", "t");
  REQUIRE(key.ok());
  CHECK(*SealPayload(*key, ScopeKind::kFace, "a", "p", "") != *SealPayload(*key, ScopeKind::kFace, "a", "p", ""));
}

TEST_CASE("synthetic nonces make sealing reproducible and still bind the associated data") {
  TempDir dir;
  auto store = MakeStore(dir.path());
  auto key = store->KeyForNewWork("default", "t");
  REQUIRE(key.ok());
  auto a = SealPayload(*key, ScopeKind::kFace, "a", "pixels", "ad1", true);
  auto b = SealPayload(*key, ScopeKind::kFace, "a", "pixels", "ad1", true);
  auto c = SealPayload(*key, ScopeKind::kFace, "a", "pixels", "ad2", true);
  REQUIRE((a.ok() && b.ok() && c.ok()));
  CHECK(*a == *b);
  CHECK(*a != *c);
  CHECK(*OpenPayload(*key, *a, "ad1") == "pixels");
  CHECK_FALSE(OpenPayload(*key, *a, "ad2").ok());
}
