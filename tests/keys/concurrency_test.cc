// Two processes changing the store and appending to the log at once: nothing is lost.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"
#include "veil/keys/audit_log.h"

using namespace veil;
using namespace veil::keys;
using veil::testing::MakeStore;
using veil::testing::TempDir;
using veil::testing::TestKey;

TEST_CASE("concurrent writers in two processes lose no change and no audit record") {
  TempDir dir;
  {
    auto store = MakeStore(dir.path());
    REQUIRE(store->CreateKeyring("a", 1).ok());
    REQUIRE(store->CreateKeyring("b", 1).ok());
  }
  const uint64_t before = VerifyAuditLog(dir / KeyStore::kAuditFile, {})->record_count;
  const int kRounds = 40;
  pid_t kids[2];
  for (int k = 0; k < 2; ++k) {
    kids[k] = fork();
    REQUIRE(kids[k] >= 0);
    if (kids[k] == 0) {
      const std::string ring = k == 0 ? "a" : "b";
      for (int i = 0; i < kRounds; ++i) {
        auto store = KeyStore::Open(dir.path(), TestKey(), KeyStore::Access::kReadWrite, "writer-" + ring);
        if (!store.ok() || !(*store)->Rotate(ring).ok()) _exit(1);
        if (i % 10 == 0 && !(*store)->Log(AuditAction::kKeyUsed, AuditOutcome::kSuccess, ring, "tick").ok()) _exit(2);
      }
      _exit(0);
    }
  }
  for (pid_t pid : kids) {
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  auto store = KeyStore::Open(dir.path(), TestKey(), KeyStore::Access::kReadOnly, "checker");
  REQUIRE(store.ok());
  for (const auto& ring : (*store)->Info().keyrings) {
    if (ring.name == "default") continue;
    CHECK(ring.versions.size() == kRounds + 1);
    CHECK(ring.primary_version == kRounds + 1);
  }
  auto sum = VerifyAuditLog(dir / KeyStore::kAuditFile, {});
  REQUIRE(sum.ok());
  CHECK(sum->record_count == before + 2 * kRounds + 2 * (kRounds / 10));
}
