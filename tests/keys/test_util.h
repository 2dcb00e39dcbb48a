// Shared helpers for the keys/ tests: temporary folders, fast credentials, small stores.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "veil/keys/credential.h"
#include "veil/keys/key_store.h"
#include "veil/keys/principal_key.h"

namespace veil::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "veil-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A fixed 32-byte key: opening is instant, so tests can open a store thousands of times.
inline keys::Credential TestKey(char fill = 7) {
  std::string k(32, fill);
  return keys::Credential::FromRawKey(keys::SecretBytes::Copy(k.data(), k.size()));
}

inline keys::Credential TestPassphrase(const std::string& text) {
  return keys::Credential::FromPassphrase(keys::SecretBytes::Copy(text.data(), text.size()));
}

// The cheapest Argon2id cost libsodium allows.
inline keys::KdfLimits FastKdf() { return keys::KdfLimits{1, 8192}; }

inline std::unique_ptr<keys::KeyStore> MakeStore(const std::string& dir, uint32_t approvals = 2) {
  auto store = keys::KeyStore::Create(dir, TestKey(), FastKdf(), "admin", "default", approvals);
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  return std::move(store.value());
}

inline std::unique_ptr<keys::KeyStore> OpenRw(const std::string& dir) {
  auto store = keys::KeyStore::Open(dir, TestKey(), keys::KeyStore::Access::kReadWrite, "admin");
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  return std::move(store.value());
}

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void Spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// Flips one bit near the end of the store file (inside its sealed part) and returns the damaged bytes.
inline std::string DamageStoreFile(const std::string& dir) {
  const std::string path = dir + "/" + keys::KeyStore::kStoreFile;
  std::string bytes = Slurp(path);
  REQUIRE(bytes.size() > 5);
  bytes[bytes.size() - 5] ^= 0x40;
  Spit(path, bytes);
  return bytes;
}

// The store file as it was before each of two logged changes: approver bob added, then revoked.
struct BobGenerations {
  std::string before_added;
  std::string before_revoked;
};

inline BobGenerations MakeStoreThenAddAndRevokeBob(const std::string& dir) {
  BobGenerations files;
  auto store = MakeStore(dir);
  files.before_added = Slurp(dir + "/" + keys::KeyStore::kStoreFile);
  REQUIRE(store->AddPrincipal("bob", keys::Role::kApprover, keys::PrincipalKey::Generate("bob").public_key()).ok());
  files.before_revoked = Slurp(dir + "/" + keys::KeyStore::kStoreFile);
  REQUIRE(store->RevokePrincipal("bob").ok());
  return files;
}

}  // namespace veil::testing
