// The sealed-file container shared by the key store and principal key files (internal).
//
//   "VEILSEAL" | u32 LE header length | SealedHeader | 24-byte nonce | XChaCha20-Poly1305 ciphertext
// The associated data is everything before the nonce, so the clear header is authenticated too.
#pragma once

#include <string>
#include <string_view>

#include "veil/keys/credential.h"
#include "veil/keys/secret.h"
#include "veil/proto/keystore.pb.h"
#include "veil/status.h"

namespace veil::keys::internal {

inline constexpr std::string_view kSealMagic = "VEILSEAL";
inline constexpr uint32_t kSealFormatVersion = 1;
// A key store whose policy an older Veil would not enforce (a keyring with requester_signs) is
// written as version 2, so that an older Veil refuses it (Unsupported) instead of granting without.
inline constexpr uint32_t kSealFormatVersionEnforcedPolicy = 2;
inline constexpr size_t kMaxSealHeader = 4096;

struct SealedFile {
  proto::SealedHeader header;
  std::string associated_data;  // magic | length | header bytes
  std::string nonce;
  std::string ciphertext;
};

// Checks magic, version and sizes; does not decrypt. DataLoss or Unsupported on bad input.
StatusOr<SealedFile> ParseSealed(std::string_view bytes);

// New KDF parameters (fresh salt) for a credential.
proto::KdfParams NewKdfParams(const Credential& credential, const KdfLimits& limits);

// The 32-byte file key. Unauthenticated when the credential kind does not match the file.
StatusOr<SecretBytes> DeriveFileKey(const Credential& credential, const proto::KdfParams& kdf);

// Decrypts into locked memory. Unauthenticated ("wrong passphrase or key, or the file was altered")
// on failure; nothing is released before the tag verifies.
StatusOr<SecretBytes> OpenSealed(const SealedFile& file, const SecretBytes& file_key);

// Encrypts `plaintext` under `file_key` with a fresh nonce.
std::string Seal(const proto::SealedHeader& header, const SecretBytes& file_key, const SecretBytes& plaintext);

// Serializes a message holding secrets into locked memory and wipes the serialization buffer.
SecretBytes SerializeSecret(const google::protobuf::MessageLite& message);

}  // namespace veil::keys::internal
