// What unlocks a sealed Veil file (a key store or a principal's key file): a passphrase, stretched
// with Argon2id, or a 32-byte key file for services.
#pragma once

#include <cstdint>
#include <string>

#include "veil/keys/secret.h"
#include "veil/status.h"

namespace veil::keys {

// Argon2id cost. Defaults follow libsodium's "moderate" level (3 passes, 256 MiB): about a second
// here. Tests and scripts may lower them (minimum: 1 pass, 8 KiB); the chosen values are stored in
// the file header, so a file always opens with the cost it was made with.
struct KdfLimits {
  uint64_t opslimit = 3;
  uint64_t memlimit = 256ull << 20;
};

class Credential {
 public:
  static Credential FromPassphrase(SecretBytes passphrase);
  // Reads a key file holding exactly 32 bytes (InvalidArgument otherwise).
  static StatusOr<Credential> FromKeyFile(const std::string& path);
  static Credential FromRawKey(SecretBytes key32);
  // Writes a new random 32-byte key file (mode 0600); refuses to overwrite.
  static Status CreateKeyFile(const std::string& path);

  bool is_passphrase() const { return is_passphrase_; }
  const SecretBytes& secret() const { return secret_; }

 private:
  Credential(SecretBytes secret, bool is_passphrase) : secret_(std::move(secret)), is_passphrase_(is_passphrase) {}
  SecretBytes secret_;
  bool is_passphrase_ = true;
};

}  // namespace veil::keys
