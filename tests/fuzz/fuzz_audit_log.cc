// The audit log: header, record framing, records, hash chain, signatures.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_common.h"
#include "veil/keys/audit_log.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  veil::fuzz::Quiet();
  std::vector<veil::keys::AuditEntry> entries;
  auto sum = veil::keys::VerifyAuditLogBytes(std::string_view(reinterpret_cast<const char*>(data), size), {}, &entries);
  if (sum.ok() && sum->record_count != entries.size()) __builtin_trap();
  return 0;
}
