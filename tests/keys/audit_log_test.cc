#include <doctest/doctest.h>

#include "test_util.h"
#include "veil/keys/audit_log.h"
#include "veil/keys/fs.h"

using namespace veil;
using namespace veil::keys;
using veil::testing::MakeStore;
using veil::testing::OpenRw;
using veil::testing::TempDir;

namespace {

// A store with a few records; returns the log path.
std::string SmallLog(const TempDir& dir, int rotations = 3) {
  auto store = MakeStore(dir.path());
  for (int i = 0; i < rotations; ++i) REQUIRE(store->Rotate("default").ok());
  return dir / KeyStore::kAuditFile;
}

// Byte offsets of every record frame (u32 length + body) after the header.
std::vector<std::pair<size_t, size_t>> Frames(const std::string& log) {
  auto u32 = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(log[at + i])) << (8 * i);
    return v;
  };
  std::vector<std::pair<size_t, size_t>> frames;
  size_t pos = 8 + 4 + u32(8);
  while (pos < log.size()) {
    size_t len = 4 + u32(pos);
    frames.push_back({pos, len});
    pos += len;
  }
  return frames;
}

}  // namespace

TEST_CASE("a fresh audit log verifies and counts its records") {
  TempDir dir;
  auto path = SmallLog(dir);
  auto sum = VerifyAuditLog(path, {});
  REQUIRE(sum.ok());
  CHECK(sum->record_count == 5);
}

TEST_CASE("a byte flipped at any offset of the audit log is detected") {
  TempDir dir;
  auto path = SmallLog(dir, 1);
  const std::string good = veil::testing::Slurp(path);
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ (1 << (i % 8)));
    INFO("offset " << i << " of " << good.size());
    CHECK_FALSE(VerifyAuditLogBytes(bad, {}).ok());
  }
}

TEST_CASE("an audit log cut inside a record is refused") {
  TempDir dir;
  auto path = SmallLog(dir, 1);
  const std::string good = veil::testing::Slurp(path);
  auto frames = Frames(good);
  for (size_t n = 0; n < good.size(); ++n) {
    bool at_boundary = false;
    for (auto [at, len] : frames) at_boundary |= (n == at);
    if (at_boundary) continue;  // whole-record truncation is the checkpoint's job (next test)
    INFO("length " << n);
    CHECK_FALSE(VerifyAuditLogBytes(good.substr(0, n), {}).ok());
  }
}

TEST_CASE("removing whole records from the end is caught by a checkpoint") {
  TempDir dir;
  std::string checkpoint;
  {
    auto store = MakeStore(dir.path());
    REQUIRE(store->Rotate("default").ok());
    auto cp = store->ExportCheckpoint();
    REQUIRE(cp.ok());
    checkpoint = *cp;
    REQUIRE(store->Rotate("default").ok());
  }
  const std::string log = veil::testing::Slurp(dir / KeyStore::kAuditFile);
  AuditVerifyOptions with_cp;
  with_cp.checkpoint = checkpoint;
  auto ok = VerifyAuditLogBytes(log, with_cp);
  REQUIRE(ok.ok());
  CHECK(ok->checkpoint_count == 4);
  auto frames = Frames(log);
  for (size_t keep = 0; keep < frames.size(); ++keep) {
    size_t cut = keep < frames.size() ? frames[keep].first : log.size();
    auto st = VerifyAuditLogBytes(log.substr(0, cut), with_cp);
    INFO("records kept " << keep);
    if (keep >= 4) CHECK(st.ok());
    else CHECK(st.status().code() == StatusCode::kDataLoss);
  }
}

TEST_CASE("deleted or reordered audit records are detected") {
  TempDir dir;
  auto path = SmallLog(dir, 3);
  const std::string log = veil::testing::Slurp(path);
  auto f = Frames(log);
  REQUIRE(f.size() == 5);
  auto frame = [&](int i) { return log.substr(f[i].first, f[i].second); };
  const std::string head = log.substr(0, f[0].first);
  std::string deleted = head + frame(0) + frame(1) + frame(3) + frame(4);
  CHECK(VerifyAuditLogBytes(deleted, {}).status().code() == StatusCode::kDataLoss);
  std::string swapped = head + frame(0) + frame(2) + frame(1) + frame(3) + frame(4);
  CHECK(VerifyAuditLogBytes(swapped, {}).status().code() == StatusCode::kDataLoss);
  std::string duplicated = head + frame(0) + frame(1) + frame(1) + frame(2) + frame(3) + frame(4);
  CHECK(VerifyAuditLogBytes(duplicated, {}).status().code() == StatusCode::kDataLoss);
}

