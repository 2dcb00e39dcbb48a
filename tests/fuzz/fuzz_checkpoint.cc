// Signed checkpoints given to outside witnesses.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.h"
#include "veil/keys/audit_log.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  veil::fuzz::Quiet();
  (void)veil::keys::ReadCheckpoint(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
