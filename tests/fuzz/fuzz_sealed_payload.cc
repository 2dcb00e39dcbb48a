// Sealed payloads (encrypted original face regions): header parsing and opening.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string_view>

#include "fuzz_common.h"
#include "veil/keys/aead.h"
#include "veil/keys/key_store.h"

namespace {

// One key, made once in a temporary store.
const veil::keys::KeyHandle& Key() {
  static std::unique_ptr<veil::keys::KeyHandle> key = [] {
    std::string dir = (std::filesystem::temp_directory_path() / "veil-fuzz-XXXXXX").string();
    if (!mkdtemp(dir.data())) std::abort();
    auto store = veil::keys::KeyStore::Create(dir, veil::fuzz::FixedKey(), {1, 8192}, "fuzz", "default", 1);
    if (!store.ok()) std::abort();
    auto h = (*store)->KeyForNewWork("default", "fuzz");
    if (!h.ok()) std::abort();
    auto out = std::make_unique<veil::keys::KeyHandle>(h->Clone());
    store.value().reset();
    std::filesystem::remove_all(dir);
    return out;
  }();
  return *key;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  veil::fuzz::Quiet();
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)veil::keys::PeekSealedRef(in);
  if (veil::keys::OpenPayload(Key(), in, "ad").ok()) __builtin_trap();  // forging needs the key
  return 0;
}
