// Decoding of the key store body (internal; shared by KeyStore and the fuzz target).
#pragma once

#include <map>
#include <string>
#include <utility>

#include "sealed_file.h"
#include "veil/keys/secret.h"
#include "veil/proto/keystore.pb.h"
#include "veil/status.h"

namespace veil::keys::internal {

// A decrypted store: the body with every secret field cleared, and the secrets in locked memory.
struct Loaded {
  proto::SealedHeader header;
  proto::KeyStoreBody body;
  std::map<std::pair<std::string, uint32_t>, SecretBytes> materials;
  SecretBytes log_secret;
  SecretBytes file_key;
};

// Decrypts a store file with its file key and moves every secret into locked memory. DataLoss when
// the body does not parse, does not match its header, or holds malformed keys.
StatusOr<Loaded> Decode(const SealedFile& file, SecretBytes file_key);

}  // namespace veil::keys::internal
