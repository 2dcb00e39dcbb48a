// Anonymized images from anywhere: the manifest container (PNG chunks, JPEG segments) and the
// manifest itself. A manifest that parses must survive a round trip.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.h"
#include "veil/engine/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  veil::fuzz::Quiet();
  std::string in(reinterpret_cast<const char*>(data), size);
  auto raw = veil::engine::ExtractManifest(in);
  auto m = veil::engine::ParseManifest(raw.ok() ? *raw : in);
  if (!m.ok()) return 0;
  auto again = veil::engine::ParseManifest(veil::engine::SerializeManifest(*m));
  if (!again.ok() || again->faces.size() != m->faces.size() || again->manifest_id != m->manifest_id ||
      again->key_check != m->key_check) {
    __builtin_trap();
  }
  return 0;
}