TEST_CASE("a log signed by another key fails when the key is pinned") {
  TempDir a, b;
  auto pa = SmallLog(a, 0);
  auto pb = SmallLog(b, 0);
  auto key_b = KeyStore::PeekLogPublicKey(b.path());
  REQUIRE(key_b.ok());
  AuditVerifyOptions pinned;
  pinned.expected_public_key = *key_b;
  CHECK(VerifyAuditLog(pb, pinned).ok());
  CHECK(VerifyAuditLog(pa, pinned).status().code() == StatusCode::kUnauthenticated);
  pinned.expected_public_key = key_b->substr(0, 20);  // a pinned key of the wrong length is no match (the over-read it was shows under CI's ASan run)
  CHECK(VerifyAuditLog(pb, pinned).status().code() == StatusCode::kUnauthenticated);
}

TEST_CASE("a forged checkpoint is refused") {
  TempDir dir;
  auto store = MakeStore(dir.path());
  auto cp = store->ExportCheckpoint();
  REQUIRE(cp.ok());
  std::string bad = *cp;
  bad[bad.size() - 3] ^= 1;  // inside the signature
  CHECK_FALSE(ReadCheckpoint(bad).ok());
  CHECK(ReadCheckpoint(*cp).ok());
  CHECK_FALSE(ReadCheckpoint("garbage").ok());
}

TEST_CASE("an unfinished append is set aside, recorded, and the log verifies again") {
  TempDir dir;
  auto path = SmallLog(dir, 1);
  std::string log = veil::testing::Slurp(path);
  std::string torn = log + std::string("\x40\x00\x00\x00partial", 11);
  veil::testing::Spit(path, torn);
  auto broken = VerifyAuditLog(path, {});
  CHECK(broken.status().code() == StatusCode::kDataLoss);
  CHECK(broken.status().message().find("unfinished") != std::string::npos);
  {
    auto store = OpenRw(dir.path());  // a writer repairs under the lock
    REQUIRE(store->Rotate("default").ok());
  }
  std::vector<AuditEntry> entries;
  REQUIRE(VerifyAuditLog(path, {}, &entries).ok());
  REQUIRE(entries.size() == 5);
  CHECK(entries[3].event.action == AuditAction::kLogRecovered);
  CHECK(entries[3].event.target_digests[0] == Sha256(std::string("\x40\x00\x00\x00partial", 11)));
  bool aside_found = false;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) {
    aside_found |= e.path().filename().string().rfind("audit.log.torn-", 0) == 0;
  }
  CHECK(aside_found);
}

TEST_CASE("a writer refuses to append to a tampered log") {
  TempDir dir;
  auto path = SmallLog(dir, 1);
  std::string log = veil::testing::Slurp(path);
  log[log.size() - 10] ^= 1;
  veil::testing::Spit(path, log);
  auto store = KeyStore::Open(dir.path(), veil::testing::TestKey(), KeyStore::Access::kReadWrite, "x");
  CHECK(store.status().code() == StatusCode::kDataLoss);
}

TEST_CASE("records cut from the log's end after the store's last change are caught by the head file every append writes") {
  TempDir dir;
  const std::string path = dir / KeyStore::kAuditFile;
  const std::string head_path = dir / KeyStore::kAuditHeadFile;
  uintmax_t before_restores = 0;
  {
    auto store = MakeStore(dir.path());
    before_restores = std::filesystem::file_size(path);
    // Records that change nothing in the store file (restore outcomes), so its own count misses them.
    REQUIRE(store->Log(AuditAction::kRestorePerformed, AuditOutcome::kFailed, "photo.png", "wrong key").ok());
    REQUIRE(store->Log(AuditAction::kRestorePerformed, AuditOutcome::kSuccess, "photo.png", "", {}, "default", 1).ok());
  }
  AuditVerifyOptions with_head;
  with_head.head = veil::testing::Slurp(head_path);
  auto whole = VerifyAuditLog(path, with_head);
  REQUIRE(whole.ok());
  CHECK(whole->head_count == whole->record_count);
  std::filesystem::resize_file(path, before_restores);
  REQUIRE(VerifyAuditLog(path, {}).ok());  // on its own the shorter log still verifies
  auto cut = VerifyAuditLog(path, with_head);
  CHECK(cut.status().code() == StatusCode::kDataLoss);
  CHECK(cut.status().message().find("its head file saw") != std::string::npos);
  auto opened = KeyStore::Open(dir.path(), veil::testing::TestKey(), KeyStore::Access::kReadWrite, "x");
  CHECK(opened.status().code() == StatusCode::kDataLoss);
  CHECK(opened.status().message().find("cut short") != std::string::npos);
  // Another store's head file proves nothing about this log: refused as tampering too.
  TempDir other;
  { MakeStore(other.path()); }
  veil::testing::Spit(head_path, veil::testing::Slurp(other / KeyStore::kAuditHeadFile));
  auto foreign = KeyStore::Open(dir.path(), veil::testing::TestKey(), KeyStore::Access::kReadWrite, "x");
  CHECK(foreign.status().code() == StatusCode::kDataLoss);
}

