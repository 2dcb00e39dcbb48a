// Files are committed where hard links do not exist (FAT, exFAT, some network shares): link()
// fails there with EPERM, and keys::MoveNoReplace falls back to rename(RENAME_NOREPLACE). No FAT
// mount is needed to test that: this binary defines link() itself, so that the keys library's calls
// reach this definition, which fails like FAT while a test asks it to and links as usual otherwise.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "test_util.h"
#include "veil/keys/fs.h"

namespace {
int g_link_errno = 0;  // non-zero: link() fails with it
int g_link_calls = 0;
}  // namespace

extern "C" int link(const char* from, const char* to) {
  ++g_link_calls;
  if (g_link_errno != 0) {
    errno = g_link_errno;
    return -1;
  }
  return static_cast<int>(::syscall(SYS_linkat, AT_FDCWD, from, AT_FDCWD, to, 0));
}

namespace {

// While alive, link() fails with `e` as it does on a file system without hard links.
struct NoHardLinks {
  explicit NoHardLinks(int e = EPERM) {
    g_link_errno = e;
    g_link_calls = 0;
  }
  ~NoHardLinks() { g_link_errno = 0; }
};

}  // namespace

using namespace veil;
using veil::testing::Slurp;
using veil::testing::TempDir;

TEST_CASE("without hard links a new file is still committed under its name and never replaces one") {
  for (int e : {EPERM, EOPNOTSUPP}) {
    INFO("link() fails with errno " << e);
    TempDir dir;
    const std::string path = dir / "out.png";
    NoHardLinks fat(e);
    REQUIRE(keys::WriteFileAtomic(path, "first", /*overwrite=*/false).ok());
    CHECK(g_link_calls >= 1);  // the fallback was taken, not skipped
    CHECK(Slurp(path) == "first");
    Status again = keys::WriteFileAtomic(path, "second", /*overwrite=*/false);
    CHECK(again.code() == StatusCode::kAlreadyExists);
    CHECK(Slurp(path) == "first");
    {
      auto pending = keys::PendingFile::Create(path);
      REQUIRE(pending.ok());
      REQUIRE(pending->Append("third").ok());
      CHECK(pending->Commit(path, /*overwrite=*/false).code() == StatusCode::kAlreadyExists);
      CHECK(Slurp(path) == "first");
    }
    int entries = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
      (void)entry;
      ++entries;
    }
    CHECK(entries == 1);  // no temporary file left behind
  }
}

TEST_CASE("a link() failure other than missing hard links is an error, not a fallback") {
  TempDir dir;
  const std::string from = dir / "a.tmp";
  veil::testing::Spit(from, "bytes");
  NoHardLinks full(ENOSPC);
  Status st = keys::MoveNoReplace(from, dir / "b");
  CHECK(st.code() == StatusCode::kIoError);
  CHECK_FALSE(keys::PathExists(dir / "b"));
  CHECK(keys::PathExists(from));
}

TEST_CASE("a key store works where hard links do not exist") {
  TempDir dir;
  NoHardLinks fat;
  auto store = veil::testing::MakeStore(dir.path());
  const std::string previous = Slurp(dir / keys::KeyStore::kStoreFile);
  g_link_calls = 0;
  REQUIRE(store->Rotate("default").ok());  // its save keeps the previous file as the backup: a copy here
  CHECK(g_link_calls >= 1);
  CHECK(Slurp(dir / keys::KeyStore::kBackupFile) == previous);
  store.reset();
  auto opened = veil::testing::OpenRw(dir.path());
  CHECK(opened->Info().keyrings[0].versions.size() == 2);
}
