// A principal's own Ed25519 signing key, kept in its own passphrase-sealed file that the principal
// holds (the key store only knows the public half).
#pragma once

#include <string>
#include <string_view>

#include "veil/keys/credential.h"
#include "veil/keys/secret.h"
#include "veil/status.h"

namespace veil::keys {

class PrincipalKey {
 public:
  static PrincipalKey Generate(const std::string& name);
  // Opens a principal key file. Unauthenticated on a wrong passphrase, DataLoss if corrupt.
  static StatusOr<PrincipalKey> Load(const std::string& path, const Credential& credential);
  // Writes the sealed key file atomically; never overwrites an existing file.
  Status Save(const std::string& path, const Credential& credential, const KdfLimits& limits) const;

  const std::string& name() const { return name_; }
  const std::string& public_key() const { return public_key_; }  // raw 32 bytes
  // Ed25519 signature over domain | message.
  std::string Sign(std::string_view domain, std::string_view message) const;

 private:
  PrincipalKey() = default;
  std::string name_;
  std::string public_key_;
  SecretBytes secret_key_;  // 64 bytes
};

// Ed25519 signature over domain | message with a 64-byte secret key.
std::string SignWithDomain(std::string_view domain, std::string_view message, const SecretBytes& secret_key);

// Ed25519 verification of a signature over domain | message.
bool VerifySignature(std::string_view domain, std::string_view message, std::string_view signature,
                     std::string_view public_key);

}  // namespace veil::keys
