// The key store's sealed container: magic, header length, header, KDF parameters, AEAD.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_common.h"
#include "sealed_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace veil::keys;
  veil::fuzz::Quiet();
  auto file = internal::ParseSealed(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!file.ok()) return 0;
  // Only the raw-key path: Argon2id with fuzzed limits would measure the KDF, not the parser.
  if (file->header.kdf().kind() != veil::proto::KdfParams::KIND_RAW_KEY) return 0;
  auto key = internal::DeriveFileKey(veil::fuzz::FixedKey(), file->header.kdf());
  if (key.ok()) (void)internal::OpenSealed(*file, *key);
  return 0;
}
