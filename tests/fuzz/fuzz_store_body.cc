// The decrypted key store body: the input is sealed with a known key first, so that the body
// parser (not the AEAD tag check) sees the fuzzed bytes.
#include <cstddef>
#include <cstdint>

#include "fuzz_common.h"
#include "sealed_file.h"
#include "store_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace veil::keys;
  veil::fuzz::Quiet();
  veil::proto::SealedHeader header;
  header.set_format_version(internal::kSealFormatVersion);
  header.set_content(veil::proto::SealedHeader::CONTENT_KEY_STORE);
  header.mutable_kdf()->set_kind(veil::proto::KdfParams::KIND_RAW_KEY);
  header.set_store_id(std::string(16, 's'));
  auto credential = veil::fuzz::FixedKey();
  auto key = internal::DeriveFileKey(credential, header.kdf());
  if (!key.ok()) __builtin_trap();
  std::string sealed = internal::Seal(header, *key, SecretBytes::Copy(data, size));
  auto file = internal::ParseSealed(sealed);
  if (!file.ok()) __builtin_trap();  // we made it: it must parse
  auto loaded = internal::Decode(*file, key->Clone());
  if (loaded.ok() && loaded->body.store_id() != header.store_id()) __builtin_trap();
  return 0;
}
