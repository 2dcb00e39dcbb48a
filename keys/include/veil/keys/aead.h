// Authenticated encryption under a released key, Tink style: every ciphertext names the keyring,
// key version and scope it was sealed under, so it still opens after rotation, and fails with the
// same one message ("decryption failed") whatever went wrong.
//
//   "VPL1" | u8 keyring length | keyring | u32 LE version | u8 scope kind | u16 LE scope-id length |
//   scope id | 24-byte nonce | XChaCha20-Poly1305(plaintext)
// The associated data is the header (everything before the nonce) followed by the caller's.
// The encryption key is KeyHandle::DeriveSubkey(kPayload, scope kind, scope id).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "veil/keys/key_store.h"
#include "veil/status.h"

namespace veil::keys {

struct SealedRef {
  std::string keyring;
  uint32_t version = 0;
  ScopeKind scope = ScopeKind::kFace;
  std::string scope_id;
};

// `synthetic_nonce`: derive the nonce from the subkey, header, associated data and plaintext (a
// synthetic IV) instead of drawing it at random, so that the same input and key give the same bytes
// (Veil's reproducibility promise). Equal plaintexts under equal associated data then look equal;
// nothing else leaks.
StatusOr<std::string> SealPayload(const KeyHandle& key, ScopeKind scope, std::string_view scope_id,
                                  std::string_view plaintext, std::string_view associated_data,
                                  bool synthetic_nonce = false);

// Which key a ciphertext needs (read from its clear header; not authenticated until opened).
StatusOr<SealedRef> PeekSealedRef(std::string_view sealed);

// Unauthenticated("decryption failed") on any mismatch: wrong key, altered bytes or associated data.
StatusOr<std::string> OpenPayload(const KeyHandle& key, std::string_view sealed, std::string_view associated_data);

}  // namespace veil::keys
