#include <doctest/doctest.h>

#include "test_util.h"
#include "veil/keys/fs.h"

using namespace veil;
using namespace veil::keys;
using veil::testing::MakeStore;
using veil::testing::TempDir;
using veil::testing::TestKey;

namespace {

// A small store whose file we then damage; the backup is removed so that only the file decides.
std::string SmallStoreBytes(const TempDir& dir) {
  MakeStore(dir.path());
  std::filesystem::remove(dir / KeyStore::kBackupFile);
  return veil::testing::Slurp(dir / KeyStore::kStoreFile);
}

Status OpenStatus(const TempDir& dir) {
  auto s = KeyStore::Open(dir.path(), TestKey(), KeyStore::Access::kReadOnly, "x");
  return s.ok() ? Status::Ok() : s.status();
}

}  // namespace

TEST_CASE("a byte flipped at any offset of the key store file is detected") {
  TempDir dir;
  const std::string good = SmallStoreBytes(dir);
  REQUIRE(good.size() > 100);
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ (1 << (i % 8)));
    veil::testing::Spit(dir / KeyStore::kStoreFile, bad);
    Status st = OpenStatus(dir);
    INFO("offset " << i << " of " << good.size());
    CHECK_FALSE(st.ok());
    // Every refusal is one of the documented data errors, never a crash or an internal error.
    CHECK((st.code() == StatusCode::kUnauthenticated || st.code() == StatusCode::kDataLoss ||
           st.code() == StatusCode::kUnsupported || st.code() == StatusCode::kInvalidArgument));
  }
  veil::testing::Spit(dir / KeyStore::kStoreFile, good);
  CHECK(OpenStatus(dir).ok());
}

TEST_CASE("a key store file truncated at any length is refused") {
  TempDir dir;
  const std::string good = SmallStoreBytes(dir);
  for (size_t n = 0; n < good.size(); ++n) {
    veil::testing::Spit(dir / KeyStore::kStoreFile, good.substr(0, n));
    INFO("length " << n);
    CHECK_FALSE(OpenStatus(dir).ok());
  }
}

TEST_CASE("a file that is not a key store is refused with data loss") {
  TempDir dir;
  veil::testing::Spit(dir / KeyStore::kStoreFile, "hello, I am a JPEG");
  CHECK(OpenStatus(dir).code() == StatusCode::kDataLoss);
}

TEST_CASE("a principal key file is not accepted as a key store") {
  TempDir dir;
  auto key = PrincipalKey::Generate("p");
  REQUIRE(key.Save(dir / KeyStore::kStoreFile, veil::testing::TestPassphrase("pw"), veil::testing::FastKdf()).ok());
  CHECK(OpenStatus(dir).code() == StatusCode::kInvalidArgument);
}

TEST_CASE("saves leave the previous version as the last-known-good backup") {
  TempDir dir;
  auto store = MakeStore(dir.path());
  const std::string first = veil::testing::Slurp(dir / KeyStore::kStoreFile);
  REQUIRE(store->Rotate("default").ok());
  CHECK(veil::testing::Slurp(dir / KeyStore::kBackupFile) == first);
  CHECK(veil::testing::Slurp(dir / KeyStore::kStoreFile) != first);
}
