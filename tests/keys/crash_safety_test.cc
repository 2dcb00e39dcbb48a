// kill -9 in the middle of saves and appends, a few hundred times: the store and the log must
// always open and verify, with every acknowledged change present.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>

#include "test_util.h"
#include "veil/keys/audit_log.h"

using namespace veil;
using namespace veil::keys;
using veil::testing::MakeStore;
using veil::testing::TempDir;
using veil::testing::TestKey;

namespace {

// Child: rotate forever, reporting each rotation only after Rotate() returned (acknowledged).
// Every third rotation also destroys the version before it (the save that rewrites the backup).
[[noreturn]] void RotateForever(const std::string& dir, int ack_fd) {
  for (;;) {
    auto store = KeyStore::Open(dir, TestKey(), KeyStore::Access::kReadWrite, "crash-test");
    if (!store.ok()) _exit(3);
    auto v = (*store)->Rotate("default");
    if (!v.ok()) _exit(4);
    if (*v % 3 == 0 && !(*store)->SetKeyStatus("default", *v - 1, KeyStatus::kDestroyed).ok()) _exit(6);
    store->reset();  // release the lock before acknowledging, like a process that exits
    uint32_t version = *v;
    if (write(ack_fd, &version, sizeof version) != sizeof version) _exit(5);
  }
}

}  // namespace

TEST_CASE("crash: kill -9 during saves and appends never loses an acknowledged change") {
  TempDir dir;
  MakeStore(dir.path());
  std::mt19937 rng(12345);
  uint32_t acked = 1;
  int child_failures = 0;
  const int kIterations = 300;
  for (int iter = 0; iter < kIterations; ++iter) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      RotateForever(dir.path(), fds[1]);
    }
    close(fds[1]);
    uint32_t v = 0;
    // Wait for the first acknowledgement, then kill at a random moment of the following ones.
    if (read(fds[0], &v, sizeof v) == sizeof v) acked = std::max(acked, v);
    usleep(std::uniform_int_distribution<int>(0, 15000)(rng));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) ++child_failures;
    while (read(fds[0], &v, sizeof v) == sizeof v) acked = std::max(acked, v);
    close(fds[0]);

    auto store = KeyStore::Open(dir.path(), TestKey(), KeyStore::Access::kReadWrite, "checker");
    REQUIRE_MESSAGE(store.ok(), "iteration " << iter << ": " << store.status().ToString());
    auto info = (*store)->Info();
    const auto& versions = info.keyrings[0].versions;
    REQUIRE_MESSAGE(versions.size() >= acked, "iteration " << iter << ": acknowledged v" << acked << " is missing");
    for (uint32_t i = 0; i < versions.size(); ++i) REQUIRE(versions[i].version == i + 1);
  }
  CHECK(child_failures == 0);
  MESSAGE("acknowledged rotations: " << acked - 1 << " over " << kIterations << " kills");
  std::vector<AuditEntry> entries;
  auto sum = VerifyAuditLog(dir / KeyStore::kAuditFile, {}, &entries);
  REQUIRE_MESSAGE(sum.ok(), sum.status().ToString());
  CHECK(sum->record_count >= acked + 1);
  int torn = 0, interrupted = 0;
  int rotated = 0, destroyed = 0;  // changes the log records as done, less those it records as failed
  for (const auto& e : entries) {
    torn += e.event.action == AuditAction::kLogRecovered;
    const bool failed = e.event.outcome == AuditOutcome::kFailed;
    interrupted += failed;
    if (e.event.action == AuditAction::kKeyRotated) rotated += failed ? -1 : 1;
    if (e.event.action == AuditAction::kKeyDestroyed) destroyed += failed ? -1 : 1;
  }
  MESSAGE("kills that cut an audit append in half (set aside and recorded): " << torn);
  MESSAGE("kills between a change's record and its save (logged as failed by the next open): " << interrupted);
  // The log accounts for the store exactly: every change it records as done (and not as failed) is
  // in the store, and the store holds no change the log does not record.
  auto store = KeyStore::Open(dir.path(), TestKey(), KeyStore::Access::kReadOnly, "checker");
  REQUIRE(store.ok());
  const KeyStoreInfo info = (*store)->Info();
  const auto& versions = info.keyrings[0].versions;
  int destroyed_in_store = 0;
  for (const auto& v : versions) destroyed_in_store += v.status == KeyStatus::kDestroyed;
  CHECK(rotated == static_cast<int>(versions.size()) - 1);
  CHECK(destroyed == destroyed_in_store);
  CHECK(destroyed_in_store > 0);
}
