// Restore request files: parse, and a parsed request must survive a round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_common.h"
#include "veil/keys/restore_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  veil::fuzz::Quiet();
  auto r = veil::keys::RestoreRequest::Parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!r.ok()) return 0;
  auto again = veil::keys::RestoreRequest::Parse(r->Serialize());
  if (!again.ok() || again->digest() != r->digest() || again->approvals().size() != r->approvals().size()) {
    __builtin_trap();
  }
  return 0;
}
