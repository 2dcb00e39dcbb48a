#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

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

TEST_CASE("a SHA-256 fed in pieces equals the SHA-256 of the whole, at every point along the way") {
  const std::string data = "the quick brown fox jumps over the lazy dog, again and again";
  Sha256Hasher h;
  CHECK(h.Digest() == Sha256(""));
  for (size_t at = 0; at < data.size(); at += 7) {
    h.Update(std::string_view(data).substr(at, 7));
    CHECK(h.Digest() == Sha256(data.substr(0, std::min(data.size(), at + 7))));
  }
  CHECK(h.bytes() == data.size());
}

TEST_CASE("a pending file appears only when committed, never replaces a file unless told to, and leaves nothing when dropped") {
  testing::TempDir dir;
  auto listing = [&] {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  };
  {
    auto f = PendingFile::Create(dir / "out");
    REQUIRE(f.ok());
    REQUIRE(f->Append("half").ok());
  }  // dropped before Commit: no file, no temporary file
  CHECK(listing().empty());
  {
    auto f = PendingFile::Create(dir / "out");
    REQUIRE(f.ok());
    REQUIRE(f->Append("first ").ok());
    REQUIRE(f->Append("version").ok());
    REQUIRE(f->Commit(dir / "out", false).ok());
  }
  CHECK(*ReadFile(dir / "out") == "first version");
  {
    auto f = PendingFile::Create(dir / "out");
    REQUIRE(f.ok());
    REQUIRE(f->Append("second").ok());
    CHECK(f->Commit(dir / "out", false).code() == StatusCode::kAlreadyExists);
  }
  CHECK(*ReadFile(dir / "out") == "first version");
  {
    auto f = PendingFile::Create(dir / "out");
    REQUIRE(f.ok());
    REQUIRE(f->Append("second").ok());
    REQUIRE(f->Commit(dir / "out", true).ok());
  }
  CHECK(*ReadFile(dir / "out") == "second");
  CHECK(listing() == std::vector<std::string>{"out"});
  {
    auto first = PendingFile::Create(dir / "out");
    auto second = PendingFile::Create(dir / "out");
    REQUIRE(first.ok());
    REQUIRE(second.ok());
    const std::string second_temp = second->temp_path();
    *first = std::move(*second);  // the first one's temporary file goes; the second one's lives on in it
    CHECK(first->temp_path() == second_temp);
    CHECK(listing().size() == 2);
    REQUIRE(first->Append("moved").ok());
  }
  CHECK(listing() == std::vector<std::string>{"out"});
}

TEST_CASE("writing a new file accepts an identical file already there and refuses a different one") {
  testing::TempDir dir;
  const std::string path = dir / "job.veil";
  bool created = false;
  REQUIRE(WriteNewFileOrSame(path, "manifest bytes", 0644, &created).ok());
  CHECK(created);
  CHECK(FileHolds(path, Sha256("manifest bytes"), 14));
  CHECK_FALSE(FileHolds(path, Sha256("manifest bytes"), 15));
  CHECK_FALSE(FileHolds(dir / "absent", Sha256(""), 0));
  // The same job run again, after being stopped before its last step: its own leftover is fine.
  REQUIRE(WriteNewFileOrSame(path, "manifest bytes", 0644, &created).ok());
  CHECK_FALSE(created);
  // Anything else there is never replaced.
  CHECK(WriteNewFileOrSame(path, "other bytes", 0644, &created).code() == StatusCode::kAlreadyExists);
  CHECK_FALSE(created);
  CHECK(*ReadFile(path) == "manifest bytes");
}

TEST_CASE("an interruption has its own status code, 13, named interrupted") {
  CHECK(static_cast<int>(CancelledError("stopped").code()) == 13);
  CHECK(CancelledError("stopped").ToString() == "interrupted: stopped");
}