TEST_CASE("a missing head file is logged by the next writer, which writes it again") {
  TempDir dir;
  const std::string path = SmallLog(dir, 1);
  const std::string head_path = dir / KeyStore::kAuditHeadFile;
  std::filesystem::remove(head_path);
  {
    auto store = OpenRw(dir.path());
    REQUIRE(store->notices().size() == 1);
    CHECK(store->notices()[0].find("head file") != std::string::npos);
  }
  std::vector<AuditEntry> entries;
  AuditVerifyOptions with_head;
  with_head.head = veil::testing::Slurp(head_path);
  auto summary = VerifyAuditLog(path, with_head, &entries);
  REQUIRE(summary.ok());
  CHECK(summary->head_count == entries.size());
  CHECK(entries.back().event.action == AuditAction::kLogRecovered);
  CHECK(entries.back().event.target == KeyStore::kAuditHeadFile);
  CHECK(entries.back().event.reason.find("head file was missing") != std::string::npos);
  auto again = OpenRw(dir.path());  // found this time: nothing more to report
  CHECK(again->notices().empty());
}

TEST_CASE("a damaged, emptied or replaced head file is refused as damage, not trusted or skipped") {
  TempDir dir;
  const std::string path = SmallLog(dir, 1);
  const std::string head_path = dir / KeyStore::kAuditHeadFile;
  const std::string good = veil::testing::Slurp(head_path);
  auto refused = [&](const char* what) {
    INFO(what);
    auto opened = KeyStore::Open(dir.path(), veil::testing::TestKey(), KeyStore::Access::kReadWrite, "x");
    CHECK(opened.status().code() == StatusCode::kDataLoss);
    CHECK(opened.status().message().find("head file") != std::string::npos);
    AuditVerifyOptions options;
    auto head = ReadAuditHeadFile(head_path);
    if (head.ok()) {
      options.head = *head;
      CHECK(VerifyAuditLog(path, options).status().code() == StatusCode::kDataLoss);
    } else {
      CHECK(head.status().code() == StatusCode::kDataLoss);
    }
  };
  for (size_t at : {size_t{3}, good.size() / 2, good.size() - 5}) {
    std::string flipped = good;
    flipped[at] ^= 1;
    veil::testing::Spit(head_path, flipped);
    refused("a byte flipped");
  }
  veil::testing::Spit(head_path, "");
  refused("emptied");
  veil::testing::Spit(head_path, std::string(5000, 'x'));
  refused("too large");
  std::filesystem::remove(head_path);
  std::filesystem::create_directory(head_path);
  refused("a folder");
  std::filesystem::remove(head_path);
  std::filesystem::create_symlink(dir / "nowhere", head_path);
  refused("a dangling link");
  std::filesystem::remove(head_path);
  veil::testing::Spit(head_path, good);
  CHECK(KeyStore::Open(dir.path(), veil::testing::TestKey(), KeyStore::Access::kReadWrite, "x").ok());
}

TEST_CASE("head files left by a killed append are swept by the next writer") {
  TempDir dir;
  SmallLog(dir, 1);
  const std::string leftover = dir / (std::string(KeyStore::kAuditHeadFile) + ".tmp.123.456");
  veil::testing::Spit(leftover, "half a head");
  OpenRw(dir.path());
  CHECK_FALSE(std::filesystem::exists(leftover));
}

TEST_CASE("an open refused after a torn append writes no head file, so the next accepted open still logs it missing") {
  TempDir dir;
  const auto files = veil::testing::MakeStoreThenAddAndRevokeBob(dir.path());
  const std::string store_file = dir / KeyStore::kStoreFile;
  const std::string path = dir / KeyStore::kAuditFile;
  const std::string head_path = dir / KeyStore::kAuditHeadFile;
  const std::string current = veil::testing::Slurp(store_file);
  veil::testing::Spit(path, veil::testing::Slurp(path) + std::string("\x40\x00\x00\x00partial", 11));
  std::filesystem::remove(head_path);
  veil::testing::Spit(store_file, files.before_added);  // two changes back: refused
  auto refused = KeyStore::Open(dir.path(), veil::testing::TestKey(), KeyStore::Access::kReadWrite, "x");
  REQUIRE_FALSE(refused.ok());
  CHECK_FALSE(std::filesystem::exists(head_path));
  veil::testing::Spit(store_file, current);
  {
    auto store = OpenRw(dir.path());
    REQUIRE(store->notices().size() == 1);
    CHECK(store->notices()[0].find("head file") != std::string::npos);
  }
  std::vector<AuditEntry> entries;
  REQUIRE(VerifyAuditLog(path, {}, &entries).ok());
  CHECK(entries.back().event.action == AuditAction::kLogRecovered);
  CHECK(entries.back().event.target == KeyStore::kAuditHeadFile);
  CHECK(std::filesystem::exists(head_path));
}
