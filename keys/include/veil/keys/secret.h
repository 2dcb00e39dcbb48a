// Secret bytes in sodium_malloc'ed memory: guarded pages, locked (never swapped where the system
// allows it), wiped when freed. Reading the raw bytes needs a SecretAccess token, so every place
// that touches key material can be found with `grep -rn SecretAccess::Get`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "veil/status.h"

namespace veil::keys {

// Initializes libsodium once; safe to call many times and from many threads. Aborts the process if
// libsodium cannot start (an API-misuse-tier failure: nothing can be kept safe then).
void EnsureSodium();

// A token that grants access to raw secret bytes (Tink's InsecureSecretKeyAccess).
class SecretAccess {
 public:
  static SecretAccess Get() { return SecretAccess(); }

 private:
  SecretAccess() = default;
};

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t size);  // zero-filled
  static SecretBytes Random(size_t size);
  static SecretBytes Copy(const void* data, size_t size);
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes();

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  uint8_t* data(SecretAccess) { return data_; }
  const uint8_t* data(SecretAccess) const { return data_; }
  std::string_view view(SecretAccess) const { return {reinterpret_cast<const char*>(data_), size_}; }
  // Constant-time comparison.
  bool Equals(const SecretBytes& other) const;
  SecretBytes Clone() const { return Copy(data_, size_); }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Deterministically expands a 32-byte secret into `n` bytes: the ChaCha20 (IETF) keystream under
// `key32` with a nonce derived from `context` (BLAKE2b). Same key and context, same bytes. Used to
// turn a flow subkey into the identity flow's conditioning.
SecretBytes ExpandSecret(const SecretBytes& key32, std::string_view context, size_t n);

// Wipes a std::string's buffer in place (for transient copies that had to leave sodium memory,
// e.g. protobuf fields while serializing).
void WipeString(std::string* s);

// Lowercase hex of public bytes (ids, digests, public keys). Never call it on secrets.
std::string ToHex(std::string_view bytes);
// Untrusted text (a name read from a file) made safe for one-line errors and audit records: printable
// ASCII only (others become '?'), at most `max` characters, then "...".
std::string Printable(std::string_view text, size_t max = 64);
// The length in bytes of the control sequence that starts at text[i], 0 when there is none: what
// must not reach a terminal or a reader from untrusted text as it is. C0 controls, DEL, the C1
// controls (U+0080..U+009F; U+009B is CSI), bidirectional marks, embeddings, overrides and isolates
// (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069), which reorder or hide what follows, and
// the line and paragraph separators (U+2028, U+2029).
size_t DisplayControlLength(std::string_view text, size_t i);
// Parses hex; InvalidArgument when the text is not even-length hex.
StatusOr<std::string> FromHex(std::string_view hex);

// SHA-256 and BLAKE2b-256 of public data.
std::string Sha256(std::string_view data);
std::string Blake2b256(std::string_view data);

// SHA-256 of public data that arrives in pieces (files read or written as a stream).
class Sha256Hasher {
 public:
  Sha256Hasher();
  void Update(std::string_view data);
  // The digest of everything so far (32 bytes); the hasher keeps going.
  std::string Digest() const;
  uint64_t bytes() const { return bytes_; }

 private:
  alignas(16) unsigned char state_[128];  // crypto_hash_sha256_state (104 bytes)
  uint64_t bytes_ = 0;
};

}  // namespace veil::keys
